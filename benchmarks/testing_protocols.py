"""Testing protocols on the bundled sample: 1 crop vs 10 crops vs multi-scale, and an ensemble of
two seeds vs each alone. Trains the two models (the default `deepres train` recipe, seeds 0 and 1)
if they are not in runs/ yet.

    .venv/bin/python benchmarks/testing_protocols.py
"""

from __future__ import annotations

import platform
from pathlib import Path

import torch

from deepres.evaluate.runner import run_eval
from deepres.train import fit, recipe
from deepres.train.config import with_overrides

RUNS = Path("runs")
SCALES = [32, 40, 48]


def trained(seed: int) -> str:
    run_dir = RUNS / f"bench-sample-resnet20-s{seed}"
    if not (run_dir / "weights.safetensors").exists():
        cfg = with_overrides(recipe("fast", "resnet20"),
                             run={"run_dir": str(run_dir), "seed": seed, "log_every": 100})
        fit(cfg, resume=(run_dir / "config.json").exists())
    return str(run_dir / "weights.safetensors")


def main() -> None:
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}")
    weights = [trained(0), trained(1)]
    print("\nresnet20, fast recipe (20 epochs) on the bundled sample; errors on its 1,000 test "
          "images (%)\n| model | 1 crop top-1 | 10-crop top-1 | multi-scale "
          f"{','.join(map(str, SCALES))} top-1 | 1 crop top-5 |\n|---|---|---|---|---|")
    sets = [("seed 0", weights[:1]), ("seed 1", weights[1:]), ("ensemble of both", weights)]
    for label, ws in sets:
        one = run_eval(ws, "sample")
        ten = run_eval(ws, "sample", crops=10)
        ms = run_eval(ws, "sample", scales=SCALES)
        print(f"| {label} | {100 * one['top1_error']:.1f} | {100 * ten['top1_error']:.1f} | "
              f"{100 * ms['top1_error']:.1f} | {100 * one['top5_error']:.1f} |")


if __name__ == "__main__":
    main()
