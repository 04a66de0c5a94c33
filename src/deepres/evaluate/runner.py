"""``deepres eval``: top-1/top-5 error of one model or an ensemble under a testing protocol."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ..data import DatasetError, load_data
from ..data.testtime import test_batches
from ..loaded import Predictor, load_predictor, probs_single
from ..runtime import distributed as dist
from ..runtime.options import MEASURING_PRECISION
from ..runtime.precision import configure_cuda
from .metrics import count_errors, explain
from .testing import ensemble, probs_multiscale, probs_ten_crop


def _check_classes(preds: Sequence[Predictor], classes: list[str], paths: Sequence[str]) -> None:
    for p, path in zip(preds, paths, strict=True):
        if p.classes is not None and list(p.classes) != list(classes):
            raise DatasetError(
                f"{path} was trained on other classes than the dataset has.\n"
                f"  weights ({len(p.classes)}): {', '.join(p.classes)}\n"
                f"  dataset ({len(classes)}): {', '.join(classes)}"
            )


def _probs(p: Predictor, x: torch.Tensor, crops: int, scales: Sequence[int] | None,
           tta: str | None = None) -> torch.Tensor:
    x = x.to(p.device)
    if scales:
        return probs_multiscale(p, x, scales)
    if crops == 10:
        return probs_ten_crop(p, x)
    if tta == "flip":
        return (probs_single(p, x) + probs_single(p, x.flip(-1))) / 2
    return probs_single(p, x)


def run_eval(weights: Sequence[str], data: str, *, crops: int = 1,
             scales: Sequence[int] | None = None, split: str = "test", batch_size: int = 256,
             tta: str | None = None,
             device: str = "cpu", precision: str | None = MEASURING_PRECISION,
             model_name: str | None = None,
             classes_file: str | None = None, workers: int = 2,
             engine: str | None = None) -> dict[str, Any]:
    """Top-1/top-5 error of the ensemble of ``weights`` on a labelled split of ``data``, each
    model run by ``engine`` (loaded/engines.py; "auto" says its choice on stderr). In fp32
    unless ``precision`` says otherwise: a measured error is then the same on every CPU
    (bf16, where ``auto`` picks it, moves it by a few images)."""
    if crops not in (1, 10):
        raise ValueError(f"--crops must be 1 or 10, not {crops}")
    with dist.init(device) as ctx:
        device = str(ctx.local_device(device))
        configure_cuda(device)
        preds = [load_predictor(w, device, precision, model_name, classes_file, engine,
                                any_size=bool(scales)) for w in weights]
        if engine == "auto" and ctx.is_main:
            print(preds[0].describe_engine(), file=sys.stderr, flush=True)
        splits = load_data(data, splits=(split,))  # never reads the other splits
        ds = splits.split(split)
        _check_classes(preds, splits.classes, weights)
        # An ensemble's members are fed the first one's preprocessing.
        mode = "raw" if scales else "resized" if crops == 10 else "crop"
        batches = ((b.images, b.labels) for b in test_batches(
            ds, preds[0].spec, batch_size, mode=mode, rank=ctx.rank,
            world_size=ctx.world_size, workers=workers,
            desc=f"evaluating {data} ({split})"))  # a bar where files are streamed
        k = len(splits.classes)
        m = count_errors(batches, lambda x: ensemble(
            [_probs(p, x, crops, scales, tta) for p in preds]).cpu(), "cpu", ctx, k)
    if m["images"] == 0:
        raise DatasetError(f"{data}: no images in the {split} split were evaluated; check the "
                           "data and --batch-size")
    protocol = (f"multi-scale {','.join(map(str, scales))}" if scales
                else "10-crop" if crops == 10 else "single crop + flip" if tta == "flip"
                else "single crop")
    # Top-5 means something only with more than 5 classes (said by top5_meaningful).
    # Files of the split that could not be used (unreadable, or another size than the set held
    # in memory): the error is over the images counted, and the result says what was left out.
    left_out = [{"file": b.path, "reason": b.reason} for b in splits.bad
                if split in Path(b.path).parts[:-2]]
    return {"top1_error": m["top1_error"], "top5_error": m["top5_error"],
            "images": m["images"], "left_out": left_out,
            "models": len(preds), "engine": preds[0].engine, "protocol": protocol, "data": data,
            "split": split, "precision": preds[0].precision, "top5_meaningful": k > 5,
            **explain(m["confusion"], list(splits.classes))}
