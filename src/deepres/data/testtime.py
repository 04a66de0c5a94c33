"""The one place that turns a dataset into test-time batches: held arrays, image folders and
loose files alike, prepared by an input specification. ``deepres eval``, ``predict``, int8
calibration and precise BN all read images through :func:`test_batches`."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from ..inputspec import InputSpec
from .cifar import ArrayDataset
from .folder import FolderIndex
from .images import BadImageError, decode_image
from .progress import progress
from .splits import Split

# How much of the test transform a batch gets: "crop", the spec's test view (shorter side
# resized, centre crop); "resized", the resize only, one image at a time (10-crop cuts its own
# crops); "raw", as decoded, one image at a time (multi-scale resizes to each scale).
MODES = ("crop", "resized", "raw")


@dataclass
class TestBatch:
    images: torch.Tensor  # uint8 N x 3 x H x W
    labels: torch.Tensor  # int64 N (-1 for loose files)
    errors: list[str]  # per image: "" or why the file could not be read (then a blank image)


class TestImages(torch.utils.data.Dataset):
    """Image files decoded in DataLoader workers and prepared as ``mode`` says; with
    ``tolerate_bad`` a file that cannot be read gives a blank image and its reason."""

    def __init__(self, samples: Sequence[tuple[str, int]], spec: InputSpec, mode: str = "crop",
                 tolerate_bad: bool = False) -> None:
        self.samples, self.spec, self.mode = list(samples), spec.to("cpu"), mode
        self.tolerate_bad = tolerate_bad

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, str]:
        path, label = self.samples[i]
        try:
            img = torch.from_numpy(decode_image(path)).permute(2, 0, 1)
        except BadImageError as exc:
            if not self.tolerate_bad:
                raise
            size = self.spec.input_size
            return torch.zeros(3, size, size, dtype=torch.uint8), label, exc.reason
        return _view(img, self.spec, self.mode), label, ""


def _view(img: torch.Tensor, spec: InputSpec, mode: str) -> torch.Tensor:
    if mode == "crop":
        return spec.test_view(img)
    if mode == "resized":
        return spec.resize(img).contiguous()
    return img.contiguous()


def test_batches(data: Split | Sequence[str], spec: InputSpec,
                 batch_size: int, *, mode: str = "crop", indices: Sequence[int] | None = None,
                 rank: int = 0, world_size: int = 1, workers: int = 0,
                 tolerate_bad: bool = False, desc: str | None = None) -> Iterator[TestBatch]:
    """uint8 test batches of ``data`` (in ``indices`` order, default all), this process's share
    (every ``world_size``-th image from ``rank``), prepared by ``spec`` as ``mode`` says.
    Files are decoded by ``workers`` processes; ``desc`` shows a progress bar over them
    (arrays held in memory take no time worth one)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    order = list(range(len(data))) if indices is None else [int(i) for i in indices]
    order = order[rank::world_size]
    if isinstance(data, ArrayDataset):
        yield from _array_batches(data, spec, batch_size, mode, order)
        return
    samples = ([data.samples[i] for i in order] if isinstance(data, FolderIndex)
               else [(str(data[i]), -1) for i in order])
    ds = TestImages(samples, spec, mode, tolerate_bad)
    loader = torch.utils.data.DataLoader(
        ds, batch_size=batch_size if mode == "crop" else 1, shuffle=False,
        num_workers=min(workers, len(samples) // max(1, batch_size) + 1) if samples else 0)
    batches = progress(loader, desc, total=len(loader), unit="batch") if desc else loader
    for x, y, errors in batches:
        yield TestBatch(x, y, list(errors))


def _array_batches(ds: ArrayDataset, spec: InputSpec, batch_size: int, mode: str,
                   order: list[int]) -> Iterator[TestBatch]:
    images = torch.from_numpy(ds.images).permute(0, 3, 1, 2)
    labels = torch.from_numpy(ds.labels)
    idx = torch.tensor(order, dtype=torch.long)
    for i in range(0, len(idx), batch_size):
        j = idx[i:i + batch_size]
        x = images[j]
        if mode != "raw" and tuple(x.shape[-2:]) != (spec.input_size, spec.input_size):
            x = _view(x, spec, mode)
        yield TestBatch(x.contiguous(), labels[j], [""] * len(j))
