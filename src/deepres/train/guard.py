"""The run guard: the one owner of what may end a run other than its last step, and of the
run directory's safety around it.

:class:`RunGuard` holds, for one run,
- the **run lock**: an exclusive OS lock (``flock``) on ``RUN_DIR/.lock`` for the whole run; the
  kernel drops it when the process ends, however it ends, so a SIGKILLed run leaves no stale
  lock (forked DataLoader workers close their copy at once); a second run in the same folder is
  refused and told the first one's pid;
- **rollback** of a failed start: a folder this run created is removed again, so a start that
  fails changes nothing; once training runs, the last checkpoint is the state to go back to;
- **stop signals**: SIGTERM (what cluster schedulers and ``docker stop`` send) and SIGINT
  (Ctrl-C) become a request that the loop honours after the current step (a checkpoint, then
  :class:`RunStopped`, so ``--resume`` continues exactly); under torchrun the processes agree
  on it every ``STOP_CHECK_EVERY`` steps;
- **non-finite values**: the run stops before an update computed from a NaN or infinite loss or
  gradient. On the CPU each step is checked at once; on a GPU reading a flag back every step
  would stall the device, so the flag stays there: a bad step's gradients are zeroed on the
  device and the flag is read before each log row and checkpoint, so no checkpoint follows a
  bad step;
- **divergence**: a run stopped on non-finite values is marked (``diverged.json``) so that a
  resume may change the optimisation settings, and the error names the exact command.

The loop asks it (``after_backward``, ``check_finite``, ``stop_requested``) and never spells a
signal, a lock or the mark itself.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import torch

from ..runtime import distributed as dist
from ..runtime.files import atomic_write_text
from ..runtime.runfolder import LOCK, RunFolder
from .errors import NonFiniteLossError, RunError, RunStopped
from .policy import AFTER_DIVERGENCE, RESUME_POLICY

try:
    import fcntl
except ImportError:  # Windows: no flock; runs are not locked there
    fcntl = None  # type: ignore[assignment]

__all__ = ["RunGuard", "RunLock", "RunError", "RunStopped", "NonFiniteLossError",
           "STOP_CHECK_EVERY"]

LOCK_NAME = LOCK
STOP_CHECK_EVERY = 10  # steps between the processes' agreement on a stop signal (torchrun)
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


def defers_finite_check(device: torch.device) -> bool:
    """On a GPU the finite flag stays on the device between log rows and checkpoints."""
    return device.type == "cuda"


class RunGuard:
    """Lock, rollback, stop signals, finite check and divergence mark of one run directory."""

    def __init__(self, run_dir: str | os.PathLike[str], ctx: dist.Context | None = None) -> None:
        self.folder = RunFolder(run_dir)
        self.ctx = ctx if ctx is not None else dist.Context()
        self.lock = RunLock(self.folder.path)
        self.finite = FiniteCheck()
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}
        self.created = False  # whether this run made its folder (a failed start removes it)

    @property
    def run_dir(self) -> Path:
        return self.folder.path

    # -- the run directory: lock and rollback ---------------------------------------------

    @contextmanager
    def locked(self, resume: bool) -> Iterator[None]:
        """The run directory, created if new and locked for the run (the main process); a
        resume needs a checkpoint, a new run refuses a folder that holds one."""
        ckpt = self.folder.checkpoint
        if self.ctx.is_main:
            if resume and not ckpt.is_file():
                raise RunError(f"{ckpt}: no checkpoint to resume from; nothing was changed. "
                               "Start a new run with another --run-dir")
            self.created = not self.run_dir.exists()
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self.lock.acquire()
        try:
            yield
        finally:
            self.lock.release()

    @contextmanager
    def starting(self, resume: bool) -> Iterator[None]:
        """Building the run: a failure here leaves nothing behind (a folder this run created
        is removed again)."""
        try:
            if self.ctx.is_main and not resume and self.folder.checkpoint.exists():
                raise FileExistsError(f"{self.run_dir} already holds a run; pass --resume "
                                      f"{self.run_dir} to continue it, or choose another --run-dir")
            self.ctx.barrier()
            yield
        except BaseException:
            if self.created:
                self.lock.release()
                shutil.rmtree(self.run_dir, ignore_errors=True)
            raise

    # -- training: signals, finite values, divergence ---------------------------------------

    @contextmanager
    def watching(self, device: torch.device, lr: float) -> Iterator[RunGuard]:
        """While training: SIGTERM/SIGINT are requests to stop after the step (a second signal
        of either kind falls back to the default: an impatient Ctrl-C still stops at once); a
        non-finite stop marks the run and says how to continue it at a lower ``lr``."""
        self.finite = FiniteCheck(deferred=defers_finite_check(device))
        if self.ctx.is_main:
            self.folder.diverged.unlink(missing_ok=True)  # a resume after a divergence
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGTERM, signal.SIGINT):
                self._previous[s] = signal.getsignal(s)
                signal.signal(s, self._handle)
        try:
            yield self
        except NonFiniteLossError as exc:
            raise self._mark_diverged(exc, lr) from None
        finally:
            self._restore_signals()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.signum = signum
        self._restore_signals()

    def _restore_signals(self) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous.clear()

    def after_backward(self, module: torch.nn.Module, loss: torch.Tensor, step: int) -> None:
        self.finite.after_backward(module, loss, step)

    def check_finite(self, step: int) -> None:
        """Before a log row or a checkpoint: raise if a step so far was not finite."""
        self.finite.raise_if_found(self.ctx, step)

    def stop_requested(self, step: int | None = None) -> bool:
        """A SIGTERM/SIGINT arrived; with several processes, one that all of them agree on,
        asked every ``STOP_CHECK_EVERY`` steps (a collective read back to the host; ``step``
        None asks now)."""
        if not self.ctx.active:
            return self.signum is not None
        if step is not None and step % STOP_CHECK_EVERY:
            return False
        flag = torch.tensor([float(self.signum or 0)], device=self.ctx.device)
        got = self.ctx.sum(flag).item()  # the same answer on every process
        if got and self.signum is None:
            self.signum = int(signal.SIGTERM)
        return bool(got)

    def stopped(self, step: int) -> RunStopped:
        """The error that ends a run stopped on a signal (its checkpoint already written)."""
        return RunStopped(self.signum or int(signal.SIGTERM), step, self.run_dir)

    def _mark_diverged(self, exc: NonFiniteLossError, lr: float) -> NonFiniteLossError:
        if self.ctx.is_main:
            atomic_write_text(self.folder.diverged,
                              json.dumps({"message": str(exc), "lr": lr}) + "\n")
        return NonFiniteLossError(
            f"{exc} Lower the learning rate (or check the data) and continue from there: "
            f"deepres train --resume {self.run_dir} --lr {lr / 10:g}")


def resume_changes(saved: dict[str, Any], now: dict[str, Any]) -> dict[str, Any]:
    """The optimisation settings a resume changed (after a divergence), as {name: [old, new]};
    ``saved`` and ``now`` are configs as dicts."""
    before, after = saved.get("optim", {}), now["optim"]
    return {k: [before.get(k), after[k]] for k, when in RESUME_POLICY.items()
            if when == AFTER_DIVERGENCE and k in before and before[k] != after[k]}


def _error(step: int, detail: str) -> NonFiniteLossError:
    return NonFiniteLossError(
        f"step {step}: the loss or a gradient is not finite ({detail}); stopped before the "
        "update. The last checkpoint in the run directory holds the last good state.")


class FiniteCheck:
    """Per-step finite check of the loss and gradients; ``deferred`` keeps it on the device."""

    def __init__(self, deferred: bool = False) -> None:
        self.deferred = deferred
        self.first_bad: torch.Tensor | None = None  # deferred: first bad step (1-based) or -1

    def after_backward(self, module: torch.nn.Module, loss: torch.Tensor, step: int) -> None:
        """Raise before a non-finite update, or (deferred) zero the step's gradients on the
        device and remember the step."""
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        finite = torch.isfinite(loss.detach()) & torch.isfinite(
            torch.stack(torch._foreach_norm(grads)).sum())
        if not self.deferred:
            if not bool(finite):
                raise _error(step + 1, f"loss {loss.item():.4g}")
            return
        keep = finite.to(grads[0].dtype)
        for g in grads:  # the update then moves by weight decay and momentum only
            g.nan_to_num_(0.0, 0.0, 0.0).mul_(keep)
        if self.first_bad is None:
            self.first_bad = torch.full((), -1, dtype=torch.long, device=finite.device)
        self.first_bad = torch.where((self.first_bad < 0) & ~finite,
                                     torch.full_like(self.first_bad, step + 1), self.first_bad)

    def raise_if_found(self, ctx: dist.Context, step: int) -> None:
        """Read the deferred flag back (one sync per logging or checkpoint interval)."""
        if self.first_bad is None:
            return
        local = self.first_bad
        anywhere = ctx.sum((local > 0).to(torch.float32)) if ctx.active else (local > 0)
        if bool(anywhere):
            first = int(local.item())
            where = f"step {first}" if first > 0 else "another process"
            raise _error(first if first > 0 else step,
                         f"found at {where} by step {step}; its gradients were zeroed and no "
                         "checkpoint was written after it")


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
