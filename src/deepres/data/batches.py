"""Batches for training and testing.

Small datasets: :class:`ArrayLoader` holds the uint8 pixels on the training device and augments
whole batches there. Large image folders: :class:`FolderDataset` decodes and scale-augments
images in DataLoader workers, with bounded memory.

Randomness is derived from ``(seed, epoch, batch)`` (or ``(seed, epoch, index)``), so any batch can
be rebuilt exactly: a resumed run sees the same data as an uninterrupted one.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Protocol

import torch

from . import augment as T
from .cifar import ArrayDataset
from .folder import FolderIndex
from .images import BadImageError, decode_image, decode_image_bytes
from .streams import ShardCache, stream_batches
from .tarindex import read_remote


def balanced_order(labels: torch.Tensor, epoch: int, seed: int) -> torch.Tensor:
    """An epoch's image order for a class-balanced sampler: as many draws as images, with
    replacement, each class equally likely (data/augment.py weights)."""
    from .augment import balanced_weights

    w = balanced_weights(labels.cpu().long(), int(labels.max()) + 1)
    return torch.multinomial(w, len(w), replacement=True,
                             generator=derived_generator(seed, epoch))


class Loader(Protocol):
    """What training asks of a loader, held or streamed: the batches of an epoch from a
    position (so a resumed run continues exactly), how many there are, their size. The
    unaugmented view of the same images is data/testtime.py's ``test_batches``."""

    batch_size: int

    def __len__(self) -> int: ...

    def batches(self, epoch: int, start: int = 0
                ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]: ...


def derived_generator(*keys: int) -> torch.Generator:
    """A CPU generator seeded from a tuple of integers (stable across runs and processes)."""
    seed = 0
    for k in keys:
        seed = (seed * 1_000_003 + int(k) + 1) % (2**63 - 1)
    return torch.Generator().manual_seed(seed)


