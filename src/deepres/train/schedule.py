"""Learning-rate schedules as plain functions of the step and a small, checkpointed state."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from .config import SCHEDULES, OptimConfig


@dataclass
class ScheduleState:
    warmed_up: bool = False  # the ResNet-110 warm-up is over (§4.2)
    plateau_scale: float = 1.0  # product of the /10 steps taken on plateaus (§3.4)
    best_error: float = math.inf
    bad_evals: int = 0
    best_val_error: float = math.inf  # the best validation error so far (best.safetensors)
    evals_since_best: int = 0  # validation evaluations since that best (--early-stop)
    # The warm-up's recent per-batch training errors (the last ``warmup_window``).
    warmup_errors: list[float] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def lr_at(step: int, cfg: OptimConfig, state: ScheduleState) -> float:
    """The learning rate for optimizer step ``step`` (0-based)."""
    if cfg.warmup_lr is not None and not state.warmed_up and (
            cfg.warmup_steps is None or step < cfg.warmup_steps):
        return cfg.warmup_lr
    total = max(1, cfg.iterations)
    if cfg.schedule == "step":
        return cfg.lr * cfg.gamma ** sum(step >= round(m * total) for m in cfg.milestones)
    if cfg.schedule == "plateau":
        return cfg.lr * state.plateau_scale
    if cfg.schedule == "cosine":
        return cfg.lr * 0.5 * (1 + math.cos(math.pi * min(step, total) / total))
    if cfg.schedule == "onecycle":
        up = max(1, int(cfg.warmup_fraction * total))
        if step < up:
            return cfg.lr * (step + 1) / up
        return cfg.lr * max(0.0, (total - step) / max(1, total - up))
    raise ValueError(f"unknown schedule {cfg.schedule!r}; use one of {', '.join(SCHEDULES)}")


def after_train_error(state: ScheduleState, cfg: OptimConfig, train_error: float) -> bool:
    """End the warm-up once the training error over the last ``warmup_window`` batches falls
    below the threshold (one noisy batch cannot end it early); True if it just did."""
    if cfg.warmup_lr is None or state.warmed_up or cfg.warmup_steps is not None:
        return False  # no warm-up, over, or one of a fixed length (lr_at counts its steps)
    window = max(1, cfg.warmup_window)
    state.warmup_errors = [*state.warmup_errors, train_error][-window:]
    if len(state.warmup_errors) < window or \
            sum(state.warmup_errors) / window >= cfg.warmup_until_error:
        return False
    state.warmed_up = True
    state.warmup_errors = []
    return True


def after_eval(state: ScheduleState, cfg: OptimConfig, val_error: float) -> bool:
    """Plateau schedule: divide by 10 after ``patience`` evaluations without improvement."""
    if cfg.schedule != "plateau":
        return False
    if val_error < state.best_error - 1e-6:
        state.best_error, state.bad_evals = val_error, 0
        return False
    state.bad_evals += 1
    if state.bad_evals >= cfg.patience:
        state.plateau_scale *= cfg.gamma
        state.bad_evals = 0
        return True
    return False
