"""Data that once hung or miscounted: a FIFO named like an image, and an eval that silently
counted fewer images than its split holds."""

import json
import os
import subprocess
import sys

import pytest

from helpers import make_tiny_folder, make_weights


def _run(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "deepres", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def fifo_data(tmp_path):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this system")
    root = make_tiny_folder(tmp_path / "data")
    os.mkfifo(root / "train" / "class0" / "zz.png")
    os.mkfifo(root / "test" / "class1" / "zz.png")
    return root


def test_a_fifo_is_a_bad_file_found_without_opening_it(fifo_data, tmp_path):
    # Each of these once blocked forever in open(); the timeout turns a hang into a failure.
    check = _run("data", "check", fifo_data)
    assert check.returncode == 1 and "Traceback" not in check.stderr  # 1: bad files found
    assert "zz.png: not a regular file (a FIFO); not opened" in check.stdout
    train = _run("train", "--model", "resnet8", "--data", fifo_data, "--iterations", "2",
                 "--batch-size", "8", "--run-dir", tmp_path / "run")
    assert train.returncode == 2 and "not a regular file (a FIFO)" in train.stderr
    assert not (tmp_path / "run").exists()  # nothing left behind


def test_eval_says_on_its_first_line_what_it_left_out(fifo_data, tmp_path):
    weights = make_weights(tmp_path / "w.safetensors", size=32)
    done = _run("eval", "--weights", weights, "--data", fifo_data)
    assert done.returncode == 0 and "Traceback" not in done.stderr
    first = done.stdout.splitlines()[0]
    assert "24 images" in first and "1 file(s) of the split LEFT OUT" in first
    assert "test/class1/zz.png: not a regular file (a FIFO)" in first
    as_json = json.loads(_run("eval", "--weights", weights, "--data", fifo_data,
                              "--json").stdout)
    assert as_json["images"] == 24 and len(as_json["left_out"]) == 1


def test_accumulate_past_the_batch_is_refused_before_anything_is_created(tmp_path):
    data = make_tiny_folder(tmp_path / "d")
    done = _run("train", "--model", "resnet8", "--data", data, "--batch-size", "8",
                "--accumulate", "8", "--iterations", "2", "--run-dir", tmp_path / "run")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "--accumulate 8" in done.stderr and "--accumulate 4 or less" in done.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("fmt,said", [("onnx", "an ONNX graph"),
                                      ("torchscript", "a TorchScript program")])
def test_an_export_given_as_weights_is_named_for_what_it_is(tmp_path, fmt, said):
    # (eval, predict and serve run an ONNX file: tests/export/test_engines.py; training
    # starts from weights only)
    weights = make_weights(tmp_path / "w.safetensors", size=32)
    out = tmp_path / f"m.{'onnx' if fmt == 'onnx' else 'pt'}"
    assert _run("export", "--weights", weights, "--format", fmt, out).returncode == 0
    data = make_tiny_folder(tmp_path / "d")
    done = (_run("train", "--model", "resnet8", "--data", data, "--init", out,
                 "--iterations", "1", "--run-dir", tmp_path / "run") if fmt == "onnx"
            else _run("predict", "--weights", out, next((data / "test").rglob("*.png"))))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert said in done.stderr and "weights_only" not in done.stderr
    assert "corrupt" not in done.stderr


def test_a_bad_file_in_any_split_of_a_streamed_folder_is_found_before_the_first_step(tmp_path):
    # Large images are streamed, not decoded ahead: a corrupt test/ file once crashed the run
    # in a DataLoader worker after a whole epoch, with tracebacks.
    import numpy as np
    from PIL import Image

    root = tmp_path / "big"
    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("test", 3)):
        for c in range(2):
            d = root / split / f"c{c}"
            d.mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 255, (96, 96, 3), dtype=np.uint8)).save(
                    d / f"{i}.jpg")
    (root / "test" / "c1" / "broken.jpg").write_bytes(b"not a jpeg at all" * 10)
    env_run = tmp_path / "run"
    done = _run("train", "--model", "resnet8", "--data", root, "--iterations", "2",
                "--batch-size", "4", "--run-dir", env_run, "--crop", "64")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "1 bad file(s)" in done.stderr and "test/c1/broken.jpg" in done.stderr
    assert not env_run.exists()
    done = _run("train", "--model", "resnet8", "--data", root, "--iterations", "2",
                "--batch-size", "4", "--run-dir", env_run, "--crop", "64", "--skip-bad")
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((env_run / "summary.json").read_text())
    assert summary["test_images"] == 6  # every readable test image, the broken one left out


def test_many_empty_class_folders_and_a_newline_in_a_path_make_short_safe_lines(tmp_path):
    root = tmp_path / "many"
    (root / "a").mkdir(parents=True)
    (root / "a" / "x.png").write_bytes(b"")
    for i in range(2000):
        (root / f"c{i}").mkdir()
    done = _run("data", "check", root)
    assert done.returncode == 2 and len(done.stderr) < 400  # not every name
    assert "2000 class folder(s) with no images" in done.stderr and "and more" in done.stderr
    done = _run("data", "check", tmp_path / "no\nsuch")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "no\\x0asuch: no such folder" in done.stderr
