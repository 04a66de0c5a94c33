"""timm code runs with ``timm.`` replaced by ``deepres.``: a script written against timm's API
(feature_info, pretrained_cfg, resolve_data_config, create_transform, list_models) runs on
deepres unchanged but for the name, and where timm is installed the same script on timm gives
the same architecture numbers."""

import json
import subprocess
import sys

import pytest

# Written as a timm user writes it; the test swaps the module name. It prints one JSON line of
# what it learnt, so the two runs can be compared.
TIMM_SCRIPT = """
import json
import timm
from timm.data import create_transform, resolve_data_config
from PIL import Image

model = timm.create_model("resnet50", pretrained=False, num_classes=7).eval()
backbone = timm.create_model("resnet50", features_only=True, out_indices=(1, 2, 3, 4))
cfg = resolve_data_config({}, model=model)
transform = create_transform(**cfg)
x = transform(Image.new("RGB", (300, 260), (120, 60, 30))).unsqueeze(0)
small = resolve_data_config({"input_size": (3, 160, 160)}, model=model)
found = timm.list_models(["resnet5?", "resnet1*"])
weighted = timm.list_models(filter="resnet*", pretrained=True)
print(json.dumps({
    "last_chs": model.feature_info[-1]["num_chs"],
    "last_reduction": model.feature_info[-1]["reduction"],
    "channels": backbone.feature_info.channels(),
    "reduction": backbone.feature_info.reduction(),
    "dicts": backbone.feature_info.get_dicts(),
    "num_classes": model.num_classes,
    "cfg_classes": model.pretrained_cfg["num_classes"],
    "default_is_pretrained": model.default_cfg["input_size"] == model.pretrained_cfg["input_size"],
    "input_size": list(cfg["input_size"]),
    "x_shape": list(x.shape),
    "logits": list(model(x).shape),
    "small": list(create_transform(**small)(Image.new("RGB", (200, 220))).shape),
    "found": found,
    "tagged": all("." in n for n in weighted) and len(weighted) > 0,
    "resnet50_tagged": [n for n in weighted if n.startswith("resnet50.")][:1],
}))
"""


def _run(module: str) -> dict:
    script = TIMM_SCRIPT.replace("timm", module)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def ours() -> dict:
    return _run("deepres")


def test_a_timm_script_runs_on_deepres(ours):
    assert ours["last_chs"] == 2048 and ours["last_reduction"] == 32
    assert ours["channels"] == [256, 512, 1024, 2048]
    assert ours["reduction"] == [4, 8, 16, 32]
    assert ours["dicts"][0] == {"module": "layer1", "num_chs": 256, "reduction": 4, "index": 1}
    assert ours["num_classes"] == ours["cfg_classes"] == 7
    assert ours["default_is_pretrained"]
    assert ours["input_size"] == [3, 224, 224] and ours["x_shape"] == [1, 3, 224, 224]
    assert ours["logits"] == [1, 7]
    assert ours["small"] == [3, 160, 160]
    # any pattern may match; the registry's order (ImageNet family, then CIFAR)
    assert ours["found"] == ["resnet18", "resnet50", "resnet101", "resnet152", "resnet14",
                             "resnet56", "resnet110", "resnet1202"]
    assert ours["tagged"] and ours["resnet50_tagged"] == ["resnet50.tv_in1k"]


def test_the_same_script_on_timm_gives_the_same_architecture_numbers(ours):
    pytest.importorskip("timm")
    theirs = _run("timm")
    # (pretrained_cfg["num_classes"] differs by design: timm's is the published weights' head,
    # 1000 even under a new 7-class head; ours is this model's, 7)
    for key in ("last_chs", "last_reduction", "channels", "reduction", "dicts", "num_classes",
                "default_is_pretrained", "input_size", "x_shape", "logits",
                "small", "tagged"):
        assert ours[key] == theirs[key], key
