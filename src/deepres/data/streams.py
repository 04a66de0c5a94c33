"""Shards read as streams (``deepres train --shuffle-buffer N``), for shards in an object store:
each torchrun process and each of its DataLoader workers reads its own shards, whole and in
order, and the samples are shuffled through a seeded buffer of N, as WebDataset readers do.

The order is still a pure function of (seed, epoch, rank, processes, streams): every epoch the
shards are permuted and dealt to ``processes x streams`` streams (stream ``s`` of rank ``r`` takes
shards ``r * S + s``, ``r * S + s + R * S``, ...); a stream's samples pass through the buffer
(the first N fill it; then each arriving sample takes the place of a random one, which is
emitted; the rest leave in a random order at the end); batch ``k`` of a process is the next
``batch / processes`` samples of its stream ``k mod S``. With as many DataLoader workers as
streams (the run's ``--workers``, fixed for a run), worker ``s`` gets exactly the batches of
stream ``s``, so it reads only its own shards. A resumed run computes the same order and skips
the batches done: the same images in the same batches as without the stop (tested bit-identical).

An epoch is as many steps as the whole-set shuffle has (the set's size over the batch): a stream
that runs out before then starts again from its first sample, and one that has more leaves the
rest for its next epoch's shards; with shards of one size and a number of shards that divides
evenly, every image is seen once an epoch.

Reading: a worker fetches each remote shard it reaches whole, with one request, and keeps the
two it read last; a sample the buffer held back beyond them is one ranged request.
"""

from __future__ import annotations

import collections

import numpy as np

from ..runtime.terminal import safe
from . import remote
from .errors import DatasetError


def _rng(*keys: int) -> np.random.Generator:
    return np.random.default_rng([int(k) for k in keys])


def buffer_shuffle(order: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """``order`` through a shuffle buffer of ``size``: a sample leaves at most as far ahead
    of where it came as the buffer is long, and on average ``size`` places later."""
    if size <= 1 or len(order) <= 1:
        return order.copy()
    n, size = len(order), min(size, len(order))
    picks = rng.integers(0, size, n - size).tolist()
    buf, out = order[:size].tolist(), []
    for x, j in zip(order[size:].tolist(), picks, strict=True):
        out.append(buf[j])
        buf[j] = x
    tail = np.asarray(buf)
    return np.concatenate([np.asarray(out, dtype=order.dtype),
                           tail[rng.permutation(len(tail))]]).astype(order.dtype)


def stream_batches(archive_of: np.ndarray, *, seed: int, epoch: int, rank: int, world_size: int,
                   streams: int, buffer: int, batch: int, steps: int) -> list[list[int]]:
    """Process ``rank``'s ``steps`` batches of ``batch`` sample indices for ``epoch``;
    ``archive_of[i]`` is sample ``i``'s shard."""
    shards = np.unique(archive_of)
    total = world_size * streams
    if len(shards) < total:
        raise DatasetError(f"--shuffle-buffer streams shards to {world_size} process(es) x "
                           f"{streams} stream(s) (--workers) = {total}, but the data has "
                           f"{len(shards)} shard(s); write more, smaller shards (deepres data "
                           "shard --shard-size), use fewer --workers, or drop --shuffle-buffer")
    order = np.argsort(archive_of, kind="stable")  # each shard's samples, in shard order
    starts = np.searchsorted(archive_of[order], shards)
    ends = np.append(starts[1:], len(order))
    dealt = _rng(seed, epoch).permutation(len(shards))
    per_stream = []
    for s in range(streams):
        mine = dealt[rank * streams + s::total]
        samples = np.concatenate([order[starts[k]:ends[k]] for k in mine])
        per_stream.append(buffer_shuffle(samples, buffer,
                                         _rng(seed, epoch, rank * streams + s, 1)))
    # batch k is stream (k mod S)'s (k div S)-th run of ``batch`` samples, wrapping around
    return [np.take(per_stream[k % streams], np.arange(batch) + k // streams * batch,
                    mode="wrap").tolist() for k in range(steps)]


class ShardCache:
    """The shards one process reads whole: the two fetched last, by URL. A member of a shard
    fetched before and since dropped is read alone (a sample the buffer held back)."""

    def __init__(self, keep: int = 2) -> None:
        self.keep, self.held = keep, collections.OrderedDict()
        self.seen: set[str] = set()

    def read(self, archive: str, offset: int, size: int) -> bytes:
        if archive in self.held:
            self.held.move_to_end(archive)
        elif archive in self.seen:
            return remote.read_range(archive, offset, size)
        else:
            self.seen.add(archive)
            self.held[archive] = remote.read_bytes(archive)
            while len(self.held) > self.keep:
                self.held.popitem(last=False)
        data = self.held[archive][offset:offset + size]
        if len(data) != size:
            raise OSError(f"{safe(archive)} ends {size - len(data)} bytes early")
        return data
