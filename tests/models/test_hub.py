"""Hub names from the local Hugging Face cache (hf-hub:ORG/NAME, timm:NAME): the weights load,
with their own preprocessing (timm's pretrained_cfg), and nothing is downloaded."""

import json

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from safetensors.torch import save_file

import deepres
from deepres.cli import main
from deepres.models import WeightsError, create_model


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A Hub cache laid out as huggingface_hub lays it out, holding one timm model."""
    cache = tmp_path / "hf"
    repo = cache / "models--timm--resnet18.a1_in1k"
    snap = repo / "snapshots" / "0123abcd"
    snap.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    torch.manual_seed(0)
    state = torchvision.models.resnet18(num_classes=5).state_dict()
    save_file({k: v.contiguous() for k, v in state.items()}, str(snap / "model.safetensors"))
    (snap / "config.json").write_text(json.dumps({
        "architecture": "resnet18", "num_classes": 5,
        "pretrained_cfg": {"input_size": [3, 64, 64], "interpolation": "bicubic",
                           "crop_pct": 0.95, "mean": [0.5, 0.4, 0.3], "std": [0.2, 0.25, 0.3]}}))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    return state


def test_a_timm_name_loads_with_its_own_preprocessing(hub):
    for source in ("timm:resnet18.a1_in1k", "hf-hub:timm/resnet18.a1_in1k",
                   "hf-hub:timm/resnet18.a1_in1k@0123abcd"):
        model = create_model("resnet18", pretrained=source)
        assert model.fc.out_features == 5 and torch.equal(model.conv1.weight, hub["conv1.weight"])
        spec = model.input_spec
        assert (spec.input_size, spec.test_resize, spec.interpolation) == (64, 67, "bicubic")
        assert spec.std.tolist() == pytest.approx([0.2, 0.25, 0.3])


def test_predict_takes_a_hub_name_as_weights(hub, tmp_path, capsys):
    img = tmp_path / "a.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (80, 90, 3), np.uint8)).save(img)
    assert main(["predict", "--weights", "timm:resnet18.a1_in1k", str(img), "--json",
                 "--precision", "fp32", "--engine", "torch"]) == 0
    got = json.loads(capsys.readouterr().out)[0]["predictions"]
    p = deepres.Predictor.from_weights("timm:resnet18.a1_in1k", precision="fp32", engine="torch")
    assert p.spec.interpolation == "bicubic" and p.spec.test_resize == 67
    assert p.predict(str(img))[0]["predictions"] == got


def test_a_name_not_in_the_cache_says_how_to_get_it(hub):
    with pytest.raises(WeightsError, match=r"huggingface-cli download timm/resnet50\.a1_in1k"):
        create_model("resnet50", pretrained="timm:resnet50.a1_in1k")
    with pytest.raises(WeightsError, match="hf-hub:ORG/NAME"):
        create_model("resnet50", pretrained="hf-hub:no-slash")


def test_serve_takes_a_hub_name_and_a_published_name(hub):
    from deepres.serve.app import Service
    from deepres.serve.config import ServeConfig

    for name in ("timm:resnet18.a1_in1k", "deepres:resnet20"):
        s = Service(ServeConfig(weights=name, precision="fp32", engine="torch"))
        assert len(s.digest) == 64 and s.predictor.spec.input_size in (64, 32)
