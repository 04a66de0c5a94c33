"""Training images as a loaded model's input: what int8 calibration and precise BN read."""

from __future__ import annotations

import sys

import torch

from ..data import load_data
from ..data.testtime import test_batches
from ..runtime.terminal import safe
from .predictor import Predictor


def calibration_batches(p: Predictor, data: str, images: int = 512, batch_size: int = 64,
                        seed: int = 0, pixels: bool = False) -> list[torch.Tensor]:
    """``images`` training images of ``data``, drawn at random (fixed seed) and preprocessed
    as the predictor's input specification says: model input, for int8 calibration and
    precise BN (``pixels``: the test view as floats in [0, 1], before mean subtraction: the
    input of an exported file)."""
    splits = load_data(data, splits=("train",))  # what it names, no more
    ds = splits.split("train")
    if splits.bad:  # left out of the arrays; said, so the user knows which and why
        first = splits.bad[0]
        more = f" and {len(splits.bad) - 1} more" if len(splits.bad) > 1 else ""
        print(f"calibration: skipped {len(splits.bad)} image(s) of {safe(data)} that cannot "
              f"be read: {safe(first.path)}: {safe(first.reason)}{more} (`deepres data "
              "check` lists them)", file=sys.stderr, flush=True)
    order = torch.randperm(len(ds), generator=torch.Generator().manual_seed(seed))[:images]
    if pixels:
        return [b.images.float().div_(255.0)
                for b in test_batches(ds, p.spec, batch_size, indices=order.tolist())]
    return [p.normalize(b.images.to(p.device)).cpu()
            for b in test_batches(ds, p.spec, batch_size, indices=order.tolist())]
