"""``deepres data check``: every image of a dataset decoded, with classes, counts, sizes, the
layout training would choose, and the bad files (as data, for the command to print)."""

from __future__ import annotations

from typing import Any

from .datasource import resolve
from .folder import check_index
from .images import refused_images
from .splits import choose_layout, scan_sizes


def dataset_report(path: str) -> dict[str, Any]:
    """What ``deepres data check PATH`` shows: for CIFAR's batches their counts
    (``{"cifar": {...}}``), for an image folder each split's images, counts, sizes, layout
    and bad files."""
    source = resolve(path)  # whatever --data takes
    splits = source.indexes()
    if splits is None:
        d = source.load()
        return {"path": path, "classes": d.classes, "cifar": {
            "train": len(d.train), "test": len(d.test) if d.test is not None else 0}}
    first = next(iter(splits.values()))
    report: dict[str, Any] = {"path": path, "classes": first.classes, "splits": {}}
    for name, index in splits.items():
        sizes = scan_sizes(index)
        bad = check_index(index)
        report["splits"][name] = {
            "images": len(index), "counts": index.counts(), "ignored": len(index.ignored),
            "refused": refused_images(index.ignored),
            "sizes": {f"{w}x{h}" if w else "unreadable": n for (w, h), n in sizes.most_common()},
            "layout": choose_layout(sizes)[1],
            "bad": [{"file": b.path, "reason": b.reason} for b in bad],
        }
    return report
