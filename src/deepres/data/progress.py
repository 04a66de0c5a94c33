"""Progress bars with an ETA for long loops (decoding, scanning, evaluating), on stderr and only
when stderr is a terminal, so logs and pipes stay clean."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def progress(items: Iterable[T], desc: str, total: int | None = None,
             unit: str = "img") -> Iterator[T]:
    from tqdm import tqdm

    from ..runtime.terminal import safe

    desc = safe(desc)  # may quote a dataset's path or name
    # disable=None: tqdm turns itself off when stderr is not a terminal.
    yield from tqdm(items, desc=desc, total=total, unit=unit, disable=None, leave=False,
                    dynamic_ncols=True, mininterval=0.5)
