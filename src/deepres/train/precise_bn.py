"""Precise batch-norm statistics: the authors' released models had their BN means and variances
computed after training over many training batches, not taken from the running averages kept
during training (PAPER.md, the authors' note). Running averages mix statistics of weights from
many steps; recomputing them with the final weights can change the test error."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from ..runtime.precision import autocast


@torch.no_grad()
def recompute_bn_stats(model: nn.Module, batches: Iterable[torch.Tensor], num_batches: int,
                       precision: str = "fp32", ctx=None) -> int:
    """Reset every BN layer's running mean and variance and set them to the plain average over
    ``num_batches`` batches of model input (training images, no augmentation). With several
    processes each computes over its shard and the statistics are averaged. Returns the number
    of batches used; the model is left in eval mode."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return 0
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: the exact mean over the batches seen
    model.train()
    device = bns[0].running_mean.device  # batches may come from the CPU (calibration_batches)
    used = 0
    try:
        for x in batches:
            if used >= num_batches:
                break
            x = x.to(device, non_blocking=True)
            with autocast(precision, device):
                model(x)
            used += 1
    finally:
        for m, momentum in zip(bns, momenta, strict=True):
            m.momentum = momentum
    if ctx is not None and ctx.active:
        for m in bns:
            m.running_mean.copy_(ctx.mean(m.running_mean))
            m.running_var.copy_(ctx.mean(m.running_var))
    model.eval()
    return used
