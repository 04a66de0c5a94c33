"""`deepres train`: bad numbers, bad data, resume mistakes, two runs in one folder."""

import json
import os
import subprocess
import sys
import tarfile

import numpy as np
import pytest
from PIL import Image

from conftest import assert_clean_error, tree_hash
from deepres.train.guard import RunLock

TINY = ["--model", "resnet8", "--batch-size", "8", "--iterations", "3"]


@pytest.mark.parametrize("flag, value", [
    ("--batch-size", "0"), ("--batch-size", "-1"), ("--epochs", "0"), ("--epochs", "-3"),
    ("--iterations", "0"), ("--iterations", "1.5"), ("--log-every", "0"),
    ("--checkpoint-every", "-2"), ("--lr", "nan"), ("--lr", "-0.1"), ("--lr", "inf"),
    ("--holdout", "1.5"), ("--holdout", "-0.1"), ("--seed", "-1"), ("--device", "tpu"),
    ("--device", "cuda:0"),
])
def test_bad_numbers_and_devices(cli, tmp_path, tiny_data, flag, value):
    if value.startswith("cuda"):
        import torch
        if torch.cuda.is_available():
            pytest.skip("a GPU is visible")
    run = tmp_path / "run"
    code, _, err = cli("train", "--data", tiny_data, "--run-dir", run, flag, value)
    assert_clean_error(code, err, flag)
    assert value in err
    assert not run.exists()


def test_file_that_is_not_an_archive(cli, tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("hello")
    code, _, err = cli("train", "--data", f, "--run-dir", tmp_path / "run")
    assert_clean_error(code, err, f, "is a file")
    assert not (tmp_path / "run").exists()


def test_one_class_is_refused_and_leaves_no_run_dir(cli, tmp_path):
    d = tmp_path / "one" / "only"
    d.mkdir(parents=True)
    for i in range(10):
        Image.fromarray(np.full((32, 32, 3), i * 20, np.uint8)).save(d / f"{i}.png")
    code, _, err = cli("train", "--data", tmp_path / "one", "--run-dir", tmp_path / "run", *TINY)
    assert_clean_error(code, err, "one class")
    assert not (tmp_path / "run").exists()


def test_refused_tar_leaves_no_temporary_folder(cli, tmp_path):
    from deepres.data.splits import cache_dir

    tar = tmp_path / "evil.tar"
    with tarfile.open(tar, "w") as t:
        info = tarfile.TarInfo("../escape.png")
        info.size = 1
        import io
        t.addfile(info, io.BytesIO(b"x"))
    before = sorted((cache_dir() / "extracted").glob("*")) if (
        cache_dir() / "extracted").exists() else []
    code, _, err = cli("train", "--data", tar, "--run-dir", tmp_path / "run", *TINY)
    assert_clean_error(code, err, "escape")
    after = sorted((cache_dir() / "extracted").glob("*"))
    assert after == before
    assert not (tmp_path / "run").exists()


def test_mixed_sizes_are_resized_to_the_dominant_size_and_every_image_counts(cli, tmp_path):
    from helpers import make_tiny_folder

    data = make_tiny_folder(tmp_path / "mixed", per_class=8, test_per_class=2)
    big = data / "train" / "class0" / "000-big.png"  # sorts first in its class
    Image.fromarray(np.zeros((300, 400, 3), np.uint8)).save(big)
    for i, (w, h) in enumerate([(50, 40), (20, 20)]):  # test images of other sizes too
        Image.fromarray(np.full((h, w, 3), 90, np.uint8)).save(
            data / "test" / "class1" / f"odd{i}.png")
    code, out, err = cli("train", "--data", data, "--run-dir", tmp_path / "run", *TINY)
    assert code == 0, err  # nothing refused, no --skip-bad needed
    assert "held in memory" in err and "1 image(s) of other sizes resized to 32x32" in err
    summary = json.loads(out[out.index("{"):])
    assert summary["test_images"] == 3 * 2 + 2  # every test image counted
    code, out, err = cli("eval", "--weights", tmp_path / "run" / "weights.safetensors",
                         "--data", data, "--json")
    assert code == 0 and json.loads(out)["images"] == 8, err


def test_file_names_that_are_not_utf8(cli, tmp_path):
    if sys.platform == "darwin":
        pytest.skip("macOS file systems require UTF-8 names")
    from helpers import make_tiny_folder

    data = make_tiny_folder(tmp_path / "names", per_class=8, test_per_class=2)
    src = data / "train" / "class1" / "000.png"
    os.rename(src, os.path.join(os.fsencode(src.parent), b"caf\xe9.png"))
    code, _, err = cli("train", "--data", data, "--run-dir", tmp_path / "run", *TINY)
    assert code == 0, err
    code, out, _ = cli("data", "check", data)
    assert code == 0 and "all files decode" in out


@pytest.fixture
def finished_run(tmp_path, tiny_data, cli):
    run = tmp_path / "run"
    code, _, err = cli("train", "--data", tiny_data, "--run-dir", run, *TINY)
    assert code == 0, err
    return run


def _no_checkpoint(run):
    (run / "checkpoint.pt").unlink()


def _corrupt_config(run):
    (run / "config.json").write_text("{not json")


@pytest.mark.parametrize("spoil, flags, named", [
    (_no_checkpoint, [], ["checkpoint.pt"]),  # refused, naming the file
    (None, ["--lr", "0.05", "--model", "resnet14"],  # changed flags are listed
     ["--lr 0.05", "--model resnet14", "config.json"]),
    (_corrupt_config, [], ["config.json"]),  # a corrupt config is named
], ids=["without-checkpoint", "changed-flags", "corrupt-config"])
def test_resume_refusals_change_nothing(cli, finished_run, spoil, flags, named):
    if spoil is not None:
        spoil(finished_run)
    before = tree_hash(finished_run)
    code, _, err = cli("train", "--resume", finished_run, *flags)
    assert_clean_error(code, err, *named)
    if spoil is not None:
        assert str(finished_run / named[0]) in err
    assert tree_hash(finished_run) == before


def test_resume_can_extend_the_run(cli, finished_run):
    code, _, err = cli("train", "--resume", finished_run, "--iterations", "5")
    assert code == 0, err
    assert "3 -> 5 iterations" in err
    assert json.loads((finished_run / "config.json").read_text())["optim"]["iterations"] == 5
    lines = (finished_run / "metrics.jsonl").read_text().splitlines()
    steps = [json.loads(x)["step"] for x in lines]
    assert max(steps) == 5



def test_second_run_in_a_locked_folder_names_the_other_process(cli, finished_run):
    lock = RunLock(finished_run)
    lock.acquire()
    try:
        before = tree_hash(finished_run)
        code, _, err = cli("train", "--resume", finished_run)
        assert_clean_error(code, err, finished_run, f"process {os.getpid()}")
        assert tree_hash(finished_run) == before
    finally:
        lock.release()


def test_a_killed_run_leaves_no_stale_lock(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    code = ("import sys, time; from deepres.train.guard import RunLock; "
            f"RunLock({str(run)!r}).acquire(); print('locked', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    proc.kill()
    proc.wait()
    lock = RunLock(run)
    lock.acquire()  # the kernel dropped the dead process's lock
    lock.release()
