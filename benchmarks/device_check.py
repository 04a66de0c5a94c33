"""The one-shot GPU check: everything a first, short GPU loan should confirm, in one run.

On a bare GPU machine as it comes (its own torch, this repository copied over, the CIFAR-10
archive beside it), from the repository root:

    bash benchmarks/device_check.sh ../cifar10-jpg.tar.gz        # writes device-check.json
    python benchmarks/device_check.py --data ../cifar10-jpg.tar.gz --out device-check.json

and on a CPU, every step the same way but small, as the test suite runs it:

    python benchmarks/device_check.py --dry-run --out /tmp/device-check.json

Steps (each a separate process running deepres from ``src/``, so no install is needed; a step
that fails is recorded and the others still run):
0. first the GPU's own questions: fp16 training with its gradient scaler, mixup/cutmix/
   TrivialAugment on the device, and ``--deterministic`` twice with a bit-identity check of the
   two weights files (a dry run rehearses all of these on the CPU but fp16, which a CPU refuses);
1. versions: Python, torch, CUDA, the GPU's name and compute capability, the precision ``auto``
   picks there;
2. ``benchmarks/gpu.py`` with its data given explicitly (throughput figures);
3. train ResNet-20 for 2 epochs on the GPU (``fast`` recipe), then resume it to 3 epochs;
4. eval the weights on the GPU; precise BN on the GPU, evaluated;
5. int8 export of the GPU-trained weights, evaluated on the CPU;
6. ``torchrun`` with 2 processes on the CPU (gloo), with CUDA present.
Every step's exit status, seconds, figures (its JSON output where it has one) and the tail of
its error output go into one JSON file, rewritten (atomically) after each step: ``complete``
says whether every step ran, so a run cut short still leaves what it checked. Meant to finish
in under 8 minutes on one GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # deepres from src/, no install (nothing heavy imported)

from deepres.runtime.files import atomic_write_text  # noqa: E402


def _env() -> dict[str, str]:
    src = str(ROOT / "src")
    return {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _json_tail(text: str):
    """The last JSON object a command printed, if any."""
    start = text.rfind("\n{")
    start = 0 if text.startswith("{") and start < 0 else start
    if start < 0:
        return None
    try:
        return json.loads(text[start:])
    except ValueError:
        return None


def _step(name: str, cmd: list[str], results: list[dict], timeout: float) -> dict:
    t0 = time.time()
    print(f"[device-check] {name}: {' '.join(cmd)}", file=sys.stderr, flush=True)
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_env(),
                              cwd=ROOT)
        rc, out, err = done.returncode, done.stdout, done.stderr
    except subprocess.TimeoutExpired as exc:
        rc, out, err = 124, exc.stdout or "", f"timed out after {timeout:.0f} s"
        out = out.decode() if isinstance(out, bytes) else out
    result = {"step": name, "rc": rc, "seconds": round(time.time() - t0, 1),
              "command": cmd, "figures": _json_tail(out.strip()),
              "stdout_tail": out[-1500:], "stderr_tail": err[-1500:] if rc else err[-400:]}
    results.append(result)
    print(f"[device-check] {name}: rc {rc} in {result['seconds']} s", file=sys.stderr,
          flush=True)
    return result


_VERSIONS = """
import json, platform, torch
from deepres.runtime.precision import resolve_precision, why
dev = "{device}"
info = {{"python": platform.python_version(), "torch": torch.__version__,
        "cuda": torch.version.cuda, "cuda_available": torch.cuda.is_available()}}
if dev.startswith("cuda") and torch.cuda.is_available():
    info["gpu"] = torch.cuda.get_device_name(0)
    info["capability"] = list(torch.cuda.get_device_capability(0))
    info["gpus"] = torch.cuda.device_count()
