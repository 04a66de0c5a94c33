"""The Python API as timm and torchvision users expect it, and the README's runnable example."""

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import deepres
from deepres.evaluate.predict import predict_files
from helpers import make_weights

README = Path(__file__).resolve().parent.parent / "docs" / "api.md"  # the API page


def test_readme_predict_example_runs(tmp_path, monkeypatch, capsys):
    block = re.search(r"```python\n# example: predict\n(.*?)```", README.read_text(), re.S)
    assert block, "the README's runnable example is missing"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "latest").mkdir(parents=True)
    make_weights(tmp_path / "runs" / "latest" / "weights.safetensors")
    exec(compile(block.group(1), "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "probability" in out and "torch.Size([1, 512])" in out


def test_predictor_matches_the_predict_command(tmp_path):
    w = make_weights(tmp_path / "w.safetensors")
    rgb = np.random.default_rng(0).integers(0, 255, (40, 56, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    p = deepres.Predictor.from_weights(w)
    from_file = p.predict(str(tmp_path / "a.png"), top_k=3)[0]
    from_pil = p.predict(Image.open(tmp_path / "a.png"), top_k=3)[0]
    from_array = p.predict(rgb, top_k=3)[0]
    command = next(predict_files(str(w), [str(tmp_path / "a.png")], top_k=3, precision="fp32",
                                 workers=0))
    assert from_file == command
    assert from_pil["predictions"] == from_array["predictions"] == command["predictions"]
    with pytest.raises(ValueError, match="H x W x 3 uint8"):
        p.predict(np.zeros((4, 4), dtype=np.float32))
    # tensors, as a torchvision user holds them: CHW or NCHW, uint8 or float in [0, 1]
    chw = torch.from_numpy(rgb).permute(2, 0, 1)
    from_tensors = p.predict(torch.stack([chw, chw.flip(-1)]), top_k=3)
    assert from_tensors[0]["predictions"] == command["predictions"]
    assert p.predict(chw, top_k=3)[0]["predictions"] == command["predictions"]
    assert p.predict(chw.float() / 255, top_k=3)[0]["predictions"] == command["predictions"]
    assert from_tensors[1] == p.predict(np.ascontiguousarray(rgb[:, ::-1]), top_k=3)[0]
    for bad, message in ((chw.float(), r"\[0, 1\]"), (chw[:1], "3 x H x W"),
                         (chw.to(torch.int32), "uint8 or float")):
        with pytest.raises(ValueError, match=message):
            p.predict(bad)


def test_pretrained_from_torchvision_and_from_a_file(tmp_path, monkeypatch):
    import torchvision
    from torchvision.models import ResNet18_Weights

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cache = tmp_path / "torch" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    state = torchvision.models.resnet18().state_dict()
    torch.save(state, cache / ResNet18_Weights.DEFAULT.url.rsplit("/", 1)[1])
    model = deepres.create_model("resnet18", pretrained=True)
    assert torch.equal(model.layer4[1].conv2.weight, state["layer4.1.conv2.weight"])
    assert model.input_spec.std.tolist() == pytest.approx([0.229, 0.224, 0.225])
    assert len(model.class_names) == 1000
    torch.save(state, tmp_path / "r18.pth")
    five = deepres.create_model("resnet18", num_classes=5, pretrained=str(tmp_path / "r18.pth"))
    assert torch.equal(five.conv1.weight, state["conv1.weight"]) and five.fc.out_features == 5
    with pytest.raises(deepres.WeightsError, match="neither deepres nor torchvision publishes"):
        deepres.create_model("resnet32", pretrained=True)  # resnet20 has deepres's own


def test_reset_classifier_zero_gives_pooled_features():
    model = deepres.create_model("resnet20").eval()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        pooled = model.forward_head(model.forward_features(x), pre_logits=True)
        model.reset_classifier(0)
        assert torch.equal(model(x), pooled) and model(x).shape == (2, 64)
    assert deepres.create_model("resnet50", num_classes=0)(torch.rand(1, 3, 64, 64)).shape == \
        (1, 2048)
