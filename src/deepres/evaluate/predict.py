"""``deepres predict``: top-k classes of image files; a bad file is reported and the rest go on."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import torch

from ..data import BadImageError, decode_image
from ..data import transforms as T
from ..data.images import is_image_name
from .testing import Predictor, load_predictor, probs_single


def expand_inputs(inputs: Iterable[str]) -> Iterator[str]:
    """Files as given; folders walked for image files (hidden entries skipped), sorted."""
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            for dirpath, dirnames, filenames in os.walk(path):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for name in sorted(filenames):
                    if is_image_name(name) and not name.startswith("."):
                        yield os.path.join(dirpath, name)
        else:
            yield str(path)


def preprocess(p: Predictor, img: torch.Tensor) -> torch.Tensor:
    """One uint8 ``3 x H x W`` image at the model's test resolution (shorter side, centre crop)."""
    return T.center_crop(T.resize_shorter(img, p.resize), p.input_size)


def predict_one(p: Predictor, path: str, top_k: int) -> dict[str, Any]:
    try:
        arr = decode_image(path)
    except BadImageError as exc:
        return {"file": path, "error": exc.reason}
    x = preprocess(p, torch.from_numpy(arr).permute(2, 0, 1))[None].to(p.mean.device)
    probs = probs_single(p, x)[0].cpu()
    k = min(top_k, probs.numel())
    values, indices = probs.topk(k)
    names = p.classes or [str(i) for i in range(probs.numel())]
    return {"file": path, "predictions": [
        {"class": names[i], "probability": round(float(v), 6)}
        for v, i in zip(values.tolist(), indices.tolist(), strict=True)]}


def predict_files(weights: str, inputs: Iterable[str], top_k: int = 5, device: str = "cpu",
                  precision: str | None = "auto", model_name: str | None = None,
                  classes_file: str | None = None) -> Iterator[dict[str, Any]]:
    p = load_predictor(weights, device, precision, model_name, classes_file)
    for path in expand_inputs(inputs):
        yield predict_one(p, path, top_k)
