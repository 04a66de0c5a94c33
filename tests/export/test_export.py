"""Export round trips: ONNX (checked with onnxruntime) and TorchScript; BN folding."""

import pytest
import torch

from deepres import create_model
from deepres.cli import main
from deepres.export import (
    InferenceModel,
    export_onnx,
    export_torchscript,
    fold_batchnorm,
    load_cpu,
    optimize_for_cpu,
)
from helpers import calibrate_bn, make_weights, randomize_bn

# The TorchScript formats (--format torchscript and cpu) are read back here the way users read
# them, with torch.jit.load, which PyTorch 2.14 marks deprecated; deepres's own loaders quiet it.
JIT_LOAD = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")

CASES = [("resnet18", 64), ("resnet50", 64), ("resnet56", 32)]


def _model(name, size):
    torch.manual_seed(0)
    m = calibrate_bn(randomize_bn(create_model(name, num_classes=10)), size)
    return InferenceModel(m, torch.zeros(3)).eval()


@pytest.mark.parametrize("name,size", CASES)
def test_onnx_round_trip_dynamic_batch(name, size, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    model = _model(name, size)
    path = tmp_path / f"{name}.onnx"
    export_onnx(model, path, size)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.rand(3, 3, size, size)  # a batch size other than the export's
    got = torch.from_numpy(session.run(None, {"images": x.numpy()})[0])
    with torch.no_grad():
        # Two libraries' fp32 kernels sum in different orders: on an AVX2-only Zen 3 ResNet-50's
        # logits (size ~1) differ by up to ~2e-4; a wrong export differs by far more.
        assert torch.allclose(got, model(x), atol=5e-4, rtol=1e-4)


@JIT_LOAD
@pytest.mark.parametrize("name,size", CASES)
def test_torchscript_round_trip(name, size, tmp_path):
    model = _model(name, size)
    path = tmp_path / f"{name}.pt"
    export_torchscript(model, path, size)
    loaded = torch.jit.load(str(path))
    x = torch.rand(5, 3, size, size)
    with torch.no_grad():
        assert torch.allclose(loaded(x), model(x), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "resnet20", "plain20"])
def test_fold_batchnorm_same_outputs(name):
    torch.manual_seed(0)
    size = 32 if name.endswith("20") else 64
    model = calibrate_bn(randomize_bn(create_model(name)), size)
    folded = fold_batchnorm(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    x = torch.rand(2, 3, size, size)
    with torch.no_grad():
        # In float64 the folding is exact up to rounding: this tests its arithmetic.
        exact = fold_batchnorm(model.double())(x.double())
        assert torch.allclose(exact, model(x.double()), atol=1e-9)
        model.float()
        assert torch.allclose(folded(x), model(x), atol=3e-4, rtol=1e-4)
        fast = optimize_for_cpu(model)
        assert torch.equal(fast(x).argmax(1), model(x).argmax(1))
    assert model.training is False and any(
        isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())  # original untouched


@JIT_LOAD
def test_export_cli(tmp_path, capsys):
    ort = pytest.importorskip("onnxruntime")
    w = make_weights(tmp_path / "w.safetensors")
    for fmt, name in [("onnx", "m.onnx"), ("torchscript", "m.pt"), ("cpu", "fast.pt")]:
        assert main(["export", "--weights", str(w), "--format", fmt, str(tmp_path / name)]) == 0
    x = torch.rand(4, 3, 32, 32)
    a = torch.jit.load(str(tmp_path / "m.pt"))(x)
    with torch.no_grad():
        b = load_cpu(tmp_path / "fast.pt")(x)
    s = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    c = torch.from_numpy(s.run(None, {"images": x.numpy()})[0])
    assert torch.allclose(a, b, atol=1e-4, rtol=1e-4) and torch.allclose(a, c, atol=1e-4, rtol=1e-4)


def test_onnx_carries_its_metadata_and_is_checked(tmp_path, capsys):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    import json

    w = make_weights(tmp_path / "w.safetensors", classes=("cat", "dog", "eel"))
    out = tmp_path / "m.onnx"
    assert main(["export", "--weights", str(w), "--format", "onnx", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "onnx.checker" in printed and "max logit difference" in printed
    diff = float(printed.rsplit("max logit difference ", 1)[1].split()[0])
    assert diff < 1e-4
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert json.loads(meta["class_names"]) == ["cat", "dog", "eel"]
    assert meta["input_size"] == "32" and meta["model"] == "resnet8" and meta["deepres_version"]
    assert len(json.loads(meta["input_mean"])) == 3
    # --dynamic-size: any height and width (the per-pixel mean becomes per-channel).
    dyn = tmp_path / "dyn.onnx"
    capsys.readouterr()
    assert main(["export", "--weights", str(w), "--format", "onnx", "--dynamic-size",
                 str(dyn)]) == 0
    assert "N x 3 x H x W (any size" in capsys.readouterr().out  # not "N x 3 x 32 x 32"
    s = ort.InferenceSession(str(dyn), providers=["CPUExecutionProvider"])
    import numpy as np
    assert s.run(None, {"images": np.random.rand(2, 3, 48, 40).astype("float32")})[0].shape \
        == (2, 3)
    assert main(["export", "--weights", str(w), "--format", "torchscript", "--dynamic-size",
                 str(tmp_path / "x.pt")]) == 2


@pytest.mark.parametrize("size", [32, 96])
def test_onnx_matches_eval_on_the_same_files(tmp_path, size):
    """An exported model, fed the test view of an image file, gives the probabilities that
    `deepres predict`/`eval` give for that file (to 1e-4): one input specification."""
    import numpy as np
    from PIL import Image

    from deepres.evaluate.predict import predict_files
    from deepres.evaluate.testing import load_predictor

    ort = pytest.importorskip("onnxruntime")
    w = make_weights(tmp_path / "w.safetensors", size=size)
    assert main(["export", "--weights", str(w), "--format", "onnx", str(tmp_path / "m.onnx")]) == 0
    rng = np.random.default_rng(0)
    files = []
    for i, shape in enumerate([(size, size), (size + 17, size + 40), (2 * size, size + 5)]):
        files.append(tmp_path / f"{i}.png")
        Image.fromarray(rng.integers(0, 256, (*shape, 3), dtype=np.uint8)).save(files[-1])
    ours = list(predict_files(str(w), [str(f) for f in files], top_k=3, precision="fp32",
                              workers=0))
    spec = load_predictor(str(w)).spec
    s = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    for f, got in zip(files, ours, strict=True):
        img = torch.from_numpy(np.array(Image.open(f).convert("RGB"))).permute(2, 0, 1)
        x = (spec.test_view(img).float() / 255)[None].numpy()
        probs = torch.softmax(torch.from_numpy(s.run(None, {"images": x})[0]), 1)[0]
        for p in got["predictions"]:
            i = ["class0", "class1", "class2"].index(p["class"])
            assert abs(float(probs[i]) - p["probability"]) < 1e-4
