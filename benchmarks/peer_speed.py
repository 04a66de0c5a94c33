"""Training speed, akamaster's trainer vs ours, ResNet-20 at batch 128 on the same CPU (issue 44).

    .venv/bin/python benchmarks/peer_speed.py [--rounds 3] [--steps 60]

Three trainers on the full CIFAR-10 JPEG training set, each in its own process, interleaved round
by round (peer, ours fp32 eager, ours default, peer, ...), since these machines are noisy:

- peer: akamaster's unchanged `trainer.train` (their transforms, one DataLoader worker), driven
  as benchmarks/akamaster_trainer.py drives it, over the first `--steps` batches of one epoch;
  its own per-batch `Time` (data wait included) is read from its output.
- ours, like for like: `deepres train --recipe cifar-paper --precision fp32 --no-channels-last`
  (eager, NCHW, fp32), its logged images/s per 10 steps (data included).
- ours, default: the same with no layout or precision flag (channels_last; `auto` precision:
  bf16 where the CPU computes it natively, else fp32).

Each figure is the median of the steady-state steps (the first 10 dropped); the table gives the
medians over rounds and the ratios ours/peer within each round.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARCHIVE = ROOT.parent / "shared" / "datasets" / "cifar10-jpg.tar.gz"
WARM = 10


def peer(steps: int, data: Path) -> float:
    import torch

    sys.path.insert(0, str(ROOT / "benchmarks"))
    import akamaster_trainer as runner

    resnet, trainer = runner.import_peer()
    runner.cpu_only()
    trainer.args = argparse.Namespace(print_freq=1, half=False)
    root = data if data.is_dir() else runner.dataset_root(data)
    train_loader, _ = runner.loaders(root, 128, 1)
    torch.manual_seed(0)
    subset = torch.utils.data.Subset(train_loader.dataset,
                                     torch.randperm(len(train_loader.dataset))[:steps * 128])
    loader = torch.utils.data.DataLoader(subset, batch_size=128, shuffle=True, num_workers=1)
    model, optimizer, _ = runner.build(resnet, "resnet20", 0.1, 0.9, 1e-4)
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        trainer.train(loader, model, torch.nn.CrossEntropyLoss(), optimizer, 0)
    times = [float(t) for t in re.findall(r"Time (\d+\.\d+) \(", out.getvalue())]
    return 128 / statistics.median(times[WARM:])


def ours(steps: int, data: Path, eager: bool) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        flags = ["--precision", "fp32", "--no-channels-last"] if eager else []
        cmd = [sys.executable, "-m", "deepres", "train", "--model", "resnet20", "--recipe",
               "cifar-paper", "--data", str(data), "--iterations", str(steps), "--holdout", "0",
               "--log-every", "10", "--eval-every", str(10 * steps), "--run-dir",
               f"{tmp}/run", *flags]
        subprocess.run(cmd, check=True, capture_output=True, text=True)
        rows = [json.loads(x) for x in Path(f"{tmp}/run/metrics.jsonl").read_text().splitlines()]
        rates = [r["images_per_s"] for r in rows if "images_per_s" in r and r["step"] > WARM]
        return statistics.median(rates)


VARIANTS = {"peer": "akamaster trainer.py (fp32, NCHW, eager)",
            "ours-eager": "deepres train --precision fp32 --no-channels-last",
            "ours-default": "deepres train (defaults)"}


def child(which: str, steps: int, data: Path) -> None:
    rate = peer(steps, data) if which == "peer" else ours(steps, data, which == "ours-eager")
    print(json.dumps({"variant": which, "images_per_s": rate}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--data", type=Path, default=ARCHIVE)
    ap.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args.child, args.steps, args.data)
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from akamaster_trainer import machine

    print(f"machine: {machine()}; ResNet-20, batch 128, {args.steps} steps a run, "
          f"median of steps after the first {WARM}")
    rates: dict[str, list[float]] = {k: [] for k in VARIANTS}
    for _ in range(args.rounds):
        for which in VARIANTS:
            done = subprocess.run([sys.executable, __file__, "--child", which, "--steps",
                                   str(args.steps), "--data", str(args.data)],
                                  capture_output=True, text=True, check=True)
            rates[which].append(json.loads(done.stdout.strip().splitlines()[-1])["images_per_s"])
            print(f"  {which}: {rates[which][-1]:.0f} img/s", flush=True)
    print("\n| trainer | images/s (median of rounds) | ratio to the peer (per round) |")
    print("|---|---|---|")
    for which, label in VARIANTS.items():
        ratios = [r / p for r, p in zip(rates[which], rates["peer"], strict=True)]
        print(f"| {label} | {statistics.median(rates[which]):.0f} | "
              + ", ".join(f"{x:.2f}x" for x in ratios) + " |")


if __name__ == "__main__":
    main()
