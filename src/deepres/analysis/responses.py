"""Layer responses (§4.2, Figure 7): the standard deviation of each 3x3 layer's output after
BN and before the nonlinearity (and, in a residual block's second layer, before the addition)."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


def response_layers(model: nn.Module) -> list[tuple[str, nn.BatchNorm2d]]:
    """The BN after each 3x3 convolution, in network order: the stem, then per block."""
    layers = []
    for name, module in model.named_modules():
        if isinstance(module, nn.BatchNorm2d):
            parent_name, _, bn_name = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            conv = getattr(parent, "conv" + bn_name[2:], None)
            if isinstance(conv, nn.Conv2d) and conv.kernel_size == (3, 3):
                layers.append((name, module))
    return layers


METHODS = ("pooled", "per-channel")


@torch.no_grad()
def layer_response_stds(model: nn.Module, batches: Iterable[torch.Tensor]
                        ) -> dict[str, list[float]]:
    """Every 3x3 layer's response std (inputs already normalised, eval mode), two ways:
    ``pooled``, one std over all images, positions and channels together (differences between
    channels' means count); ``per-channel``, each channel's std over images and positions, then
    the mean over channels (they do not)."""
    layers = response_layers(model)
    # Per layer and channel: count, sum, sum of squares (float64 on the CPU).
    sums: list[torch.Tensor | None] = [None] * len(layers)
    handles = []
    for i, (_, bn) in enumerate(layers):
        def hook(_m, _inp, out, i=i):
            # Per channel, without a float64 copy of the batch (that copy, transposed, cost
            # three times the forward pass): float32 moments about the batch's channel mean,
            # made exact sums in float64 again.
            o = out.detach().float()
            count = o.numel() // o.shape[1]
            mean = o.mean(dim=(0, 2, 3), keepdim=True)
            m2 = (o - mean).square_().sum(dim=(0, 2, 3)).double()
            s = mean.flatten().double() * count
            acc = torch.stack([torch.full_like(s, float(count)), s, m2 + s * s / count]).cpu()
            sums[i] = acc if sums[i] is None else sums[i] + acc
        handles.append(bn.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        for x in batches:
            model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    pooled, per_channel = [], []
    for acc in sums:
        assert acc is not None, "no batches"
        n, s, ss = acc.unbind(0)
        var_c = (ss / n - (s / n) ** 2).clamp_min(0)
        per_channel.append(var_c.sqrt().mean().item())
        tn, ts, tss = n.sum(), s.sum(), ss.sum()
        pooled.append((tss / tn - (ts / tn) ** 2).clamp_min(0).sqrt().item())
    return {"pooled": pooled, "per-channel": per_channel}


def layer_response_std(model: nn.Module, batches: Iterable[torch.Tensor]) -> list[float]:
    """Standard deviation of every 3x3 layer's response over all images, positions and
    channels of ``batches`` (the pooled method of :func:`layer_response_stds`)."""
    return layer_response_stds(model, batches)["pooled"]
