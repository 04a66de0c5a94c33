"""Out of space anywhere: one line naming the path and the space needed, exit 2, the temporary
file removed, what existed intact; a later --resume removes stray temporaries."""

import errno
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from deepres.cli import main
from deepres.runtime import files
from deepres.train import CheckpointError, load_checkpoint
from deepres.train import checkpoint as ckpt_mod
from helpers import make_weights


def _train(data, run, *extra):
    return ["train", "--model", "resnet8", "--data", str(data), "--batch-size", "16",
            "--precision", "fp32", "--run-dir", str(run), *extra]


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 1 MiB tmpfs: room for a run's first checkpoint of ResNet-8, not for a second copy."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or 'mount failed'}); the "
                    "fault-injection tests below cover the same paths")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_a_real_full_disk_during_a_checkpoint(tiny_data, small_tmpfs, capsys):
    run = small_tmpfs / "run"
    code = main(_train(tiny_data, run, "--epochs", "2", "--checkpoint-every", "1"))
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err and err.count("deepres: error:") == 1
    assert "the disk is full" in err and str(run / "checkpoint.pt") in err and "free there" in err
    assert load_checkpoint(run / "checkpoint.pt")["step"] >= 0  # the previous one, intact
    assert not files.stray_temporaries(run)


def test_injected_torch_zip_writer_failure_is_out_of_space(tmp_path, monkeypatch):
    # torch.save reports a full disk as a RuntimeError from its zip writer, not an OSError.
    path = tmp_path / "checkpoint.pt"
    ckpt_mod.save_checkpoint({"step": 1, "w": torch.ones(3)}, path)
    before = path.read_bytes()

    def full(obj, f, *args, **kwargs):
        Path(f).write_bytes(b"x" * 1000)
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")

    monkeypatch.setattr(ckpt_mod.torch, "save", full)
    monkeypatch.setattr(files.shutil, "disk_usage",
                        lambda p: shutil._ntuple_diskusage(10**6, 10**6 - 512, 512))
    with pytest.raises(CheckpointError, match=r"the disk is full \(512 B free there; it needs "
                                              r"more than 1000 B\)"):
        ckpt_mod.save_checkpoint({"step": 2, "w": torch.zeros(3)}, path)
    assert path.read_bytes() == before and not files.stray_temporaries(tmp_path)


@pytest.mark.parametrize("writer", ["weights", "report", "export"])
def test_every_writer_says_out_of_space_in_one_line(writer, tmp_path, monkeypatch, capsys):
    weights = make_weights(tmp_path / "w.safetensors")
    target = {"weights": tmp_path / "w.safetensors", "report": tmp_path / "r.md",
              "export": tmp_path / "m.onnx"}[writer]
    if target.exists():
        before = target.read_bytes()
    real_replace = files.os.replace

    def full(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "replace", full)
    if writer == "weights":
        from deepres.models import create_model, save_weights
        with pytest.raises(files.OutOfSpaceError, match="w.safetensors: not written"):
            save_weights(create_model("resnet8"), target)
        assert target.read_bytes() == before
    elif writer == "report":
        with pytest.raises(files.OutOfSpaceError, match="r.md: not written"):
            files.atomic_write_text(target, "# report\n")
        assert not target.exists()
    else:
        assert main(["export", "--weights", str(weights), "--format", "onnx", str(target)]) == 2
        err = capsys.readouterr().err
        assert "m.onnx: not written, the disk is full" in err and "Traceback" not in err
        assert not target.exists()
    monkeypatch.setattr(files.os, "replace", real_replace)
    assert not files.stray_temporaries(tmp_path)


def test_resume_removes_stray_temporaries_and_files_share_one_mode(tiny_data, tmp_path):
    run = tmp_path / "run"
    assert main(_train(tiny_data, run, "--epochs", "1")) == 0
    modes = {p.name: p.stat().st_mode & 0o777 for p in run.iterdir() if p.is_file()}
    assert len(set(modes.values())) == 1, modes  # weights.safetensors was 0600 before
    stray = run / ".checkpoint.pt.999999.tmp"
    stray.write_bytes(b"half")
    assert main(["train", "--resume", str(run), "--epochs", "2"]) == 0
    assert not stray.exists()


@pytest.mark.parametrize("fmt", ["torchscript", "cpu"])
def test_a_real_full_disk_during_a_torchscript_export(small_tmpfs, tmp_path, fmt):
    # PyTorch's own file writer aborted the process (SIGABRT, exit 134, a C++ stack) and left
    # its temporary file; the program is now serialised in memory and written by Python.
    import sys

    from helpers import make_weights

    weights = make_weights(tmp_path / "w.safetensors", name="resnet32")  # ~1.9 MB of weights
    done = subprocess.run([sys.executable, "-m", "deepres", "export", "--weights", str(weights),
                           "--format", fmt, str(small_tmpfs / "m.pt")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and "terminate called" not in done.stderr
    assert "m.pt" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert list(small_tmpfs.iterdir()) == []  # no temporary file left behind
