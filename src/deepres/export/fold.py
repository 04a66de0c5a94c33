"""Inference forms of a trained network: batch norm folded into the convolutions."""

from __future__ import annotations

import copy

import torch
from torch import nn


class InferenceModel(nn.Module):
    """The network with its input normalisation: takes float pixels in [0, 1], ``N x 3 x H x W``,
    subtracts the training mean (§3.4, §4.2), divides by the std where the weights were trained
    so (torchvision's), and returns class logits."""

    def __init__(self, model: nn.Module, mean: torch.Tensor,
                 std: torch.Tensor | None = None, channels: int = 3) -> None:
        super().__init__()
        self.model = model
        mean = mean if mean.dim() == 3 else mean[:, None, None]
        self.register_buffer("mean", mean[None].float().clone())
        scale = torch.ones(3) if std is None else 1.0 / std.float()
        self.register_buffer("scale", scale.reshape(1, 3, 1, 1).clone())
        # a grayscale network (inputspec.py): the luma of the normalised RGB
        self.luma = None if channels == 3 else nn.Conv2d(3, 1, 1, bias=False)
        if self.luma is not None:
            from ..inputspec import LUMA

            self.luma.weight.data = torch.tensor(LUMA).reshape(1, 3, 1, 1)
            self.luma.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.mean) * self.scale
        return self.model(x if self.luma is None else self.luma(x))


def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A convolution computing ``bn(conv(x))`` in eval mode."""
    scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                      conv.padding, conv.dilation, conv.groups, bias=True,
                      device=conv.weight.device, dtype=conv.weight.dtype)
    with torch.no_grad():
        fused.weight.copy_(conv.weight * scale[:, None, None, None])
        bias = conv.bias.detach() if conv.bias is not None else torch.zeros_like(bn.running_mean)
        fused.bias.copy_((bias - bn.running_mean) * scale + bn.bias.detach())
    return fused


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` (in eval mode) with every BN that follows a convolution folded into
    it and replaced by the identity. Works on deepres blocks (``convK``/``bnK`` pairs and
    ``downsample = Sequential(conv, bn)``)."""
    model = copy.deepcopy(model).eval()
    for module in list(model.modules()):
        names = dict(module.named_children())
        for name, child in names.items():
            if isinstance(child, nn.Conv2d) and name.startswith("conv"):
                bn = names.get("bn" + name[4:])
                if isinstance(bn, nn.BatchNorm2d):
                    setattr(module, name, _fold(child, bn))
                    setattr(module, "bn" + name[4:], nn.Identity())
        if isinstance(module, nn.Sequential):
            kids = list(module)
            for i in range(len(kids) - 1):
                if isinstance(kids[i], nn.Conv2d) and isinstance(kids[i + 1], nn.BatchNorm2d):
                    module[i] = _fold(kids[i], kids[i + 1])
                    module[i + 1] = nn.Identity()
    return model


def optimize_for_cpu(model: nn.Module, *, channels_last: bool = True,
                     compile: bool = False) -> nn.Module:
    """BN folded, channels_last memory layout, and optionally ``torch.compile``; same
    predictions as the original in eval mode."""
    out = fold_batchnorm(model)
    if channels_last:
        out = out.to(memory_format=torch.channels_last)
    for p in out.parameters():
        p.requires_grad_(False)
    if compile:
        out = torch.compile(out, mode="max-autotune-no-cudagraphs")
    return out
