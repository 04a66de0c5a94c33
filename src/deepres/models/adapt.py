"""Pretrained weights for a model whose first convolution takes other than 3 channels."""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

FIRST_CONVS = ("conv1.weight", "conv1.0.weight")  # the stem's first convolution (ResNet-D: .0)


def adapt_first_conv(state: dict[str, torch.Tensor], own: Mapping[str, torch.Tensor]
                     ) -> dict[str, torch.Tensor]:
    """``state`` with its RGB first convolution fitted to the model's channel count (``own``
    is the model's state dict), as timm adapts it: summed over the three colours for one
    channel (a grey image's response equals the RGB filter's on the same grey), and for N
    channels the RGB filters repeated to N and scaled by 3/N (the response to N equal channels
    equals the RGB response to that grey). Other shapes are left to the usual mismatch error."""
    for key in FIRST_CONVS:
        w, mine = state.get(key), own.get(key)
        if w is None or mine is None or w.dim() != 4 or w.shape[1] != 3 or \
                mine.shape[1] == 3 or w.shape[0] != mine.shape[0]:
            continue
        n = int(mine.shape[1])
        if n == 1:
            fitted = w.sum(dim=1, keepdim=True)
        else:
            fitted = w.repeat(1, math.ceil(n / 3), 1, 1)[:, :n] * (3.0 / n)
        state = {**state, key: fitted.to(w.dtype)}
    return state
