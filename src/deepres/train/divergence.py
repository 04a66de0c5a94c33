"""Non-finite values in training, and recovering from them.

:class:`FiniteCheck` stops a run before an update computed from a NaN or infinite loss or
gradient. On the CPU it checks each step at once; on a GPU reading a flag back every step would
stall the device, so the flag stays there: a bad step's gradients are zeroed on the device and
the flag is read at logging and checkpoint intervals, before any checkpoint that would follow
the bad step. A stopped run is marked (``diverged.json``) so that a resume may change the
optimisation settings, and the error names the exact command that continues it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ..runtime import distributed as dist
from ..runtime.files import atomic_write_text
from .config import TrainConfig
from .errors import NonFiniteLossError  # noqa: F401  (raised here; its home is errors.py)
from .policy import AFTER_DIVERGENCE, RESUME_POLICY

DIVERGED = "diverged.json"  # in a run directory: training stopped on non-finite values




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


def mark_diverged(run_dir: Path, cfg: TrainConfig, exc: NonFiniteLossError, is_main: bool
                  ) -> NonFiniteLossError:
    """Mark the run directory (a resume may then lower the learning rate) and say the exact
    command that continues the run."""
    lr = cfg.optim.lr
    if is_main:
        atomic_write_text(run_dir / DIVERGED, json.dumps({"message": str(exc), "lr": lr}) + "\n")
    return NonFiniteLossError(
        f"{exc} Lower the learning rate (or check the data) and continue from there: "
        f"deepres train --resume {run_dir} --lr {lr / 10:g}")


def optim_changes(saved: dict[str, Any], cfg: TrainConfig) -> dict[str, Any]:
    """The optimisation settings a resume changed (after a divergence), as {name: [old, new]}."""
    now = cfg.to_dict()["optim"]
    before = saved.get("optim", {})
    return {k: [before.get(k), now[k]] for k, when in RESUME_POLICY.items()
            if when == AFTER_DIVERGENCE and k in before and before[k] != now[k]}
