"""Reading an ONNX file as a weight source, without running it: whether a file is ONNX, its
``metadata_props`` (the model card deepres wrote), its input's shape and its output's size, and
the checks that refuse what the engines would only answer with a traceback. An ONNX file holds
no code: operators from a fixed set and their weights. Running one is loaded/onnxfile.py's."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from .errors import WeightsError

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
    check_graph(proto, Path(path))
    meta = {p.key: p.value for p in proto.metadata_props}
    if not proto.graph.input:
        raise WeightsError(f"{path}: the ONNX graph has no input")
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    shape = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in dims]
    out = proto.graph.output[0].type.tensor_type.shape.dim if proto.graph.output else []
    classes = out[1].dim_value if len(out) == 2 and out[1].HasField("dim_value") else None
    return meta, shape, classes or None


# Operator sets the engines here implement: the standard one and ONNX Runtime's own (which
# its quantizer writes); a custom operator needs code that an ONNX file cannot carry.
KNOWN_DOMAINS = frozenset({"", "ai.onnx", "com.microsoft"})


def check_graph(proto: Any, path: Path) -> None:
    """What the engines would refuse with a traceback, said in one line before they see the
    file: a newer IR or operator set than this onnx knows, custom operators, external data
    outside the file's folder, and weights whose declared shape their bytes do not fill."""
    import onnx
    from onnx.defs import onnx_opset_version

    if proto.ir_version > onnx.IR_VERSION:
        raise WeightsError(f"{path}: made for ONNX IR version {proto.ir_version}; the onnx "
                           f"installed reads up to {onnx.IR_VERSION} (upgrade onnx, or export "
                           "with an older opset)")
    for op in proto.opset_import:
        if op.domain in ("", "ai.onnx") and op.version > onnx_opset_version():
            raise WeightsError(f"{path}: uses ONNX opset {op.version}; the engines here know "
                               f"up to {onnx_opset_version()}; export it with an older opset")
    custom = sorted({f"{n.domain}:{n.op_type}" for n in proto.graph.node
                     if n.domain not in KNOWN_DOMAINS})
    if custom:
        raise WeightsError(f"{path}: uses custom operator(s) {', '.join(custom[:3])} that no "
                           "engine here implements; deepres runs only standard ONNX operators")
    for t in proto.graph.initializer:
        _check_initializer(t, path, onnx)


def _check_initializer(t: Any, path: Path, onnx: Any) -> None:
    if t.data_location == onnx.TensorProto.EXTERNAL:
        where = {e.key: e.value for e in t.external_data}.get("location", "")
        folder = path.resolve().parent
        target = (folder / where).resolve()
        if os.path.isabs(where) or not target.is_relative_to(folder):
            raise WeightsError(f"{path}: weight {t.name!r} points to external data "
                               f"{where!r}, outside the file's folder; the engines refuse "
                               "that (keep the data beside the .onnx file)")
        return
    if t.raw_data:
        count = math.prod(t.dims)
        size = onnx.helper.tensor_dtype_to_np_dtype(t.data_type).itemsize
        if count * size != len(t.raw_data):
            raise WeightsError(f"{path}: weight {t.name!r} declares the shape {list(t.dims)} "
                               f"({count:,} values) but holds {len(t.raw_data):,} bytes; the "
                               "file is damaged, export it again")
