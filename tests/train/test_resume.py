"""A run killed with SIGKILL at several moments and resumed ends bit-identical to an
uninterrupted run with the same seed (CPU)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from safetensors.torch import load_file

from helpers import last_step, make_large_folder, run_killed_at


def _cmd(data, run_dir, resume):
    where = ["--resume", str(run_dir)] if resume else ["--run-dir", str(run_dir)]
    return [sys.executable, "-m", "deepres", "train", "--model", "resnet8", "--data", str(data),
            "--epochs", "16", "--batch-size", "16", "--checkpoint-every", "5", "--log-every", "1",
            "--seed", "7", "--precision", "fp32", *where]


def test_sigkill_and_resume_is_bit_identical(tiny_data, tmp_path):
    ref = tmp_path / "ref"
    done = subprocess.run(_cmd(tiny_data, ref, resume=False), capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    killed = tmp_path / "killed"
    # Twice (it was five times; issue 41 item 7): mid-epoch between checkpoints (33: resumes
    # from 30), and on an epoch's last step just before a checkpoint (59: resumes from 55).
    run_killed_at(lambda resume: _cmd(tiny_data, killed, resume), killed, kill_steps=[33, 59])
    a = load_file(str(ref / "weights.safetensors"))
    b = load_file(str(killed / "weights.safetensors"))
    assert a.keys() == b.keys()
    diff = [k for k in a if not (a[k] == b[k]).all()]
    assert not diff, f"{len(diff)} tensors differ, e.g. {diff[:3]}"
    # The metrics log is the same too (no duplicated or missing steps).
    def steps(run):
        return [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps(ref) == steps(killed)


def _stop_with(data, run_dir, sig, at_step):
    """Start a run, send ``sig`` once the log reaches ``at_step``; return (code, stderr)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(_cmd(data, run_dir, resume=run_dir.exists()), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while last_step(run_dir) < at_step and proc.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err.decode()


def test_sigterm_and_sigint_checkpoint_the_current_step_and_resume_bit_identically(
        tiny_data, tmp_path):
    import torch

    ref = tmp_path / "ref"
    done = subprocess.run(_cmd(tiny_data, ref, resume=False), capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    run = tmp_path / "stopped"
    stops = []
    for sig, code, target in ((signal.SIGTERM, 143, 12), (signal.SIGINT, 130, 40)):
        rc, err = _stop_with(tiny_data, run, sig, target)
        assert rc == code, err[-2000:]
        assert "Traceback" not in err
        line = [x for x in err.splitlines() if "stopped by" in x]
        assert line and signal.Signals(sig).name in line[0], err[-2000:]
        step = int(line[0].split("after step ")[1].split(";")[0])
        # The checkpoint holds exactly the step it says (not the last --checkpoint-every one).
        ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
        assert ckpt["step"] == step
        stops.append(step)
    before = ckpt["seconds"]  # the training time of the two stopped processes
    assert before > 0
    done = subprocess.run(_cmd(tiny_data, run, resume=True), capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    # The summary counts the whole run's training time, not only the last process's.
    summary = json.loads((run / "summary.json").read_text())
    assert summary["resumed_at_steps"] == stops
    assert summary["seconds"] > before and "seconds_since_step" not in summary
    # Each sitting is recorded: the steps it took, its machine and precision.
    segs = summary["segments"]
    assert [(g["from_step"], g["to_step"]) for g in segs] == \
        [(0, stops[0]), (stops[0], stops[1]), (stops[1], summary["steps"])]
    assert all(g["machine"]["cpu"] and g["machine"]["precision"] == "fp32" for g in segs)
    a = load_file(str(ref / "weights.safetensors"))
    b = load_file(str(run / "weights.safetensors"))
    assert not [k for k in a if not (a[k] == b[k]).all()]


def test_resume_after_a_divergence_accepts_a_lower_lr(tiny_data, tmp_path, capsys):
    # The message names the exact command; that command works, and the change is recorded.
    import json

    from deepres.cli import main

    run = tmp_path / "run"
    base = ["train", "--model", "resnet8", "--data", str(tiny_data), "--batch-size", "16",
            "--epochs", "3", "--log-every", "2", "--checkpoint-every", "4", "--precision",
            "fp32"]
    assert main([*base, "--lr", "1e12", "--run-dir", str(run)]) == 2
    err = capsys.readouterr().err
    command = err[err.index("deepres train --resume"):].split("\n")[0].strip()
    assert command == f"deepres train --resume {run} --lr 1e+11"
    assert main(["train", "--resume", str(run), "--lr", "0.01"]) == 0
    assert json.loads((run / "config.json").read_text())["optim"]["lr"] == 0.01
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert any(r.get("changed_on_resume") == {"lr": [1e12, 0.01]} for r in rows)
    assert not (run / "diverged.json").exists()
    # A run that did not diverge keeps its learning rate.
    assert main(["train", "--resume", str(run), "--lr", "0.02", "--epochs", "4"]) == 2
    assert "only after a stop on non-finite values" in capsys.readouterr().err


def test_a_resume_may_follow_the_machines_precision(tiny_data, tmp_path, capsys):
    # A long run moves between machines: --precision may change on resume (auto: bf16 where
    # native, else fp32), and the summary says which precision trained which steps.
    import json

    from deepres.cli import main

    run = tmp_path / "run"
    base = ["train", "--model", "resnet8", "--data", str(tiny_data), "--batch-size", "16",
            "--log-every", "2"]
    assert main([*base, "--iterations", "4", "--precision", "fp32", "--run-dir", str(run)]) == 0
    assert main(["train", "--resume", str(run), "--iterations", "8",
                 "--precision", "bf16"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert [(g["from_step"], g["to_step"], g["machine"]["precision"])
            for g in summary["segments"]] == [(0, 4, "fp32"), (4, 8, "bf16")]
    assert json.loads((run / "config.json").read_text())["run"]["precision"] == "bf16"
    # Other settings still may not change on resume.
    assert main(["train", "--resume", str(run), "--iterations", "10", "--lr", "0.5"]) == 2


@pytest.mark.parametrize("buffer", ["0", "6"])
def test_a_run_streamed_from_shards_resumes_bit_identically(tmp_path, buffer):
    """Large images in WebDataset shards are read per step in DataLoader workers (each sample a
    member of a shard, data/tarindex.py); a killed run resumes exactly as from a folder, with
    the whole set shuffled (0) or each worker streaming its own shards (--shuffle-buffer)."""
    from deepres.data import resolve
    from deepres.data.shards import write_shards

    folder = make_large_folder(tmp_path / "big", 16, 4, seed=2)
    shards = tmp_path / "shards"
    write_shards(resolve(str(folder)).indexes(), shards, 10)

    def cmd(run, resume):
        where = ["--resume", str(run)] if resume else ["--run-dir", str(run)]
        return [sys.executable, "-m", "deepres", "train", "--model", "resnet8", "--data",
                str(shards), "--epochs", "4", "--batch-size", "8", "--input-size", "48",
                "--checkpoint-every", "2", "--log-every", "1", "--seed", "5", "--precision",
                "fp32", "--workers", "2", "--shuffle-buffer", buffer, *where]

    ref = tmp_path / "ref"
    done = subprocess.run(cmd(ref, False), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "streamed" in done.stderr
    killed = tmp_path / "killed"
    run_killed_at(lambda resume: cmd(killed, resume), killed, kill_steps=[5])
    a = load_file(str(ref / "weights.safetensors"))
    b = load_file(str(killed / "weights.safetensors"))
    assert all((a[k] == b[k]).all() for k in a)
