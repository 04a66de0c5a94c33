"""Progress of long loops (decoding, scanning, extracting, evaluating) on stderr: a bar with an
ETA on a terminal; elsewhere (a log file, CI, Slurm) a plain line every ``DEEPRES_PROGRESS_SECONDS``
(default 15) seconds, so that a long job shows life without filling its log. Loops shorter
than that print nothing."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

ENV = "DEEPRES_PROGRESS_SECONDS"


def interval() -> float:
    try:
        return max(0.001, float(os.environ.get(ENV, "15")))
    except ValueError:
        return 15.0


def progress(items: Iterable[T], desc: str, total: int | None = None,
             unit: str = "img") -> Iterator[T]:
    from ..runtime.terminal import safe

    desc = safe(desc)  # may quote a dataset's path or name
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    if sys.stderr.isatty():
        from tqdm import tqdm

        yield from tqdm(items, desc=desc, total=total, unit=unit, leave=False,
                        dynamic_ncols=True, mininterval=0.5)
        return
    yield from _plain(items, desc, total, unit, interval())


def _plain(items: Iterable[T], desc: str, total: int | None, unit: str,
           every: float) -> Iterator[T]:
    start = last = time.monotonic()
    done = 0
    for item in items:
        yield item
        done += 1
        now = time.monotonic()
        if now - last >= every:
            last = now
            print(_line(desc, done, total, unit, now - start), file=sys.stderr, flush=True)


def _line(desc: str, done: int, total: int | None, unit: str, elapsed: float) -> str:
    if not total:
        return f"{desc}: {done:,} {unit} in {elapsed:.0f} s"
    eta = elapsed / done * (total - done) if done else float("nan")
    return (f"{desc}: {done:,}/{total:,} {unit} ({100 * done / total:.0f}%) in "
            f"{elapsed:.0f} s, about {eta:.0f} s left")
