"""Training's error types, in a module of their own that imports nothing heavy: the command
line catches them without loading torch (``deepres models`` and ``--help`` stay instant)."""

from __future__ import annotations

import signal
from pathlib import Path


class CheckpointError(RuntimeError):
    """A checkpoint could not be written or read; earlier checkpoints are left as they were."""


class NonFiniteLossError(RuntimeError):
    """The loss or a gradient became NaN or infinite; training stopped before the update."""


class RunError(RuntimeError):
    """A run directory that cannot be used as asked; nothing in it was changed."""


class RunStopped(Exception):  # noqa: N818 - a stop, not an error
    """Training stopped on a signal after writing a checkpoint; ``exit_code`` is 128 + signal."""

    def __init__(self, signum: int, step: int, run_dir: Path) -> None:
        self.signum, self.step, self.run_dir = signum, step, run_dir
        self.exit_code = 128 + signum
        name = signal.Signals(signum).name
        super().__init__(f"stopped by {name} after step {step}; checkpoint written. Continue "
                         f"with: deepres train --resume {run_dir}")
