"""in_chans: grayscale and multispectral inputs; pretrained RGB weights adapted as timm does."""

import pytest
import torch
import torchvision

import deepres
from deepres.models import create_model


def _rgb_file(tmp_path):
    torch.manual_seed(0)
    state = torchvision.models.resnet18().state_dict()  # ImageNet-style weights, offline
    torch.save(state, tmp_path / "r18.pth")
    return state, str(tmp_path / "r18.pth")


def test_pretrained_rgb_weights_see_grey_as_the_rgb_net_does(tmp_path):
    state, path = _rgb_file(tmp_path)
    rgb = create_model("resnet18", pretrained=path).eval()
    grey = create_model("resnet18", in_chans=1, pretrained=path).eval()
    six = create_model("resnet18", in_chans=6, pretrained=path).eval()
    assert grey.conv1.weight.shape[1] == 1 and six.conv1.weight.shape[1] == 6
    torch.testing.assert_close(grey.conv1.weight, state["conv1.weight"].sum(1, keepdim=True))
    g = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        want = rgb(g.expand(-1, 3, -1, -1))
        torch.testing.assert_close(grey(g), want, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(six(g.expand(-1, 6, -1, -1)), want, rtol=1e-4, atol=1e-4)
    four = create_model("resnet50", in_chans=4, resnet_d=True)  # the deep stem's first conv
    assert four.conv1[0].weight.shape[1] == 4 and four(torch.rand(1, 4, 64, 64)).shape == (1, 1000)


def test_a_grey_weights_file_rebuilds_with_its_channels(tmp_path):
    model = create_model("resnet20", in_chans=1, num_classes=3)
    deepres.save_weights(model, tmp_path / "g.safetensors")
    back, _ = deepres.model_from_weights(tmp_path / "g.safetensors")
    assert back.model_args.in_chans == 1 and back.conv1.weight.shape[1] == 1
    rgb = create_model("resnet20")
    assert "in_chans" not in rgb.model_options  # RGB files are as they always were


def test_a_grayscale_fine_tune_from_rgb_weights_trains(tmp_path):
    _, path = _rgb_file(tmp_path)
    torch.manual_seed(0)
    model = create_model("resnet18", in_chans=1, num_classes=2, pretrained=path)
    # two classes of grey images: a bright square top-left, or bottom-right
    x = torch.rand(64, 1, 32, 32) * 0.3
    y = torch.arange(64) % 2
    x[y == 0, :, 4:14, 4:14] += 0.7
    x[y == 1, :, 18:28, 18:28] += 0.7
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

    def error():
        model.eval()
        with torch.no_grad():
            return (model(x).argmax(1) != y).float().mean().item()

    before = error()
    model.train()
    for _ in range(20):  # 0 error from step 15 on when measured
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    after = error()
    assert after < before and after <= 0.1, (before, after)


def test_bad_in_chans_is_one_clear_error():
    import pytest

    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="in_chans"):
            create_model("resnet20", in_chans=bad)


def test_train_in_chans_1_trains_a_grayscale_net_that_eval_predict_and_onnx_agree_on(
        tmp_path, capsys):
    """`deepres train --in-chans 1` (timm's flag): the network reads the luma of each RGB
    image; its file says so (input_channels 1), and eval, predict and the ONNX export feed
    it the same input; RGB images of the same data in gray still train (error falls)."""
    import json

    import numpy as np
    from PIL import Image

    from deepres.cli import main
    from deepres.loaded import load_predictor

    # two classes told apart by brightness only: learnable in gray
    rng = np.random.default_rng(0)
    for split, n in (("train", 48), ("test", 16)):
        for c in range(2):
            d = tmp_path / "data" / split / f"c{c}"
            d.mkdir(parents=True)
            for i in range(n):
                img = np.clip(rng.normal(70 + 110 * c, 30, (32, 32, 3)), 0, 255)
                Image.fromarray(img.astype(np.uint8)).save(d / f"{i}.png")
    run = tmp_path / "run"
    assert main(["train", "--data", str(tmp_path / "data"), "--model", "resnet8",
                 "--in-chans", "1", "--epochs", "4", "--batch-size", "16", "--log-every", "3",
                 "--precision", "fp32", "--workers", "0", "--run-dir", str(run)]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["test_error"] <= 0.25, summary
    weights = str(run / "weights.safetensors")
    p = load_predictor(weights, precision="fp32")
    assert p.model.conv1.weight.shape[1] == 1 and p.spec.channels == 1
    assert main(["eval", "--weights", weights, "--data", str(tmp_path / "data"), "--json",
                 "--precision", "fp32"]) == 0
    capsys.readouterr()
    image = tmp_path / "data" / "test" / "c1" / "0.png"
    assert main(["predict", "--weights", weights, str(image), "--json",
                 "--precision", "fp32"]) == 0
    out = capsys.readouterr().out
    ours = json.loads(out[out.index("["):])
    onnx = tmp_path / "g.onnx"
    assert main(["export", "--weights", weights, "--format", "onnx", str(onnx)]) == 0
    capsys.readouterr()
    assert main(["predict", "--weights", str(onnx), str(image), "--json",
                 "--engine", "onnxruntime"]) == 0
    out = capsys.readouterr().out
    theirs = json.loads(out[out.index("["):])

    def probs(out):
        return {c["class"]: c["probability"] for c in out[0]["predictions"]}

    a, b = probs(ours), probs(theirs)
    assert a.keys() == b.keys() and all(abs(a[k] - b[k]) < 1e-4 for k in a), (a, b)
    with pytest.raises(SystemExit):
        main(["train", "--data", str(tmp_path / "data"), "--in-chans", "4"])
    assert "must be 3 (RGB) or 1 (grayscale)" in capsys.readouterr().err
