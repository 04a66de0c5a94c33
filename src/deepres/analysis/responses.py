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


@torch.no_grad()
def layer_response_std(model: nn.Module, batches: Iterable[torch.Tensor]) -> list[float]:
    """Standard deviation of every 3x3 layer's response over all images, positions and
    channels of ``batches`` (inputs already normalised), in eval mode."""
    layers = response_layers(model)
    sums = torch.zeros(len(layers), 3, dtype=torch.float64)  # count, sum, sum of squares
    handles = []
    for i, (_, bn) in enumerate(layers):
        def hook(_m, _inp, out, i=i):
            o = out.double()
            sums[i] += torch.stack([torch.tensor(float(o.numel()), dtype=torch.float64),
                                    o.sum().cpu(), (o * o).sum().cpu()])
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
    n, s, ss = sums.unbind(1)
    var = (ss / n - (s / n) ** 2).clamp_min(0)
    return var.sqrt().tolist()
