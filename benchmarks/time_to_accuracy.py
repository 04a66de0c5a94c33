"""Time to accuracy: wall time from a cold start (empty data cache, so the JPEG decode counts)
to the final model's test error, for one training command.

    .venv/bin/python benchmarks/time_to_accuracy.py \\
        [--data ../shared/datasets/cifar10-jpg.tar.gz] [--recipe fast90] [--model resnet20] \\
        [--epochs N] [--out runs/tta] [-- EXTRA TRAIN FLAGS]

The figure judged is the final model's plain single-crop test error as `deepres train` reports
it (no selection on the test set: no early stopping, no checkpoint picking). The flip
test-time-augmentation figure (`deepres eval --tta flip`) is measured afterwards and reported
separately; its extra seconds are reported too.
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

from deepres.runtime.precision import cpu_name


def _deepres(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "deepres", *args], env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"deepres {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/datasets/cifar10-jpg.tar.gz")
    ap.add_argument("--recipe", default="fast90")
    ap.add_argument("--model", default="resnet20")
    ap.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs")
    ap.add_argument("--out", default="runs/time-to-accuracy", help="run directory (must be new)")
    ap.add_argument("--target", type=float, default=0.90, help="test accuracy goal")
    ap.add_argument("--budget", type=float, default=1800, help="wall-time goal, seconds")
    ap.add_argument("extra", nargs="*", help="more `deepres train` flags (after --)")
    a = ap.parse_args()

    # A cold cache, so the decode is timed too; removed at the end (the decoded set is
    # hundreds of MB).
    with tempfile.TemporaryDirectory(prefix="deepres-tta-cache-",
                                     ignore_cleanup_errors=True) as cache:
        env = {**os.environ, "DEEPRES_CACHE": cache}
        cmd = ["train", "--model", a.model, "--recipe", a.recipe, "--data", a.data,
               "--run-dir", a.out, *(["--epochs", str(a.epochs)] if a.epochs else []), *a.extra]
        t0 = time.time()
        done = _deepres(cmd, env)
        wall = time.time() - t0
        summary = json.loads(done.stdout[done.stdout.index("{"):])
        config = json.loads((Path(a.out) / "config.json").read_text())

        t1 = time.time()
        flip = json.loads(_deepres(["eval", "--weights", f"{a.out}/weights.safetensors",
                                    "--data", a.data, "--tta", "flip", "--json"], env).stdout)
        flip_s = time.time() - t1

    acc, flip_acc = 1 - summary["test_error"], 1 - flip["top1_error"]
    result = {
        "command": "deepres " + " ".join(cmd), "cpu": cpu_name(), "cores": os.cpu_count(),
        "precision": config["run"]["precision"], "compile": config["run"]["compile"],
        "iterations": config["optim"]["iterations"], "wall_s": round(wall, 1),
        "train_s": summary["seconds"], "test_images": summary["test_images"],
        "test_accuracy": round(acc, 4), "flip_tta_accuracy": round(flip_acc, 4),
        "flip_eval_s": round(flip_s, 1),
        "goal_met": acc >= a.target and wall <= a.budget,
    }
    (Path(a.out) / "time_to_accuracy.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"\n| model | recipe | precision | wall (decode + train + final eval) | test accuracy "
          f"| with flip TTA |\n|---|---|---|---|---|---|\n| {a.model} | {a.recipe} | "
          f"{result['precision']}{' + compile' if result['compile'] else ''} | "
          f"{wall / 60:.1f} min | {100 * acc:.2f}% | {100 * flip_acc:.2f}% (+{flip_s:.0f} s) |")


if __name__ == "__main__":
    main()
