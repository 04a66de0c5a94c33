"""ONNX and TorchScript files with a dynamic batch dimension."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch
from torch import nn


def export_onnx(model: nn.Module, path: str | os.PathLike[str], input_size: int,
                metadata: dict[str, str] | None = None,
                dynamic_size: bool = False) -> float | None:
    """Write ``model`` (eval mode) as ONNX through PyTorch's current exporter (``dynamo=True``;
    loaded/engines.py): input ``images`` N x 3 x S x S, output ``logits``, a dynamic batch
    (and, with ``dynamic_size``, dynamic height and width). ``metadata`` goes into the file's
    ``metadata_props`` (class names, input specification, version), so the file travels with
    what a user needs to feed it. The file is checked with ``onnx.checker``; where onnxruntime
    is installed it is run on a random batch and the largest difference from PyTorch's logits
    is returned (else None)."""
    from ..loaded.engines import write_graph

    try:
        import onnx  # noqa: F401 - said before the exporter fails on it
    except ImportError as exc:
        raise ValueError("ONNX export needs the onnx package: pip install 'deepres[onnx]' "
                         "(onnx, onnxscript and onnxruntime)") from exc
    model = model.eval()
    write_graph(model, path, input_size, dynamic_size)
    add_metadata(path, metadata or {})
    return _max_difference(model, path, torch.rand(2, 3, input_size, input_size))


def add_metadata(path: str | os.PathLike[str], metadata: dict[str, str]) -> None:
    """Set ``metadata`` in an ONNX file's ``metadata_props`` and check the file."""
    import onnx

    proto = onnx.load(str(path))
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


def _max_difference(model: nn.Module, path: str | os.PathLike[str], x: torch.Tensor
                    ) -> float | None:
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"images": x.numpy()})[0]
    with torch.no_grad():
        want = model(x).numpy()
    return float(abs(got - want).max())


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
    """Write ``model`` (eval mode) as a traced, frozen TorchScript file. Serialised in memory
    first, then written with Python's own file I/O: PyTorch's file writer aborts the process
    (SIGABRT, a C++ stack) when the disk fills, where a Python write raises an error that
    the atomic writer turns into one line."""
    Path(path).write_bytes(script_bytes(trace_frozen(model, input_size)))


def script_bytes(module: torch.jit.ScriptModule, extra_files: dict[str, str] | None = None
                 ) -> bytes:
    """A TorchScript module serialised in memory."""
    return module.save_to_buffer(_extra_files=extra_files or {})


def load_cpu(path: str | os.PathLike[str]) -> torch.jit.ScriptModule:
    """Load an exported TorchScript file with PyTorch's CPU inference passes applied.

    The passes rewrite weights into oneDNN layouts that cannot be saved, so they run here, at
    load time, rather than at export.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.jit.optimize_for_inference(torch.jit.load(str(path)).eval())
