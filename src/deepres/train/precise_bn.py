"""Precise batch-norm statistics: the authors' released models had their BN means and variances
computed after training over many training batches, not taken from the running averages kept
during training (PAPER.md, the authors' note). Running averages mix statistics of weights from
many steps; recomputing them with the final weights can change the test error."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
from torch import nn

from ..models.card import CARD_KEYS
from ..runtime.options import MEASURING_PRECISION
from ..runtime.precision import autocast


@torch.no_grad()
def recompute_bn_stats(model: nn.Module, batches: Iterable[torch.Tensor], num_batches: int,
                       precision: str = MEASURING_PRECISION, ctx=None) -> int:
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


def precise_bn_file(weights: str, data: str, out: str, *, device: str = "cpu",
                    batches: int = 200, batch_size: int = 128) -> str:
    """``deepres precise-bn``: a weights file's BN statistics recomputed over ``batches``
    un-augmented training batches of ``data``, written to ``out`` (a new file) with the test
    error before and after; returns the line that says so."""
    from ..evaluate.runner import run_eval
    from ..loaded import calibration_batches, load_predictor
    from ..models import save_weights
    from ..runtime.files import check_output_path

    path = check_output_path(out)
    if path.resolve() == Path(weights).resolve():
        raise ValueError(f"{out}: would overwrite the input weights; write a new file")
    p = load_predictor(weights, device, MEASURING_PRECISION)
    images = calibration_batches(p, data, batches * batch_size, batch_size)
    before = run_eval([weights], data, device=device, precision=MEASURING_PRECISION)
    used = recompute_bn_stats(p.model, iter(images), batches)
    keep = {k: v for k, v in p.metadata.items() if k not in ("format", *CARD_KEYS)}
    save_weights(p.model, path, class_names=p.classes,
                 extra={**keep, "precise_bn_batches": used})
    after = run_eval([str(path)], data, device=device, precision=MEASURING_PRECISION)
    return (f"precise BN over {used} batches of {batch_size} un-augmented training images "
            f"of {data}: test error {100 * before['top1_error']:.2f}% -> "
            f"{100 * after['top1_error']:.2f}% ({after['images']} images); wrote {path}")
