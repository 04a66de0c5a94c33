"""Training images as a loaded model's input: what int8 calibration and precise BN read."""

from __future__ import annotations

import torch

from ..data import load_data
from ..data.testview import test_batches
from .predictor import Predictor


def calibration_batches(p: Predictor, data: str, images: int = 512, batch_size: int = 64,
                        seed: int = 0, pixels: bool = False) -> list[torch.Tensor]:
    """``images`` training images of ``data``, drawn at random (fixed seed) and preprocessed
    as the predictor's input specification says: model input, for int8 calibration and
    precise BN (``pixels``: the test view as floats in [0, 1], before mean subtraction: the
    input of an exported file)."""
    ds = load_data(data).split("train")
    order = torch.randperm(len(ds), generator=torch.Generator().manual_seed(seed))[:images]
    if pixels:
        return [b.images.float().div_(255.0)
                for b in test_batches(ds, p.spec, batch_size, indices=order.tolist())]
    return [p.normalize(b.images.to(p.device)).cpu()
            for b in test_batches(ds, p.spec, batch_size, indices=order.tolist())]
