"""The benchmark scripts that the issues' figures come from run end to end at a tiny setting."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_time_to_accuracy_script_runs_end_to_end(tmp_path, tiny_data):
    # the tiny folder, not the 6,000-image sample: the script's path end to end is the test
    out, tmp = tmp_path / "tta", tmp_path / "tmp"
    tmp.mkdir()
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "time_to_accuracy.py"),
                           "--data", str(tiny_data), "--epochs", "1", "--out", str(out), "--",
                           "--no-compile", "--model", "resnet8", "--batch-size", "32"],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TMPDIR": str(tmp)})
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((out / "time_to_accuracy.json").read_text())
    assert result["test_images"] == 24
    assert 0 < result["test_accuracy"] <= 1 and 0 < result["flip_tta_accuracy"] <= 1
    assert result["wall_s"] > 0 and "goal_met" in result
    assert not list(tmp.glob("deepres-tta-cache-*")), "the cold data cache was left behind"


def test_gpu_benchmark_runs_tiny_on_the_cpu(tmp_path, tiny_data):
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--tiny",
                           "--device", "cpu", "--data", str(tiny_data),
                           "--json", str(tmp_path / "gpu.json")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    results = json.loads((tmp_path / "gpu.json").read_text())["results"]
    assert len(results) == 3 and all("error" not in r for r in results.values())


@pytest.mark.slow  # about 3 minutes on 2 quiet cores (13 processes, each importing torch)
def test_device_check_dry_run_runs_every_step_on_the_cpu(tmp_path):
    out = tmp_path / "check.json"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "device_check.py"),
                           "--dry-run", "--out", str(out)],
                          capture_output=True, text=True, timeout=900)
    report = json.loads(out.read_text())
    assert done.returncode == 0, json.dumps(report["steps"], indent=1)[-4000:]
    steps = {r["step"]: r for r in report["steps"]}
    assert len(steps) == 13 and not report["failed"] and report["complete"]
    # The GPU-only steps rehearsed here (all but fp16): two --deterministic runs bit-identical.
    assert steps["deterministic runs identical"]["figures"] == {"identical": True}
    assert steps["versions"]["figures"]["torch"] and steps["gpu.py"]["figures"]
    assert steps["eval"]["figures"]["images"] == 1000
    assert steps["int8 eval on the CPU"]["figures"]["images"] == 1000


_CUT_SHORT = """
import sys
sys.path.insert(0, {bench!r})
import device_check
py = sys.executable
device_check.plan = lambda *a: [
    ("first", [py, "-c", "print('{{}}')"], 30),
    ("the loan ends", [py, "-c", "import os, signal; os.kill(os.getppid(), signal.SIGKILL)"], 30),
    ("never reached", [py, "-c", "pass"], 30)]
device_check.main(["--dry-run", "--out", {out!r}])
"""


def test_device_check_cut_short_still_leaves_what_it_checked(tmp_path):
    # A GPU loan may end mid-run: the report is rewritten after every step, atomically.
    out, tmp = tmp_path / "check.json", tmp_path / "tmp"
    tmp.mkdir()  # the killed check's own work folder stays in here
    done = subprocess.run([sys.executable, "-c", _CUT_SHORT.format(
        bench=str(ROOT / "benchmarks"), out=str(out))], capture_output=True, text=True,
        timeout=120, env={**os.environ, "TMPDIR": str(tmp)})
    assert done.returncode == -9, done.stderr[-2000:]
    report = json.loads(out.read_text())
    assert not report["complete"] and report["passed"] == 1
    assert [s["step"] for s in report["steps"]] == ["first"]
    assert sorted(tmp_path.iterdir()) == [out, tmp]  # no temporary file left beside it


_SEES = """
import sys, torch
sys.path.insert(0, {bench!r})
import avx2_only
from deepres.runtime.precision import cpu_flags, cpu_has_native_bf16
x = torch.rand(8, 3, 64, 64)
torch.nn.Conv2d(3, 16, 3)(x).sum()
print(torch.backends.cpu.get_cpu_capability(), sorted(f for f in cpu_flags() if "avx" in f),
      cpu_has_native_bf16(), avx2_only.active())
