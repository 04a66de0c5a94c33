"""Evaluation during and at the end of training: errors per epoch (validation selects the best
weights and drives the plateau schedule), precise BN, and the finish: final errors, weights and
summary. Keys are the run records' (train/records.py)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..data.batches import derived_generator
from ..data.testtime import test_batches
from ..evaluate.metrics import evaluate
from ..models import save_weights
from ..runtime.files import atomic_write_text
from ..runtime.machine import describe_machine
from ..runtime.runfolder import RunFolder
from .precise_bn import recompute_bn_stats
from .records import BEST, LR_DIVIDED, Logger, ema_error, precise_bn_error, split_keys
from .schedule import after_eval
from .state import Setup, TrainState


def _errors(s: Setup, model: nn.Module, source: Any) -> dict[str, Any]:
    """``model``'s errors on ``source`` through the run's input specification; no top-5 error
    with 5 classes or fewer, where it is always zero and means nothing."""
    m = evaluate(model, s.data.eval_batches(source), s.prep_eval, s.device, s.ctx,
                 s.cfg.run.precision)
    if len(s.data.classes) <= 5:
        m.pop("top5_error")
    return m


def evaluate_epoch(s: Setup, state: TrainState) -> dict[str, Any]:
    row: dict[str, Any] = {"step": state.step, "epoch": state.epoch}
    last = state.step >= s.cfg.optim.iterations
    if (state.epoch + 1) % s.cfg.run.eval_every and not last:
        return row
    if s.val is not None:
        m = _errors(s, s.model, s.val)
        row.update(split_keys("val").row(m))
        if after_eval(state.schedule, s.cfg.optim, m["top1_error"]):
            row[LR_DIVIDED] = True
        state.schedule.evals_since_best += 1
        if m["top1_error"] < state.schedule.best_val_error:  # selected on validation only
            state.schedule.best_val_error = m["top1_error"]
            state.schedule.evals_since_best = 0
            row[BEST] = True
            if s.ctx.is_main:
                write_weights(s, s.module, s.guard.folder.best,
                               {"best_step": state.step, "best_val_error": m["top1_error"]})
    if s.test is not None:
        m = _errors(s, s.model, s.test)
        row.update(split_keys("test").row(m))
    if s.ema is not None:
        for name, loader in (("val", s.val), ("test", s.test)):
            if loader is not None:
                row[ema_error(name)] = _errors(s, s.ema, loader)["top1_error"]
    return row


def precise_bn_pass(s: Setup, log: Logger) -> dict[str, Any]:
    """Errors before, BN statistics recomputed, errors after (PAPER.md: precise BN)."""
    out: dict[str, Any] = {"batches": s.cfg.run.precise_bn}
    split = "val" if s.val is not None else "test"
    loader = s.val if s.val is not None else s.test
    if loader is not None:
        out[precise_bn_error(split, "before")] = _errors(s, s.model, loader)["top1_error"]
    out["batches"] = recompute_bn_stats(s.module, unaugmented_batches(s), s.cfg.run.precise_bn,
                                        s.cfg.run.precision, s.ctx)
    if loader is not None:
        out[precise_bn_error(split, "after")] = _errors(s, s.model, loader)["top1_error"]
        log.message(f"precise BN over {out['batches']} batches: {split} error "
                    f"{100 * out[precise_bn_error(split, 'before')]:.2f}% -> "
                    f"{100 * out[precise_bn_error(split, 'after')]:.2f}%")
    return out


def unaugmented_batches(s: Setup) -> Iterator[torch.Tensor]:
    """Training images as the model sees them at test time (no augmentation), shuffled each
    pass; each process gets its share of every global batch (data/testtime.py)."""
    ds, world = s.data.train_source, s.ctx.world_size
    epoch = 0
    while True:
        order = torch.randperm(len(ds), generator=derived_generator(s.cfg.run.seed, epoch))
        for b in test_batches(ds, s.data.spec, s.train.batch_size // world,
                              indices=order.tolist(), rank=s.ctx.rank, world_size=world,
                              workers=s.cfg.data.workers):
            x = s.prep_eval(b.images.to(s.device))
            yield x.contiguous(memory_format=torch.channels_last) if s.cfg.run.channels_last \
                else x
        epoch += 1


def finish(s: Setup, state: TrainState, seconds: float, log: Logger,
            last_row: dict[str, Any], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Final errors (reusing the last epoch's evaluation when it was of these weights), the
    weights file, the curves and the summary."""
    summary: dict[str, Any] = {"steps": state.step, "epochs": state.epoch,
                               "seconds": round(seconds, 1), "run_dir": str(s.run_dir),
                               "precision": s.cfg.run.precision,
                               "machine": describe_machine(str(s.device), s.cfg.run.precision),
                               **(extra or {})}
    if state.resumed_at:
        summary["resumed_at_steps"] = state.resumed_at
        # which machine and precision trained which steps (they may differ between sittings)
        summary["segments"] = state.segments_so_far()
    if state.seconds_before is None:  # resumed from a checkpoint that did not keep the time
        summary["seconds_since_step"] = state.resumed_at[-1]
    fresh = last_row.get("step") == state.step
    for name, loader in (("val", s.val), ("test", s.test)):
        if loader is None:
            continue
        keys = split_keys(name)
        if fresh and keys.error in last_row:
            summary.update({k: last_row[k] for k in (keys.error, keys.top5_error, keys.images)
                            if k in last_row})
        else:
            summary.update(keys.row(_errors(s, s.model, loader)))
    if s.ctx.is_main:
        write_weights(s, s.module, RunFolder(s.run_dir).weights)
        if s.ema is not None:
            write_weights(s, s.ema, s.guard.folder.ema, {"ema_decay": s.cfg.run.ema})
        atomic_write_text(RunFolder(s.run_dir).summary, json.dumps(summary, indent=2) + "\n")
        log.close(s.cfg.to_dict(), summary)
    if not math.isnan(summary.get("test_error", math.nan)):
        log.message(f"done: test error {100 * summary['test_error']:.2f}% "
                    f"(accuracy {100 * (1 - summary['test_error']):.2f}%) in {seconds:.0f}s")
    return summary


def write_weights(s: Setup, module: nn.Module, path: Path,
                   extra: dict[str, Any] | None = None) -> None:
    """A weights file with the input specification it needs (it travels with the weights)."""
    d = s.data
    save_weights(module, path, class_names=d.classes,
                 extra={**d.spec.to_metadata(), "recipe": s.cfg.recipe, **(extra or {})})
