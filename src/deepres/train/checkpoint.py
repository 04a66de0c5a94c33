"""Crash-safe checkpoints: written to a temporary file, fsynced, then renamed over the old one."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ..runtime.files import OutOfSpaceError, atomic_write
from ..runtime.runfolder import CHECKPOINT as RUN_CHECKPOINT
from .errors import CheckpointError  # noqa: F401  (raised here; its home is errors.py)

CHECKPOINT = RUN_CHECKPOINT  # the name in a run folder (runtime/runfolder.py)




def save_checkpoint(payload: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Atomically replace ``path`` with ``payload``; a kill at any moment leaves the previous
    checkpoint loadable, and a full disk leaves it untouched."""
    path = Path(path)
    try:
        atomic_write(path, lambda tmp: torch.save(payload, tmp))
    except OutOfSpaceError as exc:
        raise CheckpointError(
            f"{exc.strerror.split('. Nothing')[0]}. The previous checkpoint is intact; free "
            "space (or move the run directory), then --resume.") from exc
    except OSError as exc:
        raise CheckpointError(
            f"could not write checkpoint {path}: {exc}. The previous checkpoint, if any, is "
            "intact; fix the cause and resume with --resume.") from exc


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
