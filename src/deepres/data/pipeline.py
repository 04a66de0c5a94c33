"""The one place that turns a data config into training and evaluation batches: loaders, the
validation split, and the preprocessing the input specification asks for."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import numpy as np
import torch

from ..inputspec import IMAGENET, InputSpec
from ..runtime.terminal import safe
from . import augment as T
from .augment import auto_augment, random_erasing
from .batches import ArrayLoader, FolderDataset, FolderLoader, Loader
from .config import DataConfig
from .datasource import load_data
from .folder import DatasetError, FolderIndex, holdout_split
from .splits import Split, Splits
from .tarindex import MemberRows
from .testtime import test_batches


@dataclass(kw_only=True)
class Pipeline:
    """Loaders for train/val/test and how batches become model input."""

    train: Loader
    # The held-out or val/ images and the test images, read through the one test-time path
    # (data/testtime.py) by eval_batches.
    val: Split | None
    test: Split | None
    classes: list[str]
    train_source: Split  # the training images (for unaugmented passes)
    # Sizes and normalisation (on the training device); the data's own mean until a source of
    # weights with its own specification replaces it (train/loop.py).
    spec: InputSpec
    in_memory: bool
    augment: bool
    skipped_bad: int
    layout: str  # in memory or streamed, and why
    validation: str  # where the validation error comes from
    # Random erasing of the normalised training batch (data/augment.py), or None.
    erase: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None
    eval_batch_size: int = 256
    rank: int = 0
    world_size: int = 1
    workers: int = 2

    def eval_batches(self, source: Split
                     ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """This process's share of ``source`` at the test view of the spec (uint8)."""
        for b in test_batches(source, self.spec, self.eval_batch_size, rank=self.rank,
                              world_size=self.world_size, workers=self.workers):
            yield b.images, b.labels

    def prep_train(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """uint8 training batch (already cropped/flipped for small images) to model input;
        large images get §3.4's batched flip, mean subtraction and colour augmentation."""
        if self.in_memory or not self.augment:
            out = self.spec.normalize(self._sized(x))
        else:
            out = self.spec.to_channels(T.imagenet_train_batch(x, g, self.spec.mean,
                                                               self.spec.std))
        return self.erase(out, g) if self.erase is not None and self.augment else out

    def prep_eval(self, x: torch.Tensor) -> torch.Tensor:
        return self.spec.normalize(self._sized(x))

    def _sized(self, x: torch.Tensor) -> torch.Tensor:
        """Held images at another input size (--input-size): resized in the batch, after the
        augmentation at their own size."""
        if self.in_memory and x.shape[-1] != self.spec.input_size:
            return self.spec.resize(x, self.spec.input_size)
        return x

    def adopt(self, source: InputSpec | None, origin: str, mode: str) -> str:
        """Normalise as ``mode`` says (data/config.py ``input_spec``): the weights' source's
        mean/std, torchvision's ImageNet ones, or the data's own. The sizes stay the data's.
        Returns the line that says which, and what to pass for the other choice."""
        if mode == "imagenet":
            source, origin = IMAGENET, "--input-spec imagenet"
        if mode == "dataset" or source is None:
            why = "--input-spec dataset" if mode == "dataset" else origin
            return f"input: the training data's own mean ({why}); {self.spec.describe()}"
        sized = replace(source, input_size=self.spec.input_size,
                        test_resize=self.spec.test_resize,
                        channels=self.spec.channels).to(self.spec.mean.device)
        self.spec = sized
        hint = "" if mode == "imagenet" else "; --input-spec dataset uses the data's own mean"
        if source.input_size != sized.input_size:
            hint += (f"; the weights were trained at {source.input_size}x{source.input_size}, "
                     f"--input-size {source.input_size} fine-tunes at that size")
        return f"input: as {origin}: {sized.describe()}{hint}"


def build_pipeline(d: DataConfig, batch_size: int, device: torch.device, seed: int,
                   rank: int = 0, world_size: int = 1, channels: int = 3) -> Pipeline:
    """Load ``d.data``, split it, and build this process's loaders and preprocessing
    (``channels`` 1: the model reads the luma of the normalised RGB, inputspec.py)."""
    splits = load_data(d.data)
    splits.split("train")  # a folder with only test/ or val/ has nothing to train on: say so
    if len(splits.classes) < 2:
        raise DatasetError(f"{d.data}: has one class ({', '.join(splits.classes)}); a "
                           "classifier needs at least 2 class folders to learn anything")
    skipped = _check_bad(splits, d.skip_bad)
    shard = {"rank": rank, "world_size": world_size}
    if d.val_split is None:  # the dataset's own val/ folder, when it has one beside test/
        d = replace(d, val_split=splits.val is not None and splits.val is not splits.test)
    held, validation = _validation(d, splits)
    evaluation = {"eval_batch_size": 2 * batch_size, "workers": d.workers, **shard,
                  "erase": random_erasing(d.random_erasing) if d.random_erasing else None}
    test_split = None if (d.val_split and splits.test is splits.val) else splits.test
    _check_streams(d, splits)
    if splits.in_memory:
        train_ds, val_ds = splits.train, splits.val if d.val_split else None
        if held is not None:
            train_ds, val_ds = train_ds.subset(held[0]), train_ds.subset(held[1])
        # Per-pixel mean of the training images (§4.2).
        mean = T.mean_image(torch.from_numpy(train_ds.images)).to(device)
        augment = _held_augment(d) if d.augment else None
        train = ArrayLoader(train_ds, batch_size, device, seed=seed, augment=augment,
                            balanced=d.balanced_sampler, **shard)
        size = int(train_ds.images.shape[1])
        if d.input_size and d.input_size != size:  # resized in batches: one mean per channel
            size, mean = d.input_size, mean.mean(dim=(1, 2))
        return Pipeline(train=train, val=val_ds, test=test_split, classes=splits.classes,
                        train_source=train_ds,
                        spec=InputSpec(size, size, mean, channels=channels),
                        in_memory=True, augment=d.augment, skipped_bad=skipped,
                        layout=splits.layout, validation=validation, **evaluation)
    # Large images (§3.4): scale augmentation in workers; flip, mean, colour in batches.
    index, val_index = splits.train, splits.val if d.val_split else None
    if held is not None:
        val_index = index.subset(held[1])
        index = index.subset(held[0])
    # §3.4: scale augmentation to [256, 480] and 224 crops; tested at shorter side 256. Other
    # crop sizes keep those proportions.
    crop = d.input_size or d.crop or 224  # crop None: a config made for small images
    resize = round(crop * 256 / 224)
    scale = (resize, round(crop * 480 / 224))
    policy = auto_augment(d.auto_augment) if d.augment and d.auto_augment else None
    train_ds = FolderDataset(index, crop=crop, seed=seed, scale=scale, policy=policy,
                             whole_shards=d.shuffle_buffer > 0)
    pin = torch.device(device).type == "cuda"
    train = FolderLoader(train_ds, batch_size, seed=seed, workers=d.workers, pin_memory=pin,
                         balanced=d.balanced_sampler, shuffle_buffer=d.shuffle_buffer, **shard)
    # §3.4: "the per-pixel mean subtracted", a crop-sized mean image (--pixel-mean; the
    # imagenet-paper recipe's choice), or one mean per channel.
    mean = _mean(index, InputSpec(crop, resize, torch.zeros(3)), d.pixel_mean).to(device)
    return Pipeline(train=train, val=val_index, test=test_split, classes=splits.classes,
                    train_source=index, spec=InputSpec(crop, resize, mean, channels=channels),
                    in_memory=False, augment=d.augment, skipped_bad=skipped, layout=splits.layout,
                    validation=validation, **evaluation)


def _held_augment(d: DataConfig) -> Callable[[torch.Tensor, torch.Generator], torch.Tensor]:
    """§4.2's pad-4 crop and flip, then the automatic policy where one is asked for."""
    if not d.auto_augment:
        return T.cifar_train_augment
    policy = auto_augment(d.auto_augment)

    def augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        return policy(T.cifar_train_augment(x, g), g)

    return augment


def _check_streams(d: DataConfig, splits: Splits) -> None:
    """--shuffle-buffer streams shards of large images (data/streams.py); anything else is
    refused in one line rather than ignored."""
    if not d.shuffle_buffer:
        return
    if splits.in_memory:
        why = "the images are held in memory (small): they are decoded once, in order"
    elif not isinstance(splits.train.samples, MemberRows):
        why = "the data is not shards (a folder, or a dataset file)"
    elif d.balanced_sampler:
        why = "--balanced-sampler draws images at random from the whole set"
    else:
        return
    raise DatasetError(f"--shuffle-buffer {d.shuffle_buffer} streams shards of large images, "
                       f"but {why}; drop --shuffle-buffer")


def _check_bad(splits: Splits, skip_bad: bool) -> int:
    if splits.bad and not skip_bad:
        # One line a file: its name escaped, so a newline in it cannot forge another line.
        listing = "\n".join(f"  {safe(b.path)}: {safe(b.reason)}" for b in splits.bad[:50])
        more = f"\n  ... and {len(splits.bad) - 50} more" if len(splits.bad) > 50 else ""
        raise DatasetError(f"{len(splits.bad)} bad file(s) in {splits.name}; fix or remove them, "
                           f"or pass --skip-bad to train without them:\n{listing}{more}")
    return len(splits.bad)


def _validation(d: DataConfig, splits: Splits) -> tuple[tuple[np.ndarray, np.ndarray] | None,
                                                       str]:
    """The held-out split's indices (or None) and a line saying where validation comes from."""
    if d.val_split:
        if splits.val is None:
            raise DatasetError(f"{d.data}: --val-split asks for the dataset's val/ folder, but "
                               "it has none; hold out part of train with --holdout instead")
        return None, (f"validation: the dataset's val/ folder ({len(splits.val)} images; "
                      "--holdout N holds out part of train instead)")
    if not d.holdout:
        return None, "validation: none (no images held out)"
    n = len(splits.train)
    holdout = d.holdout
    if holdout >= 1 and holdout > n // 10:  # a count meant for a large set: cap it
        holdout = max(1, n // 10)
    held = holdout_split(n, holdout, d.holdout_seed)
    capped = f", capped from {d.holdout:g} at a tenth of the set" if holdout != d.holdout else ""
    return held, (f"validation: {len(held[1])} of {n} training images held out"
                  f" (seed {d.holdout_seed}{capped})")


def _mean(index: FolderIndex, view: InputSpec, per_pixel: bool, limit: int = 2000
          ) -> torch.Tensor:
    """The training images' mean in [0, 1] at the test view (resize, centre crop), over an
    evenly spaced sample of at most ``limit`` of them: ``3 x crop x crop`` per pixel, or ``3``
    per channel. Decoding the whole of a large set at start-up would cost as much as an epoch."""
    step = max(1, len(index) // limit)
    total: torch.Tensor | None = None
    count = 0
    for b in test_batches(index, view, 64, indices=range(0, len(index), step)):
        imgs = b.images.double()
        part = imgs.sum(0) if per_pixel else imgs.mean(dim=(2, 3)).sum(0)
        total = part if total is None else total + part
        count += len(imgs)
    if total is None:
        return torch.zeros(3)
    return (total / count / 255.0).float()
