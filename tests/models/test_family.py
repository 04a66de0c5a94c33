"""The residual family after the paper: pre-activation ResNets (He et al. 2016), Wide ResNets
(Zagoruyko and Komodakis 2016) and ResNet-D (He et al. 2019): sizes against their papers, their
structure, and every one through train, resume, eval, ONNX and int8."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from deepres import create_model
from deepres.analysis import count_macs, count_params
from deepres.cli import main
from deepres.models import resolve
from deepres.models.preact import PreActBasicBlock, PreActBottleneck


def _size(name, **kw):
    with torch.device("meta"):
        return create_model(name, **kw)


@pytest.mark.parametrize("name, millions", [
    ("preact_resnet164", 1.7), ("preact_resnet1001", 10.2),  # the follow-up paper, Table 2
    ("wrn_28_10", 36.5), ("wrn_16_8", 11.0), ("wrn_40_4", 8.9),  # WRN paper, Table 4
    ("preact_resnet200", 64.7),
])
def test_parameter_counts_match_the_papers(name, millions):
    assert abs(count_params(_size(name)) / 1e6 - millions) / millions < 0.03


def test_resnet_d_matches_its_published_cost():
    # "Bag of Tricks" (He et al. 2019): ResNet-50-D 25M parameters, 4.3 GFLOPs (multiply-adds).
    d = _size("resnet50", resnet_d=True)
    assert abs(count_macs(d, 224) / 1e9 - 4.3) / 4.3 < 0.03
    assert abs(count_params(d) / 1e6 - 25.6) / 25.6 < 0.01
    assert isinstance(d.layer2[0].downsample[0], torch.nn.AvgPool2d)
    assert len(d.conv1) == 7  # three 3x3 convolutions with their BN and ReLU
    for depth in (18, 34, 101, 152):  # an option of every ImageNet depth
        assert count_macs(_size(f"resnet{depth}", resnet_d=True), 224) > count_macs(
            _size(f"resnet{depth}"), 224)


def test_depth_rules_and_blocks():
    assert resolve("preact_resnet164").bottleneck and resolve("preact_resnet164").layers == (
        18, 18, 18)
    assert not resolve("preact_resnet110").bottleneck
    assert resolve("preact_resnet1001").layers == (111, 111, 111)
    assert resolve("wrn_28_10").layers == (4, 4, 4) and resolve("wrn_28_10").widen == 10
    assert resolve("preact_resnet50").family == "imagenet"
    assert resolve("cifar_preact_resnet50").family == "cifar"
    assert resolve("resnet1202").layers == (200, 200, 200)  # Table 6's stays basic
    m = create_model("preact_resnet164")
    assert isinstance(m.layer1[0], PreActBottleneck) and m.final_bn is not None
    w = create_model("wrn_16_8", dropout=0.3)
    assert isinstance(w.layer3[0], PreActBasicBlock)
    assert w.layer3[0].conv2.out_channels == 512 and w.layer3[0].dropout.p == 0.3
    with pytest.raises(ValueError, match="unknown model"):
        create_model("wrn_27_10")
    with pytest.raises(ValueError, match="projection shortcuts"):
        create_model("preact_resnet20", shortcut="A")
    with pytest.raises(ValueError, match="resnet_d"):
        create_model("resnet20", resnet_d=True)
    with pytest.raises(ValueError, match="dropout"):
        create_model("resnet20", dropout=0.3)


def test_preact_block_computes_as_the_paper_draws_it():
    torch.manual_seed(0)
    b = PreActBasicBlock(16, 32, stride=2).eval()
    for bn in (b.bn1, b.bn2):
        bn.running_mean.uniform_(-0.1, 0.1)
        bn.running_var.uniform_(0.5, 1.5)
    x = torch.randn(2, 16, 8, 8)
    pre = torch.relu(b.bn1(x))
    want = b.conv2(torch.relu(b.bn2(b.conv1(pre)))) + b.downsample(pre)  # nothing after +
    assert torch.allclose(b(x), want)


def _image(path, size=32, seed=0):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)
    return path


@pytest.mark.parametrize("name, extra", [
    ("preact_resnet8", []), ("preact_resnet18", []), ("wrn_10_2", ["--dropout", "0.3"]),
    ("resnet18", ["--resnet-d"]),
])
def test_every_new_family_trains_resumes_evaluates_exports(tiny_data, tmp_path, capsys, name,
                                                           extra):
    ort = pytest.importorskip("onnxruntime")
    run = tmp_path / "run"
    base = ["train", "--data", str(tiny_data), "--model", name, "--batch-size", "16",
            "--precision", "fp32", "--seed", "1", *extra]
    assert main([*base, "--run-dir", str(run), "--iterations", "2"]) == 0
    assert main(["train", "--resume", str(run), "--iterations", "4"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 4
    w = str(run / "weights.safetensors")
    capsys.readouterr()
    assert main(["eval", "--weights", w, "--data", str(tiny_data), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["images"] == 24
    # ONNX matches predict's probabilities on the same file
    out = tmp_path / "m.onnx"
    assert main(["export", "--weights", w, "--format", "onnx", str(out)]) == 0
    picture = _image(tmp_path / "x.png")
    capsys.readouterr()
    assert main(["predict", "--weights", w, str(picture), "--json", "--top-k", "3",
                 "--precision", "fp32"]) == 0
    ours = json.loads(capsys.readouterr().out)[0]["predictions"]
    from deepres.evaluate.testing import load_predictor

    p = load_predictor(w)
    img = torch.from_numpy(np.array(Image.open(picture).convert("RGB"))).permute(2, 0, 1)
    x = (p.spec.test_view(img).float() / 255)[None].numpy()
    s = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    probs = torch.softmax(torch.from_numpy(s.run(None, {"images": x})[0]), 1)[0]
    for pred in ours:
        assert abs(float(probs[p.classes.index(pred["class"])]) - pred["probability"]) < 1e-4
    # int8 through the same commands
    q = tmp_path / "m.int8.pt"
    assert main(["export", "--weights", w, "--format", "int8", "--data", str(tiny_data),
                 "--calibration-images", "32", str(q)]) == 0
    capsys.readouterr()
    assert main(["eval", "--weights", str(q), "--data", str(tiny_data), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["images"] == 24


@pytest.mark.slow
@pytest.mark.parametrize("name, size", [("preact_resnet1001", 32), ("preact_resnet200", 64)])
def test_deep_variants_forward_backward(name, size):
    model = create_model(name, num_classes=5)
    out = model(torch.randn(2, 3, size, size))
    out.logsumexp(1).sum().backward()
    assert torch.isfinite(out).all() and model.conv1.weight.grad.abs().sum() > 0
