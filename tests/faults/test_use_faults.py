"""`deepres eval`, `predict`, `export`, `data check` and the command itself: bad options, broken
or edited weights, bad output paths, empty inputs."""

import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file, save_file

from conftest import assert_clean_error, tree_hash
from helpers import make_tiny_folder, make_weights


@pytest.fixture
def weights(tmp_path):
    return make_weights(tmp_path / "w.safetensors")


@pytest.fixture
def tiny(tmp_path):
    return make_tiny_folder(tmp_path / "tiny", per_class=4, test_per_class=3)


@pytest.mark.parametrize("args, named", [
    (["--batch-size", "-1"], "--batch-size"), (["--batch-size", "0"], "--batch-size"),
    (["--scales", "0"], "--scales"), (["--scales", "224,abc"], "--scales"),
    (["--scales", "224,-5"], "--scales"), (["--device", "tpu"], "--device"),
    (["--crops", "3"], "--crops"),
])
def test_eval_bad_options(cli, weights, tiny, args, named):
    code, out, err = cli("eval", "--weights", weights, "--data", tiny, *args)
    assert_clean_error(code, err, named)
    assert "0.00%" not in out


@pytest.mark.parametrize("args, named", [(["--top-k", "0"], "--top-k"),
                                         (["--top-k", "-2"], "--top-k")])
def test_predict_bad_options(cli, weights, tiny, args, named):
    code, _, err = cli("predict", "--weights", weights, tiny / "test", *args)
    assert_clean_error(code, err, named)


def test_predict_on_an_empty_folder_is_an_error(cli, weights, tmp_path):
    (tmp_path / "empty").mkdir()
    code, _, err = cli("predict", "--weights", weights, tmp_path / "empty")
    assert_clean_error(code, err, tmp_path / "empty")


def _edit(path, tensors=None, **meta):
    state = load_file(str(path))
    from safetensors import safe_open
    with safe_open(str(path), "pt") as f:
        metadata = dict(f.metadata())
    state.update(tensors or {})
    metadata.update(meta)
    save_file(state, str(path), metadata=metadata)
    return path


@pytest.mark.parametrize("cmd", ["eval", "predict", "export"])
def test_non_finite_weights_are_refused(cli, weights, tiny, tmp_path, cmd):
    w = load_file(str(weights))["conv1.weight"].clone()
    w[0, 0, 0, 0] = float("nan")
    _edit(weights, {"conv1.weight": w})
    args = {"eval": ["eval", "--weights", weights, "--data", tiny],
            "predict": ["predict", "--weights", weights, tiny / "test"],
            "export": ["export", "--weights", weights, "--format", "onnx", tmp_path / "m.onnx"]}
    code, out, err = cli(*args[cmd])
    assert_clean_error(code, err, weights, "conv1.weight", "NaN")
    assert "nan%" not in out
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("field, value", [
    ("model_options", json.dumps({"num_classes": 10**12, "shortcut": "A",
                                  "stride_in_1x1": False})),
    ("model_options", json.dumps({"num_classes": 3, "warp_drive": True})),
    ("model_options", "{broken"),
    ("model", "resnet999999998"),
    ("input_mean", json.dumps([1, 2])),
    ("input_mean", json.dumps("zero")),
    ("class_names", json.dumps(["a", "b"])),
    ("class_names", json.dumps([1, 2, 3])),
    ("input_size", "0"),
    ("test_resize", "-4"),
])
def test_edited_metadata_names_the_field(cli, weights, tiny, field, value):
    _edit(weights, **{field: value})
    code, _, err = cli("eval", "--weights", weights, "--data", tiny)
    assert_clean_error(code, err, weights, field)


