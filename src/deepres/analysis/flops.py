"""Parameter and multiply-add counts, measured with forward hooks (Table 1's "FLOPs").

The paper counts multiply-adds of the convolutions and the fully-connected layer; batch
norm, ReLU, pooling and the shortcut additions are not counted, and neither are they here.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def count_params(model: nn.Module) -> int:
    """Number of learnable parameters."""
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, input_size: int | tuple[int, int] = 224) -> int:
    """Multiply-adds of one forward pass on one ``3 x H x W`` image."""
    h, w = (input_size, input_size) if isinstance(input_size, int) else input_size
    total = 0

    def conv_hook(m: nn.Conv2d, _inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal total
        kh, kw = m.kernel_size
        total += out.numel() // out.shape[0] * (m.in_channels // m.groups) * kh * kw

    def linear_hook(m: nn.Linear, _inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal total
        total += out.numel() // out.shape[0] * m.in_features

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    was_training = model.training
    try:
        model.eval()
        device = next(model.parameters()).device
        with torch.no_grad():
            # On a model built on the meta device this computes shapes only, no arithmetic.
            model(torch.zeros(1, 3, h, w, device=device))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return total


def model_table() -> list[dict[str, Any]]:
    """Every registered model: family, parameters, multiply-adds at its default input, its
    default input specification and where its bottlenecks' stride is (``deepres models``)."""
    from ..models import create_model, list_models, resolve
    from ..models.names import DEFAULT_INPUT_SPEC

    rows = []
    for name in list_models():
        spec = resolve(name)
        # Built on the meta device: shapes only, so listing ResNet-1202 costs no memory.
        with torch.device("meta"):
            model = create_model(name)
        rows.append({
            "name": name,
            "family": spec.family,
            "arch": spec.arch,
            "block": "bottleneck" if spec.bottleneck else "basic",
            "layers": list(spec.layers),
            "default_shortcut": spec.default_shortcut,
            "params": count_params(model),
            "macs": count_macs(model, spec.default_input_size),
            "input_size": spec.default_input_size,
            "num_classes": spec.default_num_classes,
            "input_spec": DEFAULT_INPUT_SPEC[spec.family].as_json(),
            # Bottlenecks are built (and counted) with the stride in the 3x3, torchvision's
            # placement: 4.09 GMACs for ResNet-50 against the paper's 3.8 with the stride in
            # the first 1x1 (create_model(..., stride_in_1x1=True); reports/table1.md).
            "stride_placement": "3x3 (torchvision's)" if spec.family == "imagenet"
            and spec.depth >= 50 else None,
        })
    return rows
