"""What keeps a run directory whole: one run at a time in it, and a clean stop on a signal.

- :class:`RunLock` holds an exclusive OS lock (``flock``) on ``RUN_DIR/.lock`` for the whole
  run. The kernel drops it when the process ends, however it ends, so a SIGKILLed run leaves
  no stale lock (forked DataLoader workers close their copy at once); a second run in the
  same folder is refused and told the first one's pid.
- :class:`StopOnSignal` turns SIGTERM (what cluster schedulers and ``docker stop`` send) and
  SIGINT (Ctrl-C) into a request that the loop honours after the current step: it writes a
  checkpoint at that step and raises :class:`RunStopped`, so ``--resume`` continues exactly.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from types import FrameType

from ..runtime.runfolder import LOCK

try:
    import fcntl
except ImportError:  # Windows: no flock; runs are not locked there
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = LOCK
_HELD: set[int] = set()  # the descriptors of run locks this process holds


def _drop_in_child() -> None:
    # A forked child (a DataLoader worker) shares the lock's open file: were it to keep the
    # descriptor, the lock would outlive a SIGKILLed run until its workers noticed. Closing
    # the child's copy leaves the parent's lock held.
    for fd in _HELD:
        try:
            os.close(fd)
        except OSError:
            pass
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_drop_in_child)


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


class RunLock:
    """An exclusive lock on a run directory for as long as the object is held."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / LOCK_NAME
        self.fd: int | None = None

    def acquire(self) -> None:
        if fcntl is None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            other = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise RunError(f"{self.path.parent} is in use by another deepres run (process "
                           f"{other}); wait for it to end, or choose another --run-dir") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self.fd = fd
        _HELD.add(fd)

    def release(self) -> None:
        if self.fd is not None:
            _HELD.discard(self.fd)
            os.close(self.fd)  # closing the descriptor drops the flock
            self.fd = None


class StopOnSignal:
    """While active, SIGTERM and SIGINT set ``signum`` instead of killing the process; a second
    signal of either kind falls back to the default (an impatient Ctrl-C still stops at once)."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.signum = signum
        for s, handler in self._previous.items():
            signal.signal(s, handler)  # type: ignore[arg-type]

    def __enter__(self) -> StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                self._previous[s] = signal.getsignal(s)
                signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)  # type: ignore[arg-type]
        self._previous.clear()