@pytest.mark.parametrize("where", ["missing-folder", "under-a-file", "a-folder", "proc"])
@pytest.mark.parametrize("fmt", ["onnx", "torchscript", "cpu"])
def test_export_to_a_bad_path(cli, weights, tmp_path, where, fmt):
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "dir").mkdir()
    out = {"missing-folder": tmp_path / "nope" / "m.bin",
           "under-a-file": tmp_path / "file.txt" / "m.bin",
           "a-folder": tmp_path / "dir",
           "proc": "/proc/deepres-export.bin"}[where]
    before = tree_hash(tmp_path)
    code, _, err = cli("export", "--weights", weights, "--format", fmt, out)
    assert_clean_error(code, err, out)
    assert tree_hash(tmp_path) == before  # no half-written or temporary file left


def test_export_int8_needs_calibration_data(cli, weights, tmp_path):
    code, _, err = cli("export", "--weights", weights, "--format", "int8", tmp_path / "q.pt")
    assert_clean_error(code, err, "--data")


def test_data_check_json_and_size_histogram(cli, tiny):
    from PIL import Image
    Image.new("RGB", (64, 48)).save(tiny / "train" / "class0" / "odd.png")
    (tiny / "train" / "class1" / "broken.png").write_bytes(b"not a png")
    code, out, _ = cli("data", "check", tiny, "--json")
    report = json.loads(out)
    assert code == 1  # the broken file is bad and listed; the odd size is resized, not bad
    assert report["splits"]["train"]["sizes"] == {"32x32": 12, "64x48": 1, "unreadable": 1}
    assert "resized to 32x32" in report["splits"]["train"]["layout"]
    [bad] = report["splits"]["train"]["bad"]
    assert bad["file"].endswith("broken.png")
    code, out, _ = cli("data", "check", tiny)
    assert "32x32 (12), 64x48 (1)" in out and "BAD" in out and "broken.png" in out
    assert "(see `deepres data check`)" not in out  # it once pointed to itself


def test_version(cli):
    from importlib.metadata import version
    code, out, _ = cli("--version")
    assert code == 0 and version("deepres") in out


def test_models_into_a_closed_pipe_has_no_traceback():
    done = subprocess.run(f"{sys.executable} -m deepres models | head -1", shell=True,
                          capture_output=True, text=True, timeout=120)
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr
    assert done.stdout.startswith("model")


def test_cifar_python_archive_as_data(cli, tmp_path):
    """The official archive layout (cifar-10-batches-py/ inside a .tar.gz), pickled with
    protocol 5."""
    import pickle
    import tarfile

    import numpy as np

    from deepres.data.cifar import CIFAR10_CLASSES
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (8, 3072), dtype=np.uint8),
                 b"labels": rng.integers(0, 10, 8).tolist()}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=5))
    (folder / "batches.meta").write_bytes(
        pickle.dumps({b"label_names": [c.encode() for c in CIFAR10_CLASSES]}, protocol=5))
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as t:
        t.add(folder, arcname="cifar-10-batches-py")
    code, _, err = cli("train", "--data", archive, "--model", "resnet8", "--iterations", "2",
                       "--batch-size", "8", "--run-dir", tmp_path / "run")
    assert code == 0, err
    assert "10 classes" in err


def test_absurd_cifar_pickle_is_a_clean_error(tmp_path):
    import pickle

    import numpy as np

    from deepres.data import DatasetError
    from deepres.data.cifar import _load_pickle_batch

    class Huge:
        def __reduce__(self):
            return (np._core.multiarray._reconstruct, (np.ndarray, (10**13,), b"b"))

    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": Huge()}, protocol=2))
    with pytest.raises(DatasetError, match="larger than a CIFAR batch"):
        _load_pickle_batch(path)


# the test makes a TorchScript file of its own, with the API torch now warns about
@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
def test_int8_file_is_not_mistaken_for_weights_by_default_readers(tmp_path):
    # Sanity: a plain TorchScript export is not taken as an int8 deepres file.
    from deepres.loaded import is_int8_file
    m = torch.jit.script(torch.nn.Linear(2, 2))
    m.save(str(tmp_path / "ts.pt"))
    assert not is_int8_file(tmp_path / "ts.pt")