class ArrayLoader:
    """Shuffled, augmented batches from a small dataset held on ``device`` as uint8.

    ``augment(x_uint8, generator) -> x_uint8`` is applied per batch (e.g.
    :func:`deepres.data.augment.cifar_train_augment`). With ``rank``/``world_size`` each process
    takes a disjoint shard of every global batch.
    """

    def __init__(self, ds: ArrayDataset, batch_size: int, device: torch.device | str = "cpu", *,
                 shuffle: bool = True, drop_last: bool = True, seed: int = 0,
                 augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
                 rank: int = 0, world_size: int = 1, balanced: bool = False) -> None:
        if batch_size % world_size:
            raise ValueError(f"batch size {batch_size} is not divisible by {world_size} processes")
        # Held as N x H x W x 3, sharing the dataset's memory on the CPU (no second copy);
        # each batch is gathered and viewed as N x 3 x H x W.
        self.images = torch.from_numpy(ds.images).to(device)
        self.labels = torch.from_numpy(ds.labels).to(device)
        self.balanced = balanced
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.seed, self.augment = seed, augment
        self.rank, self.world_size, self.balanced = rank, world_size, balanced

    def __len__(self) -> int:
        n = self.labels.shape[0]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def order(self, epoch: int) -> torch.Tensor:
        n = self.labels.shape[0]
        if not self.shuffle:
            return torch.arange(n)
        if self.balanced:
            return balanced_order(self.labels, epoch, self.seed)
        return torch.randperm(n, generator=derived_generator(self.seed, epoch))

    def batches(self, epoch: int, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Batches ``start, start+1, ...`` of ``epoch`` (this rank's share of each)."""
        order = self.order(epoch).to(self.labels.device)
        for b in range(start, len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            x = self.images[idx].permute(0, 3, 1, 2)
            if self.augment is not None:
                # Augment the global batch, then shard: every process draws the same random
                # numbers, so N processes see exactly the images one process would.
                x = self.augment(x, derived_generator(self.seed, epoch, b, 1))
            if self.world_size > 1:
                x, idx = x[self.rank::self.world_size], idx[self.rank::self.world_size]
            yield x, self.labels[idx]


class FolderDataset(torch.utils.data.Dataset):
    """Training images decoded from files on demand with scale augmentation (§3.4). Returns
    ``(uint8 3 x crop x crop, label)``. Test-time views are data/testtime.py's."""

    def __init__(self, index: FolderIndex, *, crop: int = 224, seed: int = 0,
                 scale: tuple[int, int] = (256, 480),
                 policy: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
                 whole_shards: bool = False) -> None:
        self.index, self.crop, self.seed, self.scale = index, crop, seed, scale
        self.policy = policy  # an automatic augmentation (data/augment.py), after the crop
        self.epoch = 0
        self.whole_shards = whole_shards  # streamed shards (data/streams.py): fetched whole
        self._shards: tuple[tuple[int, int], ShardCache] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.index.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        path, label = self.index.samples[i]
        return self._item(i, path, label, None)

    def __getitems__(self, indices: list[int]) -> list[tuple[torch.Tensor, int]]:
        """A batch (the DataLoader asks for one whole): images in an object store are
        fetched together first (data/tarindex.py ``read_remote``), the rest as they decode."""
        samples = [self.index.samples[i] for i in indices]
        fetched = read_remote([p for p, _ in samples], self._shard_cache())
        return [self._item(i, p, y, data)
                for i, (p, y), data in zip(indices, samples, fetched, strict=True)]

    def _shard_cache(self) -> ShardCache | None:
        """This process's whole shards for this epoch (a worker of the next epoch, or the
        main process in the next epoch, starts with none)."""
        if not self.whole_shards:
            return None
        key = (os.getpid(), self.epoch)
        if self._shards is None or self._shards[0] != key:
            self._shards = (key, ShardCache())
        return self._shards[1]

    def _item(self, i: int, path: str, label: int, data: bytes | OSError | None
              ) -> tuple[torch.Tensor, int]:
        if isinstance(data, OSError):
            raise BadImageError(path, f"cannot read ({data})")
        pixels = decode_image(path) if data is None else decode_image_bytes(data, path)
        img = torch.from_numpy(pixels).permute(2, 0, 1)
        g = derived_generator(self.seed, self.epoch, i)
        img = T.scale_augment(img, g, self.crop, self.scale)
        if self.policy is not None:
            img = self.policy(img, g)
        return img.contiguous(), label


class FolderLoader:
    """Batches from a :class:`FolderDataset` through DataLoader workers, with the same
    ``batches(epoch, start)`` interface and sharding as :class:`ArrayLoader`."""

    def __init__(self, dataset: FolderDataset, batch_size: int, *, shuffle: bool = True,
                 drop_last: bool = True, seed: int = 0, workers: int = 2, rank: int = 0,
                 world_size: int = 1, pin_memory: bool = False, balanced: bool = False,
                 shuffle_buffer: int = 0) -> None:
        if batch_size % world_size:
            raise ValueError(f"batch size {batch_size} is not divisible by {world_size} processes")
        self.shuffle_buffer = shuffle_buffer  # > 0: shards streamed (data/streams.py)
        # Page-locked batches only for a run on a GPU (faster, non-blocking copies there).
        self.pin_memory = pin_memory
        self.dataset, self.batch_size, self.shuffle = dataset, batch_size, shuffle
        self.drop_last, self.seed, self.workers = drop_last, seed, workers
        self.rank, self.world_size, self.balanced = rank, world_size, balanced

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def batches(self, epoch: int, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if self.shuffle_buffer and self.shuffle:
            index_batches = stream_batches(
                self.dataset.index.samples.columns["archive"], seed=self.seed, epoch=epoch,
                rank=self.rank, world_size=self.world_size, streams=max(1, self.workers),
                buffer=self.shuffle_buffer, batch=self.batch_size // self.world_size,
                steps=len(self))[start:]
            yield from self._load(epoch, index_batches)
            return
        n = len(self.dataset)
        if self.balanced and self.shuffle:
            order = balanced_order(torch.as_tensor(self.dataset.index.labels),
                                   epoch, self.seed)
        else:
            order = (torch.randperm(n, generator=derived_generator(self.seed, epoch))
                     if self.shuffle else torch.arange(n))
        index_batches = [
            order[b * self.batch_size:(b + 1) * self.batch_size][self.rank::self.world_size]
            .tolist() for b in range(start, len(self))
        ]
        yield from self._load(epoch, index_batches)

    def _load(self, epoch: int, index_batches: list[list[int]]
              ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        self.dataset.set_epoch(epoch)  # workers start per iteration and copy this
        loader = torch.utils.data.DataLoader(
            self.dataset, batch_sampler=index_batches, num_workers=self.workers,
            persistent_workers=False, pin_memory=self.pin_memory)
        yield from loader
