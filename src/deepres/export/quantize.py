"""int8 CPU inference: post-training static quantization for x86.

The flow is PyTorch's FX graph mode (``torch.ao.quantization.quantize_fx``) with the ``x86``
backend (fbgemm and oneDNN kernels, using VNNI/AMX int8 instructions where the CPU has them):
convolution, batch norm and ReLU are fused (batch norm folded into the convolution weights),
observers record activation ranges on calibration images, and the result runs on eager int8
kernels, so a saved file is fast as soon as it is loaded, with no compile step.

Why not torchao's PT2E flow, the one PyTorch now develops: it needs ``torch.compile`` (Inductor)
each time a model is loaded before its int8 kernels run, i.e. tens of seconds before the first
prediction, and the ``torchao`` package on top of the pinned torch 2.14. FX graph mode ships
in torch 2.14 itself; it is deprecated upstream, so this module is the one place to change
when it goes.

The file is TorchScript (traced and frozen) with the deepres metadata (class names, input
mean, input size) stored beside the program as ``deepres.json``.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..loaded.int8 import INT8_FORMAT, METADATA_NAME
from .formats import script_bytes


def quantize_int8(model: nn.Module, calibration: Iterable[torch.Tensor]) -> nn.Module:
    """A statically quantized copy of ``model`` (eval mode): takes the same normalized float
    input and returns float logits. ``calibration``: batches of model input."""
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    torch.backends.quantized.engine = "x86"
    model = model.eval()
    batches = list(calibration)
    if not batches:
        raise ValueError("int8 quantization needs at least one calibration batch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # FX graph mode's deprecation notes
        prepared = prepare_fx(model, get_default_qconfig_mapping("x86"), (batches[0],))
        with torch.no_grad():
            for x in batches:
                prepared(x)
        return convert_fx(prepared)


def save_int8(model: nn.Module, path: str | os.PathLike[str], example: torch.Tensor,
              metadata: dict[str, Any]) -> None:
    """Trace and freeze the quantized ``model`` and write it with ``metadata``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.no_grad():
            traced = torch.jit.freeze(torch.jit.trace(model.eval(), example))
        meta = {"format": INT8_FORMAT, **metadata}
        # in memory first: PyTorch's file writer aborts the process on a full disk
        Path(path).write_bytes(script_bytes(traced, {METADATA_NAME: json.dumps(meta)}))
