"""Top-1 and top-5 error; with several processes every image is counted exactly once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..runtime.precision import autocast


def topk_wrong(logits: torch.Tensor, y: torch.Tensor, k: int) -> torch.Tensor:
    """How many labels are not among the ``k`` highest scores."""
    k = min(k, logits.shape[1])
    hit = (logits.topk(k, dim=1).indices == y[:, None]).any(dim=1)
    return (~hit).sum()


@torch.no_grad()
def evaluate(model: nn.Module, loader: Any, prep: Callable[[torch.Tensor], torch.Tensor],
             device: torch.device, ctx: Any = None, precision: str = "fp32") -> dict[str, float]:
    """Errors of ``model`` on every batch of ``loader`` (its ``batches(0)``), computed in
    ``precision`` (``fp32`` or ``bf16`` autocast)."""
    was_training = model.training
    model.eval()
    totals = torch.zeros(3, dtype=torch.float64, device=device)
    for x, y in loader.batches(0):
        x, y = x.to(device), y.to(device)
        with autocast(precision, device):
            logits = model(prep(x)).float()
        totals += torch.stack([topk_wrong(logits, y, 1), topk_wrong(logits, y, 5),
                               torch.tensor(y.shape[0], device=device)]).double()
    if ctx is not None:
        totals = ctx.sum(totals)
    model.train(was_training)
    w1, w5, n = totals.tolist()
    return {"top1_error": w1 / max(n, 1), "top5_error": w5 / max(n, 1), "images": int(n)}
