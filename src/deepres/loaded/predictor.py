"""A loaded model: a trained network with what it needs to read images (its input
specification and class names), from any weights format deepres reads (a deepres
``.safetensors``, ``deepres:NAME``, a foreign state dict with a model name, an int8 file), and its
predictions. evaluate/, export/ and serve/ all start from one; none of them imports another."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..inputspec import InputSpec
from ..models.card import ModelCard, read_class_names
from ..models.loading import build, metadata_of
from ..models.source import TORCHSCRIPT_INT8, Source, read_source
from ..models.weights import WeightsError
from ..runtime.options import MEASURING_PRECISION, RUNNING_PRECISION
from ..runtime.precision import resolve_precision
from . import engines
from .engines import Run


@dataclass
class Predictor:
    """A trained model with what it needs to read images: its input specification and class
    names."""

    model: nn.Module | None  # None for an ONNX file: only its engine runs it
    classes: list[str] | None
    spec: InputSpec  # on the model's device
    precision: str = "fp32"  # "fp32", "bf16" (autocast, or the engine's bf16) or "int8"
    # The file's metadata as read (with --model's family defaults and --classes' names), so
    # that what is written from it (export, precise BN) never reads the file a second time.
    metadata: dict[str, str] = field(default_factory=dict)
    engine: str = "torch"  # what runs it (loaded/engines.py), and why that one
    engine_reason: str = ""
    run: Run | None = None  # model input -> float32 logits; None: ``model`` under autocast
    takes_pixels: bool = False  # an exported ONNX file: mean subtraction inside, input [0, 1]
    card: ModelCard | None = None  # what the model is (models/card.py)
    batch_size: int = 64  # images per forward pass in :meth:`predict`

    @property
    def device(self) -> torch.device:
        return self.spec.mean.device

    @classmethod
    def from_weights(cls, path: str | os.PathLike[str], device: str = "cpu",
                     precision: str | None = RUNNING_PRECISION, model_name: str | None = None,
                     classes_file: str | None = None, engine: str = "auto") -> Predictor:
        """A predictor for a weights file (deepres, an exported ONNX or int8 file, or foreign
        with ``model_name``), run by ``engine`` ("auto": the fastest installed, see
        :attr:`engine_reason`; "torch", "onnxruntime", "openvino")."""
        return load_predictor(str(path), device, precision, model_name, classes_file, engine)

    @classmethod
    def from_model(cls, model: nn.Module, device: str | torch.device | None = None,
                   precision: str | None = RUNNING_PRECISION, engine: str = "torch",
                   batch_size: int = 64) -> Predictor:
        """A predictor for a network in memory (``create_model(...)``, one being trained): its
        card gives the input specification and class names (the family's defaults where no
        weights said otherwise); ``engine`` "torch" runs the module as it is, "onnxruntime" or
        "openvino" a converted copy (CPU)."""
        card = getattr(model, "card", None)
        spec = card.input_spec if card is not None else None
        if spec is None:
            raise ValueError("the model has no input specification (model.card.input_spec); "
                             "build it with deepres.create_model or load it with "
                             "deepres.model_from_weights")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, not {batch_size!r}")
        device = torch.device(device) if device is not None else \
            next(model.parameters()).device
        choice = engines.choose(engine, False, device)
        precision = resolve_precision(precision, device)
        model = model.to(device).eval()
        run = None
        if choice.engine != "torch":
            if choice.engine == "onnxruntime" and precision == "bf16":
                precision = "fp32"  # ONNX Runtime has no bf16 CPU kernels
            run = engines.converted(model, choice.engine, precision, spec.input_size, False,
                                    spec.channels)
        return cls(model, card.class_names and list(card.class_names), spec.to(device),
                   precision, card.to_metadata(), choice.engine, choice.reason, run,
                   card=card, batch_size=batch_size)

    def predict(self, images: Any, top_k: int = 5) -> list[dict[str, Any]]:
        """Top-``top_k`` classes of each image, with the preprocessing of ``deepres predict``
        (shorter side resized, centre crop, the weights' normalisation). ``images``: a PIL
        image, an ``H x W x 3`` uint8 array, a tensor (``3 x H x W`` or ``N x 3 x H x W``,
        uint8, or float in [0, 1] as torchvision's ``ToTensor`` gives), a file path, or a list
        of them. Returns one
        ``{"predictions": [{"class", "probability"}, ...]}`` per image (with ``"file"`` for
        paths)."""
        from PIL import Image

        from ..data import decode_image
        from ..data.images import pil_to_array

        items = images if isinstance(images, list | tuple) else [images]
        items = [x for item in items for x in (_tensor_images(item) if isinstance(
            item, torch.Tensor) else [item])]
        batch, files = [], []
        for item in items:
            if isinstance(item, torch.Tensor):
                batch.append(self.spec.test_view(item))
                files.append(None)
                continue
            if isinstance(item, Image.Image):
                arr, name = pil_to_array(item), None
            elif isinstance(item, np.ndarray):
                if item.dtype != np.uint8 or item.ndim != 3 or item.shape[2] != 3:
                    raise ValueError(f"an array image must be H x W x 3 uint8, not "
                                     f"{item.dtype} {tuple(item.shape)}")
                arr, name = item, None
            else:
                arr, name = decode_image(item), str(item)
            img = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1)
            batch.append(self.spec.test_view(img))
            files.append(name)
        probs = torch.cat([probs_single(self, torch.stack(batch[i:i + self.batch_size])
                                        .to(self.device)).cpu()
                           for i in range(0, len(batch), self.batch_size)]) if batch else \
            torch.empty(0)
        return [({"file": name} if name is not None else {}) | self.top_classes(row, top_k)
                for name, row in zip(files, probs, strict=True)]

    def top_classes(self, probs: torch.Tensor, top_k: int) -> dict[str, Any]:
        """``{"predictions": [{"class", "probability"}, ...]}``: one image's ``top_k``, as
        ``deepres predict`` and :meth:`predict` both give them."""
        values, indices = probs.topk(min(top_k, probs.numel()))
        labels = self.classes or [str(i) for i in range(probs.numel())]
        return {"predictions": [{"class": labels[i], "probability": round(float(v), 6)}
                                for v, i in zip(values.tolist(), indices.tolist(), strict=True)]}

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 ``N x 3 x H x W`` to model input, as the input specification says (an
        exported ONNX file does its own mean subtraction: it takes pixels in [0, 1])."""
        if self.takes_pixels:
            return x.float().div_(255.0)
        return self.spec.normalize(x)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Float32 logits of model input ``x``, from whichever engine runs the model."""
        return (self.run or engines.torch_run(self.model, self.precision))(x)

    def describe_engine(self) -> str:
        """One line: the engine, the precision, and why that engine."""
        return f"engine: {self.engine} ({self.precision}): {self.engine_reason}"


def load_predictor(path: str, device: torch.device | str = "cpu",
                   precision: str | None = MEASURING_PRECISION, model_name: str | None = None,
                   classes_file: str | None = None, engine: str | None = None,
                   any_size: bool = False) -> Predictor:
    """Rebuild a model from a deepres ``weights.safetensors`` (or an ONNX file from ``deepres
    export --format onnx`` or ``int8``) with its class names and mean, run by ``engine``
    ("auto", "torch", "onnxruntime", "openvino": loaded/engines.py; None: torch for weights,
    auto for an ONNX file, what library callers that use ``model`` want); ``any_size``: the engine
    takes any input height and width (multi-scale testing). The source is read by
    models/source.py ``read_source`` (every field checked before it is used, errors naming it)."""
    from ..models.onnxread import is_onnx_file

    path = str(path)
    if is_onnx_file(path):  # the engine is chosen before the file is read
        choice = engines.choose(engine or "auto", True, device)
        return _load_onnx(read_source(path), choice, precision)
    source = read_source(path, model_name)
    if source.format == TORCHSCRIPT_INT8:
        return _load_torchscript_int8(source, device, engine)
    model, source = build(path, model_name, source)
    card, meta = model.card, metadata_of(model, source)
    if classes_file is not None:
        card = card.with_classes(_read_classes(classes_file, model.fc.out_features))
        meta = {**meta, **ModelCard(None, None, card.class_names).to_metadata()}
    spec = card.input_spec
    assert spec is not None
    choice = engines.choose(engine or "torch", False, device)
    precision = resolve_precision(precision, device)
    model = model.to(device).eval()
    run, reason = None, choice.reason
    if choice.engine == "onnxruntime" and precision == "bf16":
        precision, reason = "fp32", reason + "; ONNX Runtime has no bf16 CPU kernels: fp32"
    if choice.engine != "torch":
        run = engines.converted(model, choice.engine, precision, spec.input_size, any_size,
                                spec.channels)
    model.card = card
    return Predictor(model, card.class_names and list(card.class_names), spec.to(device),
                     precision, meta, choice.engine, reason, run, card=card)


def _load_torchscript_int8(source: Source, device: torch.device | str, engine: str | None
                           ) -> Predictor:
    """A TorchScript int8 file, the format before ONNX int8: loaded, on the CPU, with a note."""
    from .int8 import load_int8

    path = source.path
    if torch.device(device).type != "cpu":
        raise WeightsError(f"{path}: int8 files run on the CPU only; use --device cpu")
    if engine not in (None, "auto", "torch"):
        raise WeightsError(f"{path}: a TorchScript int8 file runs on --engine torch only; "
                           "re-export it with `deepres export --format int8` (ONNX)")
    print(f"note: {path} is a TorchScript int8 file, the format before ONNX int8; it "
          "loads in this release only: re-export it with `deepres export --format int8`",
          file=sys.stderr, flush=True)
    module, _ = load_int8(path)
    card = source.card
    assert card.input_spec is not None
    # int8 kernels take float input and quantize it themselves: no autocast.
    return Predictor(module, card.class_names and list(card.class_names), card.input_spec,
                     "fp32", dict(source.metadata), "torch",
                     "a TorchScript int8 file (the format before ONNX int8)", card=card)


def _load_onnx(source: Source, choice: engines.Choice, precision: str | None) -> Predictor:
    """An exported ONNX file run by ``choice``'s engine: mean subtraction is in the graph."""
    from .onnxfile import FORMAT_KEY, onnx_run

    card, path = source.card, source.path
    assert card.input_spec is not None
    run, precision, reason = onnx_run(path, choice, precision,
                                      source.metadata.get(FORMAT_KEY) == "int8")
    return Predictor(None, card.class_names and list(card.class_names), card.input_spec,
                     precision, dict(source.metadata), choice.engine, reason, run,
                     takes_pixels=True, card=card)


def _read_classes(path: str, outputs: int) -> list[str]:
    """``--classes FILE``: one name a line, one per classifier output (the card's rule)."""
    try:
        names = [x.strip() for x in Path(path).read_text().splitlines() if x.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise WeightsError(f"{path}: cannot read the class names ({exc})") from exc
    if not names:
        raise WeightsError(f"{path}: no class names in it (one per line)")
    read_class_names(ModelCard(None, None, tuple(names)).to_metadata(), path, outputs)
    return names


def _softmax(p: Predictor, x: torch.Tensor) -> torch.Tensor:
    logits = p.logits(x)
    finite = torch.isfinite(logits).all(dim=1)
    if not bool(finite.all()):
        raise engines.NonFiniteOutputError(
            f"the model's output is not finite (NaN or infinity) for {int((~finite).sum())} "
            f"of {len(logits)} image(s): its weights are broken (a run that diverged?) or the "
            "file is; nothing was predicted")
    return F.softmax(logits, dim=1)


@torch.no_grad()
def probs_single(p: Predictor, x: torch.Tensor) -> torch.Tensor:
    """One crop: ``x`` already at the test size (uint8 N x 3 x H x W)."""
    return _softmax(p, p.normalize(x))


def _tensor_images(t: torch.Tensor) -> list[torch.Tensor]:
    """``3 x H x W`` or ``N x 3 x H x W``, uint8 or float in [0, 1], as uint8 ``3 x H x W``
    images (floats rounded to the nearest of 256 levels, as an image file would hold them)."""
    if t.dim() == 3:
        t = t.unsqueeze(0)
    if t.dim() != 4 or t.shape[1] != 3:
        raise ValueError(f"a tensor image must be 3 x H x W or N x 3 x H x W, not "
                         f"{tuple(t.shape)}")
    t = t.detach().cpu()
    if t.is_floating_point():
        if t.numel() and (float(t.min()) < 0 or float(t.max()) > 1):
            raise ValueError(f"a float tensor image must hold values in [0, 1] (as ToTensor "
                             f"gives), not [{float(t.min()):g}, {float(t.max()):g}]")
        t = t.mul(255).round_().to(torch.uint8)
    elif t.dtype != torch.uint8:
        raise ValueError(f"a tensor image must be uint8 or float in [0, 1], not {t.dtype}")
    return list(t)
