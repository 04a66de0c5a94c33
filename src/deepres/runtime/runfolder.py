"""A training run's folder: the one place that names its files and reads and writes its
``metrics.jsonl`` (one JSON object per logged step).

Training writes it (train/), experiments and reports read it (experiments/, report/), and the
command line points users at its files; all of them go through :class:`RunFolder`, so a file
name is spelled here only. No torch: reading a run's records costs no start-up.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .files import atomic_write_text, is_out_of_space, out_of_space

CONFIG, METRICS, SUMMARY = "config.json", "metrics.jsonl", "summary.json"
CHECKPOINT, WEIGHTS, CURVES, LOCK = "checkpoint.pt", "weights.safetensors", "curves.png", ".lock"
TENSORBOARD = "tensorboard"
BEST, EMA = "best.safetensors", "ema.safetensors"  # the best validation weights; --ema's
DIVERGED = "diverged.json"  # training stopped on non-finite values (train/guard.py)
TRACKING = "mlflow.json"  # the MLflow run this run logs to (train/tracking.py)


class RunFolderError(ValueError):
    """A run file that cannot be read: the message names the file (and line) and what to do."""


@dataclass(frozen=True)
class RunFolder:
    """The files of one run, by role."""

    path: Path

    def __init__(self, path: str | os.PathLike[str]) -> None:
        object.__setattr__(self, "path", Path(path))

    @property
    def config(self) -> Path:
        return self.path / CONFIG

    @property
    def metrics(self) -> Path:
        return self.path / METRICS

    @property
    def summary(self) -> Path:
        return self.path / SUMMARY

    @property
    def checkpoint(self) -> Path:
        return self.path / CHECKPOINT

    @property
    def weights(self) -> Path:
        return self.path / WEIGHTS

    @property
    def curves(self) -> Path:
        return self.path / CURVES

    @property
    def lock(self) -> Path:
        return self.path / LOCK

    @property
    def tensorboard(self) -> Path:
        return self.path / TENSORBOARD

    @property
    def best(self) -> Path:
        return self.path / BEST

    @property
    def ema(self) -> Path:
        return self.path / EMA

    @property
    def diverged(self) -> Path:
        return self.path / DIVERGED

    @property
    def tracking(self) -> Path:
        return self.path / TRACKING

    def started(self) -> bool:
        """A run was started here (its config was written): resume it, do not start anew."""
        return self.config.exists()

    def finished(self) -> bool:
        return self.summary.exists()

    def read_metrics(self) -> list[dict[str, Any]]:
        """Every logged row; a line that is not JSON is an error naming the file and line."""
        if not self.metrics.exists():
            return []
        rows = []
        for n, line in enumerate(self.metrics.read_text().splitlines(), 1):
            if line.strip():
                rows.append(_json(line, self.metrics, n))
        return rows

    def append_metrics(self, row: dict[str, Any]) -> None:
        """One row more; the rows already written stay, and a full disk is said plainly."""
        line = json.dumps(row) + "\n"
        try:
            with open(self.metrics, "a") as f:
                f.write(line)
        except OSError as exc:
            if is_out_of_space(exc, self.path):
                raise out_of_space(self.metrics, len(line), exc) from exc
            raise

    def truncate_metrics(self, last_step: int) -> None:
        """Drop the rows logged after ``last_step`` (a resumed run redoes them)."""
        if not self.metrics.exists():
            return
        lines = self.metrics.read_text().splitlines()
        keep = [line for n, line in enumerate(lines, 1)
                if line.strip() and _json(line, self.metrics, n)["step"] <= last_step]
        _write_lines(self.metrics, keep)

    def read_summary(self) -> dict[str, Any]:
        return _json(self.summary.read_text(), self.summary)

    def read_config(self) -> dict[str, Any]:
        return _json(self.config.read_text(), self.config)


def _json(text: str, path: Path, line: int | None = None) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested 10^5 deep
        where = f"{path}" + (f", line {line}" if line is not None else "")
        raise RunFolderError(f"{where}: not valid JSON ({exc}); the file was cut short or "
                             "edited. Restore it (git checkout) or retrain the run") from None


def _write_lines(path: Path, lines: Iterable[str]) -> None:
    atomic_write_text(path, "".join(line + "\n" for line in lines))
