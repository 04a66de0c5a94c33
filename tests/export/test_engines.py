"""Engines (loaded/engines.py): the same weights, and the ONNX files exported from them, give
the same top-1 class and probabilities within 1e-4 on torch, onnxruntime and openvino; auto
says what it chose; a missing engine is one line naming the extra."""

import json
import subprocess
import sys

import pytest
import torch

from deepres.cli import main
from deepres.loaded import engines, load_predictor, probs_single
from helpers import make_tiny_folder, make_weights

pytest.importorskip("onnxruntime")
pytest.importorskip("openvino")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("engines")
    w = make_weights(tmp / "w.safetensors", size=32)
    onnx = tmp / "m.onnx"
    assert main(["export", "--weights", str(w), "--format", "onnx", str(onnx)]) == 0
    return w, onnx, tmp


def _images(n=12, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)


@pytest.mark.parametrize("source", ["weights", "onnx"])
@pytest.mark.parametrize("engine", ["onnxruntime", "openvino"])
def test_every_engine_gives_the_probabilities_of_torch_fp32(files, source, engine):
    w, onnx, _ = files
    x = _images()
    ref = probs_single(load_predictor(str(w), precision="fp32", engine="torch"), x)
    p = load_predictor(str(w if source == "weights" else onnx), precision="fp32", engine=engine)
    assert p.engine == engine and p.precision == "fp32"
    got = probs_single(p, x)
    assert torch.equal(got.argmax(1), ref.argmax(1))
    assert (got - ref).abs().max().item() < 1e-4


@pytest.mark.parametrize("engine", ["onnxruntime", "openvino"])
def test_an_engines_output_is_the_callers_to_keep(files, engine):
    # OpenVINO hands back a view of its own buffer (share_outputs): the next call must not
    # change logits already returned.
    _, onnx, _ = files
    p = load_predictor(str(onnx), precision="fp32", engine=engine)
    x1, x2 = (_images(2, seed=s).float() / 255 - 0.5 for s in (1, 2))
    first = p.logits(x1)
    kept = first.clone()
    second = p.logits(x2)
    assert torch.equal(first, kept) and not torch.equal(first, second)


def test_multiscale_testing_runs_on_a_converted_engine(files):
    w, _, _ = files
    x = _images(4, 48)
    ref = probs_single(load_predictor(str(w), precision="fp32", engine="torch"), x)
    p = load_predictor(str(w), precision="fp32", engine="openvino", any_size=True)
    assert (probs_single(p, x) - ref).abs().max().item() < 1e-4


def test_a_fixed_size_onnx_file_at_another_size_is_one_clear_error(files):
    _, onnx, _ = files
    p = load_predictor(str(onnx), precision="fp32", engine="onnxruntime")
    with pytest.raises(engines.EngineError, match="--dynamic-size"):
        probs_single(p, _images(2, 40))


def test_auto_prefers_openvino_and_says_why(files):
    w, onnx, _ = files
    for f in (w, onnx):
        p = load_predictor(str(f), precision="fp32", engine="auto")
        assert p.engine == "openvino" and "fastest" in p.describe_engine()


def test_auto_without_openvino_falls_back_by_the_rule(monkeypatch):
    monkeypatch.setattr(engines, "installed", lambda e: e != "openvino")
    assert engines.choose("auto", False, "cpu").engine == "torch"
    assert engines.choose("auto", True, "cpu").engine == "onnxruntime"
    assert engines.choose("auto", False, "cuda").engine == "torch"
    monkeypatch.setattr(engines, "installed", lambda e: e == "torch")
    with pytest.raises(engines.EngineError, match=r"deepres\[onnx\]"):
        engines.choose("auto", True, "cpu")
    with pytest.raises(engines.EngineError, match=r"pip install 'deepres\[openvino\]'"):
        engines.choose("openvino", False, "cpu")


def test_a_missing_engine_is_one_line_naming_the_extra(files, tmp_path):
    w, _, _ = files
    img = next((make_tiny_folder(tmp_path / "d") / "test").rglob("*.png"))
    # openvino made unimportable in the child: a None entry in sys.modules
    code = ("import sys; sys.modules['openvino'] = None; "
            "from deepres.cli import main; sys.exit(main(sys.argv[1:]))")
    done = subprocess.run([sys.executable, "-c", code, "predict", "--weights", str(w),
                           "--engine", "openvino", str(img)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "pip install 'deepres[openvino]'" in done.stderr


def test_eval_on_an_int8_file_counts_every_image_on_both_engines(files, tmp_path):
    w, _, tmp = files
    data = make_tiny_folder(tmp_path / "d", per_class=16, test_per_class=10)
    q = tmp / "q.onnx"
    assert main(["export", "--weights", str(w), "--format", "int8", "--data", str(data),
                 "--calibration-images", "32", str(q)]) == 0
    seen = {}
    for engine in ("onnxruntime", "openvino"):
        done = subprocess.run([sys.executable, "-m", "deepres", "eval", "--weights", str(q),
                               "--data", str(data), "--engine", engine, "--json"],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        assert "deprecat" not in done.stderr.lower()
        seen[engine] = json.loads(done.stdout)
        assert seen[engine]["images"] == 30 and seen[engine]["engine"] == engine


def test_auto_says_its_choice_in_one_line_on_stderr(files, tmp_path):
    w, onnx, _ = files
    img = next((make_tiny_folder(tmp_path / "d") / "test").rglob("*.png"))
    done = subprocess.run([sys.executable, "-m", "deepres", "predict", "--weights", str(onnx),
                           str(img)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [x for x in done.stderr.splitlines() if x.startswith("engine: ")]
    assert len(lines) == 1 and "openvino" in lines[0]
    assert ": class" in done.stdout
