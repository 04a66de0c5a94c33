"""akamaster's published CIFAR-10 weights on our JPEG test set, as published and fine-tuned here.

    .venv/bin/python benchmarks/peer_weights.py [--nets 20,32,44,56] [--epochs 2]
        [--out reports/full/peer/published.json]

For each net: `deepres eval --weights resnetN-*.th --data cifar10-jpg.tar.gz --json` (their
weights, loaded with the channel mapping of models/akamaster.py, in fp32), then fine-tuned on our
JPEG training set with `deepres train --model resnetN --init resnetN-*.th --recipe finetune
--epochs E --holdout 0 --seed 0 --precision fp32` and evaluated the same way. The JSON (read by
`deepres reproduce cifar-depth --scale full`'s report) keeps each figure with its command.
Resumable: a net already in the output file is skipped.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PEER = ROOT.parent / "shared" / "peers" / "akamaster" / "pretrained_models"
ARCHIVE = ROOT.parent / "shared" / "datasets" / "cifar10-jpg.tar.gz"
DATA_ARG = "../shared/datasets/cifar10-jpg.tar.gz"


def deepres(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "deepres", *args], capture_output=True,
                          text=True, cwd=ROOT)
    if done.returncode:
        sys.exit(f"deepres {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return done.stdout


def error_of(weights: str) -> float:
    out = json.loads(deepres("eval", "--weights", weights, "--data", DATA_ARG, "--json",
                             "--precision", "fp32"))
    return round(100 * out["top1_error"], 2)


def measure(net: str, epochs: int) -> dict:
    path = next(PEER.glob(f"{net}-*.th"))
    shown = f"../shared/peers/akamaster/pretrained_models/{path.name}"
    row = {"weights": shown, "published_error": error_of(shown),
           "eval_command": f"deepres eval --weights {shown} --data {DATA_ARG} --precision fp32"}
    recipe = ["--recipe", "finetune", "--epochs", str(epochs), "--holdout", "0", "--seed", "0",
              "--precision", "fp32"]
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.time()
        deepres("train", "--model", net, "--init", shown, "--data", DATA_ARG, *recipe,
                "--run-dir", f"{tmp}/run")
        row["finetune_seconds"] = round(time.time() - t0)
        row["finetuned_error"] = error_of(f"{tmp}/run/weights.safetensors")
    row["finetune_command"] = (f"deepres train --model {net} --init {shown} --data {DATA_ARG} "
                               + " ".join(recipe))
    row["finetune_recipe"] = (f"the finetune recipe for {epochs} epochs: one-cycle, peak lr "
                              "0.02, Nesterov, label smoothing 0.1, backbone at 0.1x, batch 64, "
                              "fp32, all 50k training images")
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nets", default="20,32,44,56")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "full" / "peer" /
                    "published.json")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from akamaster_trainer import machine

    table = json.loads(args.out.read_text()) if args.out.exists() else {}
    for depth in args.nets.split(","):
        net = f"resnet{depth}"
        if net in table:
            print(f"{net}: done already ({table[net]['published_error']}%, "
                  f"{table[net]['finetuned_error']}% fine-tuned)")
            continue
        row = measure(net, args.epochs)
        row["machine"], row["date"] = machine(), time.strftime("%Y-%m-%d")
        table[net] = row
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
        print(f"{net}: published {row['published_error']}%, fine-tuned "
              f"{row['finetuned_error']}% ({row['finetune_seconds']} s)", flush=True)


if __name__ == "__main__":
    main()
