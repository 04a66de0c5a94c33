"""Crash-safe checkpoints: written to a temporary file, fsynced, then renamed over the old one."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import torch

CHECKPOINT = "checkpoint.pt"


class CheckpointError(RuntimeError):
    """A checkpoint could not be written or read; earlier checkpoints are left as they were."""


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_checkpoint(payload: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Atomically replace ``path`` with ``payload``; a kill at any moment leaves the previous
    checkpoint loadable, and a full disk leaves it untouched."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        why = "the disk is full" if exc.errno == errno.ENOSPC else str(exc)
        raise CheckpointError(
            f"could not write checkpoint {path}: {why}. The previous checkpoint, if any, is "
            "intact; free space (or choose another --run-dir) and resume with --resume."
        ) from exc


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (tensors and plain data only)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no checkpoint to resume from")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure here means an unusable file
        raise CheckpointError(f"{path}: unreadable checkpoint ({type(exc).__name__}: {exc})") \
            from exc
