"""int8 CPU inference: post-training static quantization to an ONNX QDQ graph.

The network, with its mean subtraction built in, is exported to ONNX (loaded/engines.py); ONNX
Runtime's static quantizer records every activation's range on calibration images (min-max)
and inserts QuantizeLinear/DequantizeLinear pairs around every operator it can (convolutions,
residual additions, pooling, the classifier), so that int8 flows from layer to layer (keeping
pooling and the input in float measured 1.3-1.5x slower on ResNet-50). Weights are int8 per
output channel, activations uint8 per tensor. Engines fuse each pair into int8 kernels: ONNX
Runtime's (MLAS: AVX2, AVX-512 VNNI, AMX) and OpenVINO's (oneDNN), so the one file runs on
both, on any x86 CPU, and holds no code.

Weights are kept to 7 bits (``reduce_range``): on x86 CPUs without VNNI (AVX2 only: Zen 3,
older Xeons, many laptops) the u8 x s8 multiply sums pairs of products in 16 bits, which can
saturate with full-range weights; 7-bit weights cannot. The cost, measured on trained
CIFAR-10 ResNets, is in BENCHMARKS.md (Engines): within the 0.5-point budget of fp32.

Why not PyTorch's own: its FX flow (``torch.ao.quantization``) is deprecated and its files are
TorchScript (``torch.jit``, deprecated too, and a program); torchao's PT2E flow needs
``torch.compile`` each time a model is loaded and a package beyond the pinned torch. Files from
the former FX path still load (loaded/int8.py) with a notice.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
from torch import nn

from ..loaded.engines import write_graph
from ..loaded.onnxfile import FORMAT_KEY
from .formats import add_metadata

CALIBRATION_BATCH = 16  # images per calibration run: ONNX Runtime keeps every activation


def quantize_onnx(model: nn.Module, path: str | os.PathLike[str], input_size: int,
                  calibration: Sequence[torch.Tensor], metadata: dict[str, str]) -> None:
    """Write ``model`` (eval mode, taking what ``calibration``'s batches are) as an int8 QDQ
    ONNX graph with ``metadata``; batch and nothing else dynamic."""
    try:
        from onnxruntime.quantization import (
            CalibrationDataReader,
            QuantFormat,
            QuantType,
            quantize_static,
        )
    except ImportError as exc:
        raise ValueError("int8 export needs onnxruntime's quantizer: pip install "
                         "'deepres[onnx]'") from exc
    if not calibration:
        raise ValueError("int8 quantization needs at least one calibration batch")
    chunks = [c.float().numpy() for b in calibration for c in b.split(CALIBRATION_BATCH)]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter(chunks)

        def get_next(self) -> dict | None:
            x = next(self.items, None)
            return None if x is None else {"images": x}

    with tempfile.TemporaryDirectory(prefix="deepres-int8-") as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        write_graph(model, fp32, input_size)
        with _quiet("root"):  # the quantizer's advice to pre-process, printed every time
            quantize_static(str(fp32), str(path), Reader(), quant_format=QuantFormat.QDQ,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            per_channel=True, reduce_range=True)
    add_metadata(path, {**metadata, FORMAT_KEY: "int8"})


@contextlib.contextmanager
def _quiet(name: str) -> Iterator[None]:
    logger = logging.getLogger(name if name != "root" else None)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