p = resolve_precision("auto", dev)
info["auto_precision"] = p
info["auto_why"] = why(p, dev)
print(json.dumps(info))
"""


def plan(data: str, device: str, work: Path, dry: bool) -> list[tuple[str, list[str], float]]:
    py = sys.executable
    dp = [py, "-m", "deepres"]
    run = work / "run"
    # Dry: a few steps (epochs of the sample would take minutes on a CPU).
    first = ["--iterations", "4", "--batch-size", "16"] if dry else ["--epochs", "2"]
    more = ["--iterations", "6"] if dry else ["--epochs", "3"]
    weights = str(run / "weights.safetensors")
    return _gpu_questions(dp, py, data, device, work, dry) + [
        ("versions", [py, "-c", _VERSIONS.format(device=device)], 60),
        ("gpu.py", [py, str(ROOT / "benchmarks" / "gpu.py"), "--device", device,
                    "--data", data, "--json", str(work / "gpu.json"),
                    *(["--tiny"] if dry else [])], 240),
        ("train 2 epochs", [*dp, "train", "--model", "resnet20", "--data", data, "--device",
                            device, "--run-dir", str(run), *first], 240),
        ("resume to 3 epochs", [*dp, "train", "--resume", str(run), *more], 180),
        ("eval", [*dp, "eval", "--weights", weights, "--data", data, "--device", device,
                  "--json"], 120),
        ("precise BN", [*dp, "precise-bn", "--weights", weights, "--data", data, "--device",
                        device, "--batches", "2" if dry else "50",
                        str(work / "precise.safetensors")], 180),
        ("int8 export", [*dp, "export", "--weights", weights, "--format", "int8", "--data",
                         data, str(work / "int8.pt")], 180),
        ("int8 eval on the CPU", [*dp, "eval", "--weights", str(work / "int8.pt"), "--data",
                                  data, "--device", "cpu", "--json"], 180),
        ("torchrun 2 CPU processes", [py, "-m", "torch.distributed.run", "--standalone",
                                      "--nproc-per-node=2", "-m", "deepres", "train",
                                      "--model", "resnet8", "--data", "sample", "--device",
                                      "cpu", "--iterations", "4", "--batch-size", "16",
                                      "--sync-bn", "--run-dir", str(work / "ddp")], 180),
    ]


_SAME = ("import sys, torch\nfrom safetensors.torch import load_file\n"
         "a, b = load_file(sys.argv[1]), load_file(sys.argv[2])\n"
         "same = all(torch.equal(a[k], b[k]) for k in a)\n"
         "print('{\"identical\": %s}' % str(same).lower()); sys.exit(0 if same else 1)")


def _gpu_questions(dp: list[str], py: str, data: str, device: str, work: Path, dry: bool
              ) -> list[tuple[str, list[str], float]]:
    """The GPU's own questions: fp16 with its gradient scaler (a GPU only: refused on a CPU),
    the modern options on the device, and whether --deterministic makes two runs
    bit-identical. A dry run rehearses all but fp16 on the CPU, a few steps each."""
    modern = ["--mixup", "0.2", "--cutmix", "1.0", "--auto-augment", "trivialaugment"]
    steps = ["--iterations", "3", "--batch-size", "16"] if dry else ["--iterations", "30"]
    det = [*dp, "train", "--model", "resnet20", "--data", data, "--device", device, *steps,
           "--deterministic", "--precision", "fp32"]
    fp16 = [] if dry else [
        ("fp16 with its gradient scaler", [*dp, "train", "--model", "resnet20", "--data", data,
                                           "--device", device, "--precision", "fp16",
                                           "--iterations", "60", "--run-dir",
                                           str(work / "fp16")], 240)]
    return fp16 + [
        ("mixup/cutmix/TrivialAugment on the device", [*dp, "train", "--model", "resnet20",
                                                    "--data", data, "--device", device,
                                                    *steps, *modern,
                                                    "--run-dir", str(work / "modern")], 240),
        ("deterministic run 1", [*det, "--run-dir", str(work / "det1")], 180),
        ("deterministic run 2", [*det, "--run-dir", str(work / "det2")], 180),
        ("deterministic runs identical", [py, "-c", _SAME,
                                          str(work / "det1" / "weights.safetensors"),
                                          str(work / "det2" / "weights.safetensors")], 60),
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=None,
                    help="the CIFAR-10 archive or folder (required without --dry-run)")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--out", default="device-check.json")
    ap.add_argument("--dry-run", action="store_true",
                    help="every step on the CPU, small, on the bundled sample")
    args = ap.parse_args(argv)
    if args.dry_run:
        device, data = "cpu", args.data or "sample"
    else:
        device, data = args.device, args.data
        if not data:
            ap.error("--data PATH is required (the CIFAR-10 archive copied to this machine)")
    results: list[dict] = []
    started = time.time()

    def report(complete: bool) -> dict:
        # Written after every step: a loan that ends mid-run still returns what was checked.
        out = {"dry_run": args.dry_run, "device": device, "data": data, "complete": complete,
               "seconds": round(time.time() - started, 1),
               "passed": sum(s["rc"] == 0 for s in results),
               "failed": [s["step"] for s in results if s["rc"] != 0], "steps": results}
        atomic_write_text(args.out, json.dumps(out, indent=2) + "\n")
        return out

    with tempfile.TemporaryDirectory(prefix="deepres-device-check-") as tmp:
        for name, cmd, timeout in plan(data, device, Path(tmp), args.dry_run):
            r = _step(name, cmd, results, timeout)
            table = Path(tmp) / "gpu.json"  # gpu.py writes its figures to a file
            if name == "gpu.py" and table.exists():
                r["figures"] = json.loads(table.read_text())
            report(complete=False)
    final = report(complete=True)
    print(f"{final['passed']} passed, {len(final['failed'])} failed")
    return 0 if not final["failed"] else 1


if __name__ == "__main__":
    sys.exit(main())
