"""ONNX files written by ``deepres export --format onnx`` or ``--format int8`` as loaded models:
the graph (mean subtraction built in, input float pixels in [0, 1]) and, in its
``metadata_props``, the class names and the input specification. An ONNX file holds no code:
operators from a fixed set and their weights."""

from __future__ import annotations

import os
from pathlib import Path

from ..models.weights import WeightsError
from ..runtime.precision import resolve_precision
from . import engines

FORMAT_KEY = "deepres_format"  # "int8" in files from `deepres export --format int8`


def is_onnx_file(path: str | os.PathLike[str]) -> bool:
    """An ONNX file by its name, or (any other name but .safetensors) by its first byte: a
    model's protobuf opens with field 1 (ir_version), byte 0x08, where a pickle opens with
    0x80 and a zip (PyTorch, TorchScript) with "PK"."""
    path = Path(path)
    if not path.is_file():
        return False
    if path.suffix.lower() == ".onnx":
        return True
    if path.suffix.lower() == ".safetensors":
        return False
    try:
        with open(path, "rb") as f:
            return f.read(1) == b"\x08"
    except OSError:
        return False


def read_metadata(path: str | os.PathLike[str]
                  ) -> tuple[dict[str, str], list[object], int | None]:
    """The file's ``metadata_props``, its input's shape (ints and dimension names) and the
    number of classes its output gives (None where that dimension is not fixed)."""
    try:
        import onnx
    except ImportError as exc:
        raise WeightsError(f"{path}: reading an ONNX file needs the onnx package: pip install "
                           "'deepres[onnx]'") from exc
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf's DecodeError and friends
        raise WeightsError(f"{path}: not a readable ONNX file ({type(exc).__name__}); "
                           "export it again with `deepres export`") from exc
    meta = {p.key: p.value for p in proto.metadata_props}
    if not proto.graph.input:
        raise WeightsError(f"{path}: the ONNX graph has no input")
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    shape = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in dims]
    out = proto.graph.output[0].type.tensor_type.shape.dim if proto.graph.output else []
    classes = out[1].dim_value if len(out) == 2 and out[1].HasField("dim_value") else None
    return meta, shape, classes or None


def onnx_run(path: str, choice: engines.Choice, precision: str | None, int8: bool
             ) -> tuple[engines.Run, str, str]:
    """The file run by ``choice``'s engine; the precision it runs in, and why that engine."""
    precision = "int8" if int8 else resolve_precision(precision, "cpu")
    reason = choice.reason
    if choice.engine == "onnxruntime" and precision == "bf16":
        precision, reason = "fp32", reason + "; ONNX Runtime has no bf16 CPU kernels: fp32"
    run = (engines.openvino_run(path, precision) if choice.engine == "openvino"
           else engines.onnxruntime_run(path))
    return run, precision, reason