def test_foreign_weights_with_model_and_classes(cli, tmp_path, tiny):
    import torchvision
    torch.manual_seed(0)
    sd = torchvision.models.resnet18(num_classes=3).state_dict()
    torch.save(sd, tmp_path / "tv.pth")
    (tmp_path / "classes.txt").write_text("class0\nclass1\nclass2\n")
    code, _, err = cli("eval", "--weights", tmp_path / "tv.pth", "--data", tiny)
    assert_clean_error(code, err, "--model")
    code, out, err = cli("eval", "--weights", tmp_path / "tv.pth", "--model", "resnet18",
                         "--classes", tmp_path / "classes.txt", "--data", tiny, "--json")
    assert code == 0, err
    assert json.loads(out)["images"] == 9
    code, out, err = cli("predict", "--weights", tmp_path / "tv.pth", "--model", "resnet18",
                         tiny / "test" / "class0")
    assert code == 0 and out.count("\n") == 3
    code, _, err = cli("export", "--weights", tmp_path / "tv.pth", "--model", "resnet18",
                       "--format", "onnx", tmp_path / "tv.onnx")
    assert code == 0, err


def test_misspelt_model_gets_a_suggestion(cli, tiny, tmp_path):
    code, _, err = cli("train", "--model", "resnet5O", "--data", tiny, "--run-dir",
                       tmp_path / "r")
    assert_clean_error(code, err, "resnet50")


def test_ctrl_c_during_start_up_exits_130_with_one_line():
    import signal
    import subprocess
    import sys
    import time

    for delay in (0.3, 1.0):  # while torch loads, and later
        proc = subprocess.Popen([sys.executable, "-m", "deepres", "models"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        if proc.returncode == 0:  # finished before the signal: nothing to check
            continue
        if proc.returncode == -signal.SIGINT and err == "":
            # under load the signal can come before the interpreter has installed its own
            # SIGINT handler (1 run in 10 at 0.3 s): no deepres code had run yet
            continue
        # A shell sees 130 either way: exit status 130, or death by SIGINT (128 + 2). The
        # process sometimes ends by SIGINT after our handler has printed its line and returned
        # 130 (3 times in 60 runs under load, interrupts about 1.2 s after the start; 0 in 160
        # later): CPython's exit re-raises SIGINT when its own unhandled-KeyboardInterrupt flag
        # is set; what set it there was not pinned down.
        assert proc.returncode in (130, -signal.SIGINT), err
        assert err == "interrupted\n", err


def test_a_url_for_weights_is_named_as_a_url(tmp_path, capsys):
    from deepres.cli import main

    url = "https://download.example.org/models/resnet18.pth"
    assert main(["eval", "--weights", url, "--data", "sample"]) == 2
    err = capsys.readouterr().err
    assert f"{url}: a URL; deepres downloads weights only for torchvision:NAME" in err
    assert main(["train", "--init", url, "--model", "resnet18", "--run-dir",
                 str(tmp_path / "r")]) == 2
    assert "a URL" in capsys.readouterr().err and not (tmp_path / "r").exists()


def test_refused_image_formats_are_named_and_data_check_takes_archives(tmp_path, capsys):
    import tarfile

    from PIL import Image

    from deepres.cli import main

    root = tmp_path / "imgs"
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(root / cls / "0.png")
        Image.new("RGB", (8, 8)).save(root / cls / "1.tif")
    (root / "a" / "notes.txt").write_text("x")
    assert main(["data", "check", str(root)]) == 0
    out = capsys.readouterr().out
    assert "2 .tif file(s) ignored" in out and "TIFF images are not accepted" in out
    archive = tmp_path / "imgs.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root, arcname="imgs")
    assert main(["data", "check", str(archive)]) == 0
    assert "2 classes: a, b" in capsys.readouterr().out
