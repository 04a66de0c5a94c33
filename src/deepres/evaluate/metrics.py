"""Top-1 and top-5 error; with several processes every image is counted exactly once."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from ..runtime.options import MEASURING_PRECISION
from ..runtime.precision import autocast


def topk_wrong(logits: torch.Tensor, y: torch.Tensor, k: int) -> torch.Tensor:
    """How many labels are not among the ``k`` highest scores."""
    k = min(k, logits.shape[1])
    hit = (logits.topk(k, dim=1).indices == y[:, None]).any(dim=1)
    return (~hit).sum()


@torch.no_grad()
def count_errors(batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
                 score: Callable[[torch.Tensor], torch.Tensor], device: torch.device | str,
                 ctx: Any = None, num_classes: int = 0) -> dict[str, Any]:
    """The one evaluation loop: top-1 and top-5 errors of ``score`` (uint8 batch to class
    scores) over ``batches``, and with ``num_classes`` the confusion counts; with several
    processes (``ctx``) one all-reduce sums every process's counts, each image once."""
    totals = torch.zeros(3 + num_classes * num_classes, dtype=torch.float64, device=device)
    for x, y in batches:
        scores = score(x)
        y = y.to(scores.device)
        totals[:3] += torch.stack([topk_wrong(scores, y, 1), topk_wrong(scores, y, 5),
                                   torch.tensor(y.shape[0], device=scores.device)]
                                  ).double().to(device)
        if num_classes:
            totals[3:] += confusion_counts(scores, y, num_classes).flatten().double().to(device)
    if ctx is not None:
        totals = ctx.sum(totals)
    w1, w5, n = totals[:3].tolist()
    out: dict[str, Any] = {"top1_error": w1 / max(n, 1), "top5_error": w5 / max(n, 1),
                           "images": int(n)}
    if num_classes:
        out["confusion"] = totals[3:].reshape(num_classes, num_classes).cpu()
    return out


@torch.no_grad()
def evaluate(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
             prep: Callable[[torch.Tensor], torch.Tensor], device: torch.device,
             ctx: Any = None, precision: str = MEASURING_PRECISION) -> dict[str, float]:
    """Errors of ``model`` on ``batches`` (uint8, prepared by ``prep``), computed in
    ``precision`` (``fp32`` or ``bf16`` autocast)."""
    was_training = model.training
    model.eval()

    def score(x: torch.Tensor) -> torch.Tensor:
        with autocast(precision, device):
            return model(prep(x.to(device))).float()

    try:
        return count_errors(batches, score, device, ctx)
    finally:
        model.train(was_training)


def confusion_counts(scores: torch.Tensor, y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``num_classes x num_classes`` counts: row = true class, column = predicted (top-1)."""
    pred = scores.argmax(1).to(y.device)
    return torch.bincount(y.long() * num_classes + pred, minlength=num_classes ** 2
                          ).reshape(num_classes, num_classes)


def explain(conf: torch.Tensor, classes: list[str], worst: int = 10) -> dict[str, Any]:
    """Per-class accuracy (= recall), precision and counts, the confusion matrix and the most
    confused (true, predicted) pairs, from a confusion matrix of counts. Plain arithmetic on
    the matrix: a metrics library would add a dependency for three divisions."""
    conf = conf.double().cpu()
    right, images, predicted = conf.diag(), conf.sum(1), conf.sum(0)
    per_class = []
    for i, name in enumerate(classes):
        recall = (right[i] / images[i]).item() if images[i] else None
        precision = (right[i] / predicted[i]).item() if predicted[i] else None
        per_class.append({"class": name, "images": int(images[i]), "accuracy": recall,
                          "precision": precision, "recall": recall})
    off = conf.clone()
    off.fill_diagonal_(0)
    order = off.flatten().argsort(descending=True)
    pairs = []
    for idx in order[:worst].tolist():
        t, p = divmod(idx, len(classes))
        if off[t, p] == 0:
            break
        pairs.append({"true": classes[t], "predicted": classes[p], "count": int(off[t, p]),
                      "share_of_true": (off[t, p] / images[t]).item()})
    return {"classes": classes, "per_class": per_class,
            "confusion": conf.long().tolist(), "most_confused": pairs}
