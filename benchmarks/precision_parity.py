"""bf16 vs fp32 training: same test error within the spread between seeds, and the speed-up.

    .venv/bin/python benchmarks/precision_parity.py [--data sample] [--model resnet20] \\
        [--epochs 15] [--seeds 0 1] [--out runs/parity]

Trains the model with `--precision fp32` and `--precision bf16` for each seed, interleaved
(fp32 seed 0, bf16 seed 0, fp32 seed 1, ...) so machine noise hits both alike, and prints the
final test errors, their spread, and the training throughput ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="sample")
    ap.add_argument("--model", default="resnet20")
    ap.add_argument("--recipe", default="fast")
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--out", default="runs/parity")
    a = ap.parse_args()
    results: dict[str, list[dict]] = {"fp32": [], "bf16": []}
    for seed in a.seeds:
        for precision in ("fp32", "bf16"):
            run = Path(a.out) / f"{precision}-seed{seed}"
            if not (run / "summary.json").exists():
                cmd = [sys.executable, "-m", "deepres", "train", "--model", a.model, "--data",
                       a.data, "--recipe", a.recipe, "--epochs", str(a.epochs), "--seed",
                       str(seed), "--precision", precision, "--run-dir", str(run)]
                subprocess.run(cmd, check=True, capture_output=True)
            summary = json.loads((run / "summary.json").read_text())
            rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
            speed = statistics.median(r["images_per_s"] for r in rows if "images_per_s" in r)
            results[precision].append({"seed": seed, "test_error": summary["test_error"],
                                       "seconds": summary["seconds"], "images_per_s": speed})
    print(f"{a.model}, {a.recipe} recipe, {a.epochs} epochs on {a.data}, seeds {a.seeds}\n")
    print("| precision | test error per seed (%) | mean | spread (max-min) | train img/s "
          "(median) | train seconds |")
    print("|---|---|---|---|---|---|")
    for p, rs in results.items():
        errs = [100 * r["test_error"] for r in rs]
        print(f"| {p} | {' / '.join(f'{e:.2f}' for e in errs)} | {statistics.mean(errs):.2f} "
              f"| {max(errs) - min(errs):.2f} | "
              f"{statistics.mean(r['images_per_s'] for r in rs):.0f} | "
              f"{statistics.mean(r['seconds'] for r in rs):.0f} |")
    f32 = [100 * r["test_error"] for r in results["fp32"]]
    b16 = [100 * r["test_error"] for r in results["bf16"]]
    gap = abs(statistics.mean(b16) - statistics.mean(f32))
    spread = max(max(f32) - min(f32), max(b16) - min(b16))
    speedup = (statistics.mean(r["images_per_s"] for r in results["bf16"])
               / statistics.mean(r["images_per_s"] for r in results["fp32"]))
    print(f"\nmean gap {gap:.2f} points vs the largest seed spread {spread:.2f}: "
          f"{'within' if gap <= spread else 'OUTSIDE'} the spread; bf16 trains "
          f"{speedup:.2f}x as fast")


if __name__ == "__main__":
    main()
