"""``deepres export``: a table of writers from a predictor to a file, each written atomically."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..loaded import Predictor
from ..models.card import ModelCard
from ..runtime.files import OutOfSpaceError, atomic_write, check_output_path
from . import FORMATS
from .fold import InferenceModel, optimize_for_cpu
from .formats import export_onnx, export_torchscript


@dataclass(frozen=True)
class ExportOptions:
    data: str | None = None  # int8: the training images that calibrate activation ranges
    calibration_images: int = 512
    dynamic_size: bool = False  # onnx: any input height and width


def _wrapped(p: Predictor, optimize: bool, dynamic_size: bool) -> InferenceModel:
    """The model with its normalisation built in. Any input size: a per-pixel mean image fits
    one size only, so its per-channel mean is subtracted instead (as eval does at other
    sizes)."""
    model = optimize_for_cpu(p.model, channels_last=False) if optimize else p.model
    spec = p.spec.to("cpu")
    return InferenceModel(model, spec.channel_mean if dynamic_size else spec.mean,
                          spec.std, spec.channels).eval()


def onnx_metadata(p: Predictor) -> dict[str, str]:
    """What an ONNX file carries so that it can be used without deepres: class names, the
    input specification (as the weights give it) and the versions."""
    import deepres

    meta = {"deepres_version": deepres.__version__, **p.spec.to_metadata(),
            "input_range": "float pixels in [0, 1], RGB, NCHW; mean subtraction (and std "
            "division) built in"}
    card = p.card if p.card is not None else ModelCard(None, None)
    meta.update({k: v for k, v in replace(card, input_spec=None, tag=None).with_classes(
        p.classes or None).to_metadata().items()})
    return meta


def _onnx(p: Predictor, tmp: Path, o: ExportOptions) -> str:
    diff = export_onnx(_wrapped(p, False, o.dynamic_size), tmp, p.spec.input_size,
                       metadata=onnx_metadata(p), dynamic_size=o.dynamic_size)
    return ("checked with onnx.checker; class names and input specification in its "
            "metadata_props; " + ("onnxruntime not installed, not run" if diff is None else
                                 f"onnxruntime vs PyTorch: max logit difference {diff:.2e}"))


def _torchscript(optimize: bool) -> Callable[[Predictor, Path, ExportOptions], str]:
    def write(p: Predictor, tmp: Path, o: ExportOptions) -> str:
        export_torchscript(_wrapped(p, optimize, False), tmp, p.spec.input_size)
        return ""
    return write


def _int8(p: Predictor, tmp: Path, o: ExportOptions) -> str:
    from ..loaded import calibration_batches
    from .quantize import quantize_onnx

    batches = calibration_batches(p, o.data or "", o.calibration_images, pixels=True)
    images = sum(len(b) for b in batches)
    quantize_onnx(_wrapped(p, False, False), tmp, p.spec.input_size, batches,
                  {**onnx_metadata(p), "calibration": json.dumps({"data": o.data,
                                                                  "images": images})})
    return f"calibrated on {images} training images of {o.data}"


# format -> (writer, what to tell of the result)
WRITERS: dict[str, Callable[[Predictor, Path, ExportOptions], str]] = {
    "onnx": _onnx, "torchscript": _torchscript(False), "cpu": _torchscript(True), "int8": _int8,
}


assert tuple(WRITERS) == FORMATS, "export/__init__.py FORMATS names every writer"


def export(p: Predictor, fmt: str, out: str, options: ExportOptions | None = None) -> list[str]:
    """Write ``p`` as ``fmt`` to ``out`` (renamed into place when complete: never a
    half-written file); returns the lines to tell the user."""
    o = options or ExportOptions()
    if p.model is None:
        raise ValueError("export starts from weights (.safetensors, deepres:NAME), not from "
                         "an ONNX file")
    if fmt not in WRITERS:
        raise ValueError(f"unknown export format {fmt!r}; known: {', '.join(WRITERS)}")
    if fmt == "int8" and not o.data:
        raise ValueError("--format int8 needs --data: the training images that calibrate the "
                         "activation ranges (a few hundred are read)")
    if o.dynamic_size and fmt != "onnx":
        raise ValueError("--dynamic-size applies to --format onnx")
    path = check_output_path(out)
    told: dict[str, Any] = {}
    try:
        atomic_write(path, lambda tmp: told.update(line=WRITERS[fmt](p, tmp, o)))
    except OutOfSpaceError:
        raise
    except (OSError, RuntimeError) as exc:
        raise ValueError(f"{out}: could not write the export ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else 'no detail'})") from exc
    if fmt == "int8":
        return [f"wrote {out} (int8 ONNX, QDQ: runs on ONNX Runtime and OpenVINO, any x86 "
                "CPU); give it to `deepres eval`, `predict` or `serve` as --weights",
                told["line"]]
    size = p.spec.input_size
    shape = ("N x 3 x H x W (any size; trained at " f"{size} x {size})" if o.dynamic_size
             else f"N x 3 x {size} x {size}")
    lines = [f"wrote {out} ({fmt}): input float images in [0, 1], {shape}; "
             f"output logits over {len(p.classes or [])} classes"]
    return lines + ([told["line"]] if told.get("line") else [])
