"""Dynamic batching: concurrent requests' images gathered into one batch, run once off the
event loop, each request answered with its own rows.

A batch closes when it holds ``max_batch`` images, ``max_wait_ms`` after its first image
arrived, or at once when no other request is decoding (nothing more is on its way: a lone
client does not pay the wait). The queue is bounded (``max_queue`` images): a full queue is
refused at once (the server answers 503 with Retry-After) rather than growing without limit.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

import torch

T = TypeVar("T")


class QueueFull(Exception):
    """More images are waiting than the server holds; retry later."""


@dataclass
class BatchStats:
    """What /metrics reports of the batching."""

    batches: int = 0
    images: int = 0
    sizes: dict[int, int] = field(default_factory=dict)  # batch size -> how many batches
    queue_seconds: float = 0.0
    inference_seconds: float = 0.0


@dataclass
class _Item:
    image: torch.Tensor  # uint8 3 x H x W at the test view
    done: asyncio.Future
    queued: float


class DynamicBatcher:
    def __init__(self, run: Callable[[torch.Tensor], torch.Tensor], *, max_batch: int = 32,
                 max_wait_ms: float = 5.0, max_queue: int = 256) -> None:
        self.run, self.max_batch = run, max_batch
        self.max_wait, self.max_queue = max_wait_ms / 1000.0, max_queue
        self.queue: asyncio.Queue[_Item] | None = None
        self.stats = BatchStats()
        # One inference thread: the model runs one batch at a time, using all its cores. It is
        # the only thread that runs torch's parallel work (test views, stack, the model): libgomp
        # gives each such thread its own OpenMP team, and with two teams on 2 cores it stops
        # spinning between parallel regions (a ResNet-20 image took 11 ms instead of 3).
        self.pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="deepres-infer")
        self.task: asyncio.Task | None = None
        # Images announced (their requests are decoding) and not yet submitted: a batch waits
        # for more only while some are coming; a lone request runs at once.
        self.coming = 0

    @contextlib.contextmanager
    def announce(self, images: int) -> Iterator[None]:
        """Around a request's decoding: its images count as coming until it ends (submitted
        right after, in the same step of the event loop, or failed)."""
        self.coming += images
        try:
            yield
        finally:
            self.coming -= images

    def start(self) -> None:
        self.queue = asyncio.Queue()
        self.task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
        self.pool.shutdown(wait=True)

    async def submit(self, images: list[torch.Tensor]) -> list[torch.Tensor]:
        """Queue ``images`` (uint8, test view); their probability rows, in order."""
        assert self.queue is not None, "start() the batcher inside the server's event loop"
        if self.queue.qsize() + len(images) > self.max_queue:
            raise QueueFull(f"{self.queue.qsize()} images are waiting (limit {self.max_queue})")
        loop = asyncio.get_running_loop()
        items = [_Item(img, loop.create_future(), time.perf_counter()) for img in images]
        for item in items:
            self.queue.put_nowait(item)
        return list(await asyncio.gather(*(i.done for i in items)))

    async def _loop(self) -> None:
        assert self.queue is not None
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self.queue.get()]
            deadline = loop.time() + self.max_wait
            while len(batch) < self.max_batch:
                if not self.queue.empty():  # waiting already: taken without a wait
                    batch.append(self.queue.get_nowait())
                    continue
                left = deadline - loop.time()
                if left <= 0 or self.coming <= 0:  # nothing more is on its way
                    break
                try:
                    batch.append(await asyncio.wait_for(self.queue.get(), left))
                except TimeoutError:
                    break
            await self._run(batch, loop)

    def _stack_and_run(self, images: list[torch.Tensor]) -> torch.Tensor:
        return self.run(torch.stack(images))

    def call(self, fn: Callable[[], T]) -> T:
        """``fn()`` in the inference thread (loading the model there keeps its OpenMP team the
        process's only one)."""
        return self.pool.submit(fn).result()

    async def _run(self, batch: list[_Item], loop: asyncio.AbstractEventLoop) -> None:
        start = time.perf_counter()
        groups: dict[tuple[int, ...], list[_Item]] = {}
        for item in batch:  # images of one size run together (one spec: all the same)
            groups.setdefault(tuple(item.image.shape), []).append(item)
        for items in groups.values():
            try:
                probs = await loop.run_in_executor(
                    self.pool, self._stack_and_run, [i.image for i in items])
            except Exception as exc:  # the requests fail, the server goes on
                for i in items:
                    if not i.done.done():
                        i.done.set_exception(exc)
                continue
            for i, row in zip(items, probs, strict=True):
                if not i.done.done():  # a client that left has a cancelled future
                    i.done.set_result(row)
        s = self.stats
        s.batches += 1
        s.images += len(batch)
        s.sizes[len(batch)] = s.sizes.get(len(batch), 0) + 1
        s.queue_seconds += sum(start - i.queued for i in batch)
        s.inference_seconds += time.perf_counter() - start
