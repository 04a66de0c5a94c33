"""Transfer learning, offline: pretrain on 8 CIFAR-10 classes, fine-tune with `--init` on the
other 2 with few images, and compare with training from scratch on the same images at an equal
budget (same epochs, batch size and number of steps); and today's `finetune` recipe with the
`finetune-modern` one (AdamW, TrivialAugmentWide, random erasing, mixup/cutmix) on the same
runs.

    .venv/bin/python benchmarks/transfer.py [--archive ../shared/datasets/cifar10-jpg.tar.gz] \\
        [--pretrain-epochs 8] [--per-class 100] [--epochs 30] [--seeds 0 1] [--out runs/transfer]

The folders are links into the extracted archive (nothing is copied). The pretraining classes
are airplane, automobile, bird, cat, deer, dog, frog, horse; the new task is ship vs truck, with
`--per-class` training images each and all 1,000 test images each.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from deepres.data.splits import extract_folder_archive

HERE = Path(__file__).resolve().parent
PRETRAIN = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse"]
TARGET = ["ship", "truck"]


def _link_split(src: Path, dest: Path, classes: list[str], limit: int | None) -> None:
    for c in classes:
        (dest / c).mkdir(parents=True, exist_ok=True)
        for f in sorted((src / c).iterdir())[:limit]:
            link = dest / c / f.name
            if not link.exists():
                os.symlink(f, link)


def _train(args: list[str]) -> dict:
    done = subprocess.run([sys.executable, "-m", "deepres", "train", *args],
                          capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(done.stderr[-3000:])
    return json.loads(done.stdout[done.stdout.index("{"):])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archive", default=str(HERE.parent.parent / "shared" / "datasets" /
                                             "cifar10-jpg.tar.gz"))
    ap.add_argument("--pretrain-epochs", type=int, default=8)
    ap.add_argument("--per-class", type=int, default=100)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--model", default="resnet20")
    ap.add_argument("--out", default="runs/transfer")
    a = ap.parse_args()
    out = Path(a.out).resolve()
    root = extract_folder_archive(Path(a.archive))
    _link_split(root / "train", out / "pretrain" / "train", PRETRAIN, None)
    _link_split(root / "test", out / "pretrain" / "test", PRETRAIN, None)
    _link_split(root / "train", out / "target" / "train", TARGET, a.per_class)
    _link_split(root / "test", out / "target" / "test", TARGET, None)
    pre = out / "runs" / "pretrain"
    if not (pre / "summary.json").exists():
        _train(["--model", a.model, "--data", str(out / "pretrain"), "--recipe", "fast",
                "--epochs", str(a.pretrain_epochs), "--run-dir", str(pre)])
    pre_summary = json.loads((pre / "summary.json").read_text())
    rows = []
    for seed in a.seeds:
        common = ["--model", a.model, "--data", str(out / "target"), "--epochs", str(a.epochs),
                  "--batch-size", "50", "--seed", str(seed)]
        runs = {
            "fine-tuned (--init, finetune recipe)": [
                "--init", str(pre / "weights.safetensors"), "--recipe", "finetune",
                "--run-dir", str(out / "runs" / f"finetune-s{seed}")],
            "fine-tuned (--init, finetune-modern recipe)": [
                "--init", str(pre / "weights.safetensors"), "--recipe", "finetune-modern",
                "--run-dir", str(out / "runs" / f"finetune-modern-s{seed}")],
            "from scratch (fast recipe)": [
                "--recipe", "fast", "--run-dir", str(out / "runs" / f"scratch-s{seed}")],
        }
        for label, extra in runs.items():
            run_dir = Path(extra[-1])
            summary = (json.loads((run_dir / "summary.json").read_text())
                       if (run_dir / "summary.json").exists() else _train(common + extra))
            rows.append((label, seed, summary))
    print(f"pretrained {a.model} on {len(PRETRAIN)} classes ({a.pretrain_epochs} epochs): "
          f"test error {100 * pre_summary['test_error']:.2f}% on 8,000 images\n")
    print(f"ship vs truck, {a.per_class} training images per class, {a.epochs} epochs of "
          f"batch 50 each, tested on 2,000 images\n")
    print("| start | seed | steps | test error % | train seconds |\n|---|---|---|---|---|")
    for label, seed, s in rows:
        print(f"| {label} | {seed} | {s['steps']} | {100 * s['test_error']:.2f} | "
              f"{s['seconds']:.0f} |")


if __name__ == "__main__":
    main()