print(avx2_only.avx512_state_report())
"""


def test_avx2_only_hides_avx512_from_torch_and_deepres(tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import avx2_only

    try:
        avx2_only.environment({"XDG_CACHE_HOME": str(tmp_path)})
    except avx2_only.Unavailable as exc:
        pytest.skip(str(exc))
    code = _SEES.format(bench=str(ROOT / "benchmarks"))
    plain = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           timeout=120)
    hidden = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "avx2_only.py"), "--",
                             sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "XDG_CACHE_HOME": str(tmp_path)})
    assert plain.returncode == 0 and hidden.returncode == 0, plain.stderr + hidden.stderr
    # Without the shim this CPU shows AVX-512; with it, nothing past AVX2 in any view.
    assert plain.stdout.split()[0].startswith("AVX512"), plain.stdout
    seen = hidden.stdout.splitlines()
    assert seen[0].startswith("AVX2 ['avx', 'avx2'] False True"), seen[0]
    assert "none after start-up" in seen[1], seen[1]


PEER = ROOT.parent / "shared" / "peers" / "akamaster"


@pytest.mark.skipif(not (PEER / "trainer.py").is_file(), reason="the peer's code is not here")
def test_akamaster_runner_resumes_exactly_where_it_stopped(tmp_path):
    """The peer-trainer runner stopped after one epoch and run again ends with the same weights
    and the same per-epoch log as one uninterrupted run."""
    import torch

    from helpers import make_tiny_folder

    data = make_tiny_folder(tmp_path / "tiny", per_class=40, test_per_class=10)

    def run(out, *extra):
        done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "akamaster_trainer.py"),
                               "--data", str(data), "--epochs", "2", "--out", str(out),
                               "--threads", "1", *extra],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    run(tmp_path / "whole")
    first = run(tmp_path / "parts", "--stop-after-epochs", "1")
    assert "epoch 1/2" in first and "epoch 2/2" not in first
    after_one = torch.load(tmp_path / "parts" / "checkpoint.th", weights_only=False)
    assert "resuming" in run(tmp_path / "parts")

    def final(out):
        ckpt = torch.load(out / "checkpoint.th", map_location="cpu", weights_only=False)
        log = [json.loads(x) for x in (out / "epochs.jsonl").read_text().splitlines()]
        return ckpt, [(r["epoch"], r["lr"], r["test_error"]) for r in log]

    (a, log_a), (b, log_b) = final(tmp_path / "whole"), final(tmp_path / "parts")
    assert log_a == log_b and [e for e, _, _ in log_a] == [1, 2]
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k
    assert not torch.equal(a["state_dict"]["module.conv1.weight"],
                           after_one["state_dict"]["module.conv1.weight"]), "no training"


def test_the_int8_accuracy_check_fails_loudly_below_its_thresholds(monkeypatch):
    """benchmarks/engines.py --accuracy: int8 that disagrees with fp32, or loses accuracy, or
    gives NaN, is a failure line (and exit 1), not a table row read past."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    engines = pytest.importorskip("engines")
    good = engines.int8_failures("resnet20", {"fp32": 12.3, "ort": 12.4, "ov": 12.2},
                                 {"fp32": 100.0, "ort": 99.0, "ov": 98.9})
    assert good == []
    bad = engines.int8_failures("resnet20", {"fp32": 12.3, "ort": 13.0, "ov": float("nan")},
                                {"fp32": 100.0, "ort": 97.5, "ov": float("nan")})
    assert len(bad) == 4
    assert "97.50% of the test images, below 98.0%" in bad[0]
    assert "+0.70 points" in bad[1]
