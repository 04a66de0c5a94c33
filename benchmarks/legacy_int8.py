"""deepres's int8 path before ONNX QDQ, kept here to be measured against: PyTorch's FX graph
mode static quantization (``torch.ao.quantization``, x86 backend), traced and frozen as
TorchScript. Both APIs are deprecated upstream; the package no longer writes these files."""

from __future__ import annotations

import warnings

import torch
from torch import nn


def fx_int8(model: nn.Module, calibration: list[torch.Tensor]) -> torch.jit.ScriptModule:
    """A statically quantized, traced and frozen copy of ``model`` (normalized float input)."""
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    torch.backends.quantized.engine = "x86"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prepared = prepare_fx(model.eval(), get_default_qconfig_mapping("x86"),
                              (calibration[0],))
        with torch.no_grad():
            for x in calibration:
                prepared(x)
            return torch.jit.freeze(torch.jit.trace(convert_fx(prepared), calibration[0][:2]))
