"""ONNX and TorchScript files with a dynamic batch dimension."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch
from torch import nn


def export_onnx(model: nn.Module, path: str | os.PathLike[str], input_size: int,
                opset: int = 17) -> None:
    """Write ``model`` (eval mode) as ONNX: input ``images`` N x 3 x S x S, output ``logits``."""
    model = model.eval()
    example = torch.rand(2, 3, input_size, input_size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter's deprecation notes
        torch.onnx.export(
            model, (example,), str(path), dynamo=False, opset_version=opset,
            input_names=["images"], output_names=["logits"],
            dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}},
        )


def trace_frozen(model: nn.Module, input_size: int, optimize: bool = False
                 ) -> torch.jit.ScriptModule:
    """A traced, frozen TorchScript module; ``optimize`` adds PyTorch's CPU inference passes
    (operator fusion, oneDNN layouts: ``torch.jit.optimize_for_inference``)."""
    example = torch.rand(2, 3, input_size, input_size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.no_grad():
            traced = torch.jit.freeze(torch.jit.trace(model.eval(), example))
            if optimize:
                traced = torch.jit.optimize_for_inference(traced)
    return traced


def export_torchscript(model: nn.Module, path: str | os.PathLike[str], input_size: int) -> None:
    """Write ``model`` (eval mode) as a traced, frozen TorchScript file."""
    trace_frozen(model, input_size).save(str(Path(path)))


def load_cpu(path: str | os.PathLike[str]) -> torch.jit.ScriptModule:
    """Load an exported TorchScript file with PyTorch's CPU inference passes applied.

    The passes rewrite weights into oneDNN layouts that cannot be saved, so they run here, at
    load time, rather than at export.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.jit.optimize_for_inference(torch.jit.load(str(path)).eval())
