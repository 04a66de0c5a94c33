"""ONNX files written by ``deepres export --format onnx`` or ``--format int8`` as loaded models:
the graph (mean subtraction built in, input float pixels in [0, 1]) and, in its
``metadata_props``, the class names and the input specification. An ONNX file holds no code:
operators from a fixed set and their weights."""

from __future__ import annotations

from ..models.onnxread import (  # noqa: F401  (where callers have found them)
    FORMAT_KEY,
    KNOWN_DOMAINS,
    check_graph,
    is_onnx_file,
    read_metadata,
)
from ..models.weights import WeightsError
from ..runtime.precision import resolve_precision
from . import engines


def onnx_run(path: str, choice: engines.Choice, precision: str | None, int8: bool
             ) -> tuple[engines.Run, str, str]:
    """The file run by ``choice``'s engine; the precision it runs in, and why that engine."""
    precision = "int8" if int8 else resolve_precision(precision, "cpu")
    reason = choice.reason
    if choice.engine == "onnxruntime" and precision == "bf16":
        precision, reason = "fp32", reason + "; ONNX Runtime has no bf16 CPU kernels: fp32"
    try:
        run = (engines.openvino_run(path, precision) if choice.engine == "openvino"
               else engines.onnxruntime_run(path))
    except Exception as exc:  # noqa: BLE001 - each engine's own failure types
        first = next((x.strip() for x in str(exc).splitlines() if x.strip()), "")
        raise WeightsError(f"{path}: {choice.engine} cannot load it: "
                           f"{first[:300] or type(exc).__name__}") from exc
    return run, precision, reason
