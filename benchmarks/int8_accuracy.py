"""int8 vs fp32 on a labelled test set: top-1 errors and per-image top-1 agreement.

    .venv/bin/python benchmarks/int8_accuracy.py WEIGHTS \
        [--data ../shared/datasets/cifar10-jpg.tar.gz]

Exports WEIGHTS with `deepres export --format int8` (calibrated on 512 training images of DATA),
evaluates both files on DATA's test split (the fp32 one with `--precision fp32`), and counts the
test images on which the two predict the same class.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from deepres.cli import main as deepres
from deepres.data import load_data
from deepres.evaluate.testing import load_predictor, probs_single

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("weights")
    ap.add_argument("--data", default=str(HERE.parent.parent / "shared" / "datasets" /
                                          "cifar10-jpg.tar.gz"))
    ap.add_argument("--out", default=None, help="the int8 file (default: beside WEIGHTS)")
    a = ap.parse_args()
    q = a.out or str(Path(a.weights).with_suffix(".int8.onnx"))
    if deepres(["export", "--weights", a.weights, "--format", "int8", "--data", a.data, q]):
        raise SystemExit("export failed")
    fp32 = load_predictor(a.weights, "cpu", "fp32")
    int8 = load_predictor(q)
    test = load_data(a.data).test
    x = torch.from_numpy(test.images).permute(0, 3, 1, 2)
    y = torch.from_numpy(test.labels)
    wrong = {"fp32": 0, "int8": 0}
    agree = 0
    for i in range(0, len(x), 500):
        pa = probs_single(fp32, x[i:i + 500]).argmax(1)
        pb = probs_single(int8, x[i:i + 500]).argmax(1)
        wrong["fp32"] += int((pa != y[i:i + 500]).sum())
        wrong["int8"] += int((pb != y[i:i + 500]).sum())
        agree += int((pa == pb).sum())
    n = len(x)
    print(json.dumps({"weights": a.weights, "images": n,
                      "fp32_top1_error": wrong["fp32"] / n, "int8_top1_error": wrong["int8"] / n,
                      "difference_points": 100 * (wrong["int8"] - wrong["fp32"]) / n,
                      "top1_agreement": agree / n}, indent=2))


if __name__ == "__main__":
    main()
