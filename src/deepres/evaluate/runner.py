"""``deepres eval``: top-1/top-5 error of one model or an ensemble under a testing protocol."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch

from ..data import ArrayDataset, DatasetError, FolderIndex, decode_image, load_data
from ..data import transforms as T
from ..data.progress import progress
from ..runtime import distributed as dist
from ..runtime.precision import configure_cuda
from .metrics import confusion_counts, explain, topk_wrong
from .testing import (
    Predictor,
    ensemble,
    load_predictor,
    probs_multiscale,
    probs_single,
    probs_ten_crop,
)


def _check_classes(preds: Sequence[Predictor], classes: list[str], paths: Sequence[str]) -> None:
    for p, path in zip(preds, paths, strict=True):
        if p.classes is not None and list(p.classes) != list(classes):
            raise DatasetError(
                f"{path} was trained on other classes than the dataset has.\n"
                f"  weights ({len(p.classes)}): {', '.join(p.classes)}\n"
                f"  dataset ({len(classes)}): {', '.join(classes)}"
            )


def _array_batches(ds: ArrayDataset, batch_size: int, ctx: dist.Context
                   ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    idx = torch.arange(len(ds))[ctx.rank::ctx.world_size]
    images = torch.from_numpy(ds.images).permute(0, 3, 1, 2)
    labels = torch.from_numpy(ds.labels)
    for i in range(0, len(idx), batch_size):
        j = idx[i:i + batch_size]
        yield images[j], labels[j]


class TestImages(torch.utils.data.Dataset):
    """Image files decoded in DataLoader workers and preprocessed by the input specification:
    shorter side ``resize``, then (``crop``) the centre ``crop`` x ``crop``; without ``crop``
    the resized image is returned whole (10-crop testing cuts its own crops)."""

    def __init__(self, samples: list[tuple[str, int]], resize: int | None,
                 crop: int | None) -> None:
        self.samples, self.resize, self.crop = samples, resize, crop

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[i]
        img = torch.from_numpy(decode_image(path)).permute(2, 0, 1)
        if self.resize is not None:
            img = T.resize_shorter(img, self.resize)
        if self.crop is not None:
            img = T.center_crop(img, self.crop)
        return img.contiguous(), label


def folder_batches(index: FolderIndex, p: Predictor, batch_size: int, workers: int,
                   ctx: dist.Context, mode: str = "crop"
                   ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """This process's share of a folder split, decoded in ``workers`` processes and prepared
    by ``p``'s input specification: ``crop``, batches of centre crops (single-crop testing);
    ``resized``, one image at a time at the test size (10-crop cuts its own crops); ``raw``,
    one image at a time as decoded (multi-scale resizes it to each scale)."""
    samples = index.samples[ctx.rank::ctx.world_size]
    ds = TestImages(samples, None if mode == "raw" else p.resize,
                    p.input_size if mode == "crop" else None)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size if mode == "crop" else 1,
                                         num_workers=workers, shuffle=False)
    yield from progress(loader, f"evaluating {index.root}", total=len(loader),
                        unit="batch")


def _probs(p: Predictor, x: torch.Tensor, crops: int, scales: Sequence[int] | None,
           folder: bool, tta: str | None = None) -> torch.Tensor:
    x = x.to(p.mean.device)
    if scales:
        return probs_multiscale(p, x, scales)
    if crops == 10:
        return probs_ten_crop(p, x)
    if x.shape[-1] != p.input_size or x.shape[-2] != p.input_size:
        x = T.center_crop(x, p.input_size)
    if tta == "flip":
        return (probs_single(p, x) + probs_single(p, x.flip(-1))) / 2
    return probs_single(p, x)


def calibration_batches(p: Predictor, data: str, images: int = 512, batch_size: int = 64,
                        seed: int = 0) -> list[torch.Tensor]:
    """``images`` training images of ``data``, drawn at random (fixed seed) and preprocessed
    as the predictor's input specification says: model input, for int8 calibration."""
    splits = load_data(data)
    ds = splits.train
    order = torch.randperm(len(ds), generator=torch.Generator().manual_seed(seed))[:images]
    out = []
    for i in range(0, len(order), batch_size):
        idx = order[i:i + batch_size]
        if isinstance(ds, FolderIndex):
            images = TestImages([ds.samples[j] for j in idx.tolist()], p.resize, p.input_size)
            x = torch.stack([images[k][0] for k in range(len(images))])
        else:
            x = torch.from_numpy(ds.images[idx.numpy()]).permute(0, 3, 1, 2)
            if x.shape[-1] != p.input_size or x.shape[-2] != p.input_size:
                x = T.center_crop(T.resize_shorter(x, p.resize), p.input_size)
        out.append(p.normalize(x.to(p.mean.device)).cpu())
    return out


def run_eval(weights: Sequence[str], data: str, *, crops: int = 1,
             scales: Sequence[int] | None = None, split: str = "test", batch_size: int = 256,
             tta: str | None = None,
             device: str = "cpu", precision: str | None = "auto", model_name: str | None = None,
             classes_file: str | None = None, workers: int = 2) -> dict[str, Any]:
    """Top-1/top-5 error of the ensemble of ``weights`` on a labelled split of ``data``."""
    if crops not in (1, 10):
        raise ValueError(f"--crops must be 1 or 10, not {crops}")
    ctx = dist.init(device)
    try:
        device = str(ctx.local_device(device))
        configure_cuda(device)
        preds = [load_predictor(w, device, precision, model_name, classes_file)
                 for w in weights]
        splits = load_data(data)
        ds = {"test": splits.test, "train": splits.train}.get(split)
        if ds is None:
            raise DatasetError(f"{data} has no {split} split")
        _check_classes(preds, splits.classes, weights)
        folder = isinstance(ds, FolderIndex)
        # An ensemble's members are fed the first one's preprocessing.
        mode = "raw" if scales else "resized" if crops == 10 else "crop"
        batches = (folder_batches(ds, preds[0], batch_size, workers, ctx, mode) if folder
                   else _array_batches(ds, batch_size, ctx))
        k = len(splits.classes)
        # Top-1/top-5 wrong, images, then the confusion counts: one all-reduce for all.
        totals = torch.zeros(3 + k * k, dtype=torch.float64)
        for x, y in batches:
            probs = ensemble([_probs(p, x, crops, scales, folder, tta) for p in preds]).cpu()
            totals[:3] += torch.tensor([float(topk_wrong(probs, y, 1)),
                                        float(topk_wrong(probs, y, 5)), float(len(y))],
                                       dtype=torch.float64)
            totals[3:] += confusion_counts(probs, y.cpu(), k).flatten().double()
        totals = ctx.sum(totals)
    finally:
        ctx.close()
    w1, w5, n = totals[:3].tolist()
    if n == 0:
        raise DatasetError(f"{data}: no images in the {split} split were evaluated; check the "
                           "data and --batch-size")
    protocol = (f"multi-scale {','.join(map(str, scales))}" if scales
                else "10-crop" if crops == 10 else "single crop + flip" if tta == "flip"
                else "single crop")
    # Top-5 means something only with more than 5 classes (said by top5_meaningful).
    return {"top1_error": w1 / max(n, 1), "top5_error": w5 / max(n, 1), "images": int(n),
            "models": len(preds), "protocol": protocol, "data": data, "split": split,
            "precision": preds[0].precision, "top5_meaningful": k > 5,
            **explain(totals[3:].reshape(k, k), list(splits.classes))}
