"""The pixels a server process decodes at once, across all its requests.

``--max-pixels`` and ``--max-request-pixels`` bound one image and one request, read from the
headers before anything is decoded; but six requests of a 5000x5000 WebP each (4 KB apiece)
decoding together took a server from 686 MB to 4,383 MB. So a request also holds its pixel
cost in this budget while its images decode: a request that would go over waits (first come,
first served) until others finish, and that wait counts against ``--timeout`` like the rest.

A held cost is given back when the decoding ends (each image decoded, then made its test view),
not when the request stops waiting for it (a timed-out request's decode still uses its memory
until it finishes), so the bound holds under any mix of requests and timeouts.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


class PixelBudget:
    """At most ``capacity`` pixels decoding at once in this process (one event loop)."""

    def __init__(self, capacity: int) -> None:
        self.capacity, self.used = capacity, 0
        self._waiting: deque[tuple[int, asyncio.Future[None]]] = deque()

    async def acquire(self, pixels: int) -> None:
        """Hold ``pixels`` (at most ``capacity``: the request limits check that first)."""
        pixels = min(pixels, self.capacity)
        if not self._waiting and self.used + pixels <= self.capacity:
            self.used += pixels
            return
        granted = asyncio.get_running_loop().create_future()
        self._waiting.append((pixels, granted))
        try:
            await granted
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():
                self.release(pixels)  # granted just as the wait was cancelled
            else:
                self._waiting.remove((pixels, granted))
                self._grant()  # the request behind this one may fit now
            raise

    def release(self, pixels: int) -> None:
        self.used -= min(pixels, self.capacity)
        self._grant()

    def _grant(self) -> None:
        while self._waiting and self.used + self._waiting[0][0] <= self.capacity:
            pixels, granted = self._waiting.popleft()
            self.used += pixels
            granted.set_result(None)

    async def run(self, pixels: int, work: Callable[[], Awaitable[T]]) -> T:
        """``await work()`` once ``pixels`` are held; given back when it ends. A caller that
        stops waiting (a timeout) does not give them back early."""
        await self.acquire(pixels)
        try:
            task = asyncio.ensure_future(work())
        except BaseException:
            self.release(pixels)
            raise
        task.add_done_callback(lambda _: self.release(pixels))
        return await asyncio.shield(task)
