"""A peer's measurements on our data, read for the full-schedule report (issue 44).

``OUT/peer/published.json`` (benchmarks/peer_weights.py): akamaster's published weights on our
JPEG test set, as published and fine-tuned here. ``OUT/peer/akamaster-NET-sSEED/epochs.jsonl``
(benchmarks/akamaster_trainer.py): akamaster's own trainer from scratch on our JPEG files, one
line per epoch. Both are plain data for the report; nothing here trains or evaluates.
"""

from __future__ import annotations

import json
import re
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PEER_EPOCHS = 200  # akamaster's trainer.py: 200 epochs, lr /10 after 100 and 150
PEER_ITERATIONS = PEER_EPOCHS * 391  # 50,000 images at batch 128: 391 steps an epoch
PARITY_MIN_SEEDS = 3  # of ours, at the same schedule, for a spread to judge parity against
_RUN = re.compile(r"^akamaster-(?P<net>\w+?)-s(?P<seed>\d+)$")


@dataclass(frozen=True)
class PeerRun:
    """akamaster's trainer from scratch on our files: its per-epoch test errors (percent)."""

    net: str
    seed: int
    errors: tuple[float, ...]  # test error after each finished epoch
    images_per_s: float  # median over its epochs
    machines: tuple[str, ...]

    @property
    def finished(self) -> bool:
        return len(self.errors) >= PEER_EPOCHS

    @property
    def best(self) -> tuple[float, int]:
        """The peer's selection rule: the epoch with the best test accuracy (its best_prec1)."""
        err = min(self.errors)
        return err, self.errors.index(err) + 1


def read_published(folder: Path) -> dict[str, dict[str, Any]]:
    path = folder / "published.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def read_runs(folder: Path) -> list[PeerRun]:
    runs = []
    for d in sorted(folder.glob("akamaster-*")):
        m, log = _RUN.match(d.name), d / "epochs.jsonl"
        if m is None or not log.is_file():
            continue
        rows = [json.loads(x) for x in log.read_text().splitlines() if x.strip()]
        if not rows:
            continue
        runs.append(PeerRun(m["net"], int(m["seed"]), tuple(r["test_error"] for r in rows),
                            statistics.median(r["images_per_second"] for r in rows),
                            tuple(dict.fromkeys(r["machine"] for r in rows))))
    return runs


def parity(peer_error: float, ours: list[float]) -> str:
    """Whether the peer's error lies within our seeds' spread: mean ± 2 standard deviations of
    at least PARITY_MIN_SEEDS of our runs at the same schedule. Fewer seeds: not judged."""
    if len(ours) < PARITY_MIN_SEEDS:
        return (f"parity not judged: {len(ours)} finished seed(s) of ours at this schedule, "
                f"{PARITY_MIN_SEEDS} needed for a spread")
    mean, sd = statistics.mean(ours), statistics.stdev(ours)
    lo, hi = mean - 2 * sd, mean + 2 * sd
    inside = lo <= peer_error <= hi
    return (f"{'parity' if inside else 'no parity'}: {peer_error:.2f}% is "
            f"{'inside' if inside else 'outside'} our {len(ours)} seeds' mean ± 2 sd "
            f"({lo:.2f} to {hi:.2f}%)")
