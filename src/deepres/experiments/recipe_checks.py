"""Checks that a full-schedule run trained as §4.2 says, for a report whose errors miss Table 6:
the learning rate each logged step used against the paper's schedule, the error at the end of
each learning-rate phase (where Figure 6's curves step down), and the pad-4 crop and flip drawn
by the training pipeline's own augmentation. They rule recipe faults in or out; they do not
measure what the JPEG re-encoding or bf16 cost (that needs training on other data or in
another precision)."""

from __future__ import annotations

import math
import statistics
from typing import Any

import torch

from ..data import augment as T
from ..train.records import STEP, TRAIN_ERROR

LR = "lr"
TEST_ERROR = "test_error"


def expected_lr(step: int, lr: float, gamma: float, bounds: list[int]) -> float:
    """The learning rate of ``step`` (1-based) under a step schedule: ``lr`` divided at each
    bound already passed (§4.2: /10 after 32k and after 48k)."""
    return lr * gamma ** sum(step > b for b in bounds)


def lr_check(record: dict[str, Any], lr: float, gamma: float, bounds: list[int],
             warmup_lr: float | None = None) -> dict[str, Any]:
    """How many logged steps used the schedule's learning rate, and the first that did not.
    A warm-up (ResNet-110's 0.01, §4.2) is the logged steps before the first at ``lr``."""
    rows = [r for r in record["rows"] if r.get(LR) is not None]
    warm = 0
    if warmup_lr is not None:
        while warm < len(rows) and math.isclose(rows[warm][LR], warmup_lr, rel_tol=1e-6):
            warm += 1
        rows = rows[warm:]
    wrong = [r for r in rows if not math.isclose(r[LR], expected_lr(r[STEP], lr, gamma, bounds),
                                                 rel_tol=1e-6)]
    return {"logged": len(rows), "matching": len(rows) - len(wrong), "warmup": warm,
            "first_wrong": (wrong[0][STEP], wrong[0][LR]) if wrong else None}


def phase_ends(record: dict[str, Any], bounds: list[int]) -> list[dict[str, Any]]:
    """At the end of each learning-rate phase (each bound, then the last step): the last test
    error measured up to it, and the training error (mean of the last five logged values)."""
    rows = record["rows"]
    ends = [*bounds, record["steps"]]
    out = []
    for end in ends:
        tests = [r for r in rows if r.get(TEST_ERROR) is not None and r[STEP] <= end]
        train = [r[TRAIN_ERROR] for r in rows if r.get(TRAIN_ERROR) is not None
                 and r[STEP] <= end][-5:]
        out.append({"end": end, "test_step": tests[-1][STEP] if tests else None,
                    "test_error": tests[-1][TEST_ERROR] if tests else None,
                    "train_error": statistics.mean(train) if train else None})
    if out and record.get(TEST_ERROR) is not None:  # the final model's own figure
        out[-1].update(test_step=record["steps"], test_error=record[TEST_ERROR])
    return out


def augment_check(draws: int = 20_000, seed: int = 0, pad: int = 4) -> dict[str, Any]:
    """Draw the training augmentation (data/augment.py, what the runs used) on ``draws``
    copies of an image whose pixels name their own position (red the row, green the column,
    blue 255), and read back each copy's crop offset and flip: §4.2 wants all (2*pad+1)^2
    offsets equally often, zero padding, and half of the copies flipped."""
    size = 32
    ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    image = torch.stack([ys, xs, torch.full_like(ys, 255)]).to(torch.uint8)
    out = T.cifar_train_augment(image.expand(draws, -1, -1, -1).contiguous(),
                                torch.Generator().manual_seed(seed)).long()
    # Row `pad` of a crop always lies inside the image; its columns run backwards if flipped.
    flipped = out[:, 1, pad, pad + 1] < out[:, 1, pad, pad]
    col = torch.where(flipped, size - 1 - pad, pad)  # where the unflipped pixel (pad, pad) is
    n = torch.arange(draws)
    dy = out[n, 0, pad, col] - pad  # that pixel shows image pixel (pad + dy, pad + dx)
    dx = out[n, 1, pad, col] - pad
    counts = torch.bincount((dy + pad) * (2 * pad + 1) + dx + pad,
                            minlength=(2 * pad + 1) ** 2)
    padding = out.permute(0, 2, 3, 1)[out[:, 2] == 0]  # every pixel that is not the image
    return {"draws": draws, "offsets_seen": int((counts > 0).sum()),
            "offsets": (2 * pad + 1) ** 2, "offset_min": int(counts.min()),
            "offset_max": int(counts.max()), "flipped": float(flipped.float().mean()),
            "padding_zero": bool((padding == 0).all()), "pad": pad}


def recipe_checks(records: dict[str, dict[str, Any]], optim: Any) -> dict[str, Any]:
    """The checks above for every finished run of a full-schedule report (``optim``: the
    runs' OptimConfig, one recipe for all)."""
    bounds = [round(m * optim.iterations) for m in optim.milestones]
    return {"bounds": bounds, "lr": optim.lr, "augment": augment_check(),
            "runs": {key: {"lr": lr_check(rec, optim.lr, optim.gamma, bounds, optim.warmup_lr),
                           "phases": phase_ends(rec, bounds)}
                     for key, rec in sorted(records.items())}}
