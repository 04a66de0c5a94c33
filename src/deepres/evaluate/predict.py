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
from ..data.progress import progress
from .testing import load_predictor, probs_single


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


class _PredictImages(torch.utils.data.Dataset):
    """Files decoded in DataLoader workers at the test resolution; a bad file gives a blank
    image and its reason, so the batch and the rest of the files go on."""

    def __init__(self, paths: list[str], resize: int, crop: int) -> None:
        self.paths, self.resize, self.crop = paths, resize, crop

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, str]:
        try:
            img = torch.from_numpy(decode_image(self.paths[i])).permute(2, 0, 1)
        except BadImageError as exc:
            return torch.zeros(3, self.crop, self.crop, dtype=torch.uint8), exc.reason
        img = T.center_crop(T.resize_shorter(img, self.resize), self.crop)
        return img.contiguous(), ""


def predict_files(weights: str, inputs: Iterable[str], top_k: int = 5, device: str = "cpu",
                  precision: str | None = "auto", model_name: str | None = None,
                  classes_file: str | None = None, batch_size: int = 64, workers: int = 2
                  ) -> Iterator[dict[str, Any]]:
    """Top-k classes of every image file in ``inputs`` (folders walked), in batches decoded by
    ``workers`` DataLoader processes; a bad file yields ``{"file", "error"}``."""
    p = load_predictor(weights, device, precision, model_name, classes_file)
    paths = list(expand_inputs(inputs))
    ds = _PredictImages(paths, p.resize, p.input_size)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=False,
                                         num_workers=min(workers, len(paths) // batch_size + 1)
                                         if paths else 0)
    done = 0
    for x, reasons in progress(loader, "predicting", total=len(loader), unit="batch"):
        probs = probs_single(p, x.to(p.mean.device)).cpu()
        for j, reason in enumerate(reasons):
            path = paths[done + j]
            yield ({"file": path, "error": reason} if reason
                   else {"file": path, **p.top_classes(probs[j], top_k)})
        done += len(reasons)
