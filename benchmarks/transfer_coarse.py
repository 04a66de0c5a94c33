"""A second transfer task for `finetune` against `finetune-modern` (AdamW, TrivialAugmentWide,
random erasing, mixup/cutmix), side by side in one run, with more target images than
benchmarks/transfer.py's ship-vs-truck.

Source weights: a committed CIFAR-10 ResNet-56 (reports/runs/resnet56-s0, trained on CIFAR-10's
train split). Target task, new to those weights: 5 coarse classes (air/sea vehicles = airplane +
ship, road vehicles = automobile + truck, small animals = bird + frog, pets = cat + dog, hoofed =
deer + horse), built from CIFAR-10's *test* images (never seen in pre-training): 400 per class to
fine-tune on, the other 1,600 per class to test. The classifier is new (10 -> 5 outputs).

    .venv/bin/python benchmarks/transfer_coarse.py [--seeds 2] [--epochs 10] [--out DIR]
"""

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "reports" / "runs" / "resnet56-s0" / "weights.safetensors"
CIFAR = ROOT.parent / "shared" / "datasets" / "cifar10-jpg.tar.gz"
COARSE = {"air_sea": ("airplane", "ship"), "road": ("automobile", "truck"),
          "small_animals": ("bird", "frog"), "pets": ("cat", "dog"), "hoofed": ("deer", "horse")}


def build_task(out: Path, per_class_train: int = 400) -> Path:
    from deepres.data.splits import image_folder_of

    task = out / "task"
    if (task / ".complete").exists():
        return task
    shutil.rmtree(task, ignore_errors=True)
    test = Path(image_folder_of(str(CIFAR))) / "test"
    for coarse, fine in COARSE.items():
        files = [f for c in fine for f in sorted((test / c).iterdir())[:1000]]
        # Alternate the two fine classes so each split holds both equally.
        files = [f for pair in zip(files[:1000], files[1000:], strict=True) for f in pair]
        for split, chosen in (("train", files[:per_class_train]),
                              ("test", files[per_class_train:])):
            d = task / split / coarse
            d.mkdir(parents=True, exist_ok=True)
            for f in chosen:
                shutil.copyfile(f, d / f"{f.parent.name}-{f.name}")
    (task / ".complete").touch()
    return task


def run(cmd: list[str]) -> str:
    r = subprocess.run([sys.executable, "-m", "deepres", *cmd], capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"failed: deepres {' '.join(cmd)}\n{r.stderr[-2000:]}")
    return r.stdout


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--out", default="/tmp/deepres-transfer")
    a = ap.parse_args()
    out = Path(a.out)
    task = build_task(out)
    results: dict[str, list[float]] = {}
    for recipe in ("finetune", "finetune-modern"):
        for seed in range(a.seeds):
            run_dir = out / f"{recipe}-s{seed}"
            shutil.rmtree(run_dir, ignore_errors=True)
            t = time.time()
            run(["train", "--recipe", recipe, "--model", "resnet56", "--init", str(SOURCE),
                 "--data", str(task), "--epochs", str(a.epochs), "--seed", str(seed),
                 "--run-dir", str(run_dir)])
            took = time.time() - t
            m = json.loads(run(["eval", "--weights", str(run_dir / "weights.safetensors"),
                                "--data", str(task), "--json"]))
            results.setdefault(recipe, []).append(m["top1_error"])
            print(f"{recipe:<16} seed {seed}: test error {100 * m['top1_error']:.2f}% on "
                  f"{m['images']} images ({took:.0f} s training)", flush=True)
    from deepres.analysis.stats import compare

    for recipe, errs in results.items():
        print(f"{recipe:<16} mean test error {100 * statistics.mean(errs):.2f}% over "
              f"{len(errs)} seeds ({', '.join(f'{100 * e:.2f}' for e in errs)})")
    c = compare(results["finetune-modern"], results["finetune"])
    p = "n/a (one seed)" if c.p is None else f"{c.p:.3g}"
    print(f"finetune-modern vs finetune: gap {100 * c.gap:.2f} points in modern's favour "
          f"(negative: worse), one-sided Welch p = {p} (analysis/stats.py: {c.verdict})")


if __name__ == "__main__":
    main()
