"""The training loop: ``fit(config) -> summary``, readable top to bottom.

``fit`` has the run guard (train/guard.py) lock the run directory, then starts (or resumes)
the run; ``prepare`` (train/state.py)
builds data (one pipeline, ``data/pipeline.py``), model and optimizer; ``train_one_epoch`` runs
optimizer steps with logging and checkpoints as plain ``if step % n == 0`` checks;
``evaluate_epoch`` (train/evaluation.py) measures errors; ``finish`` writes the weights and the
summary. Helpers follow in the order they are called.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..data import DatasetError
from ..data.batches import derived_generator
from ..runtime import distributed as dist
from ..runtime.files import atomic_write_text, stray_temporaries
from ..runtime.machine import describe_machine
from ..runtime.precision import autocast, cpu_has_native_bf16
from ..runtime.precision import why as precision_why
from ..runtime.runfolder import RunFolder
from .checkpoint import load_checkpoint, save_checkpoint
from .config import TrainConfig, resolve_auto
from .errors import RunError
from .evaluation import evaluate_epoch, finish, precise_bn_pass
from .guard import RunGuard, resume_changes
from .records import (
    EPOCH,
    IMAGES_PER_S,
    LR,
    STEP,
    TRAIN_ERROR,
    TRAIN_LOSS,
    Logger,
)
from .schedule import ScheduleState, after_train_error, lr_at
from .state import Setup, TrainState, prepare, update_ema


def fit(cfg: TrainConfig, *, resume: bool = False) -> dict[str, Any]:
    """Train as ``cfg`` says; with ``resume`` continue the run in ``cfg.run.run_dir``."""
    with dist.init(cfg.run.device) as ctx:  # the ranks meet before the group goes away
        return _fit(cfg, resume, ctx)


def _fit(cfg: TrainConfig, resume: bool, ctx: dist.Context) -> dict[str, Any]:
    requested_precision = cfg.run.precision
    _check_micro_batches(cfg, ctx.world_size)  # before anything is created
    cfg = resolve_auto(cfg)
    torch.manual_seed(cfg.run.seed)
    guard = RunGuard(cfg.run.run_dir, ctx)  # lock, rollback, signals, finite values
    with guard.locked(resume):
        with guard.starting(resume):
            s, cfg, state = _start(cfg, resume, ctx, guard)
        with guard.watching(s.device, cfg.optim.lr):
            return _train(s, cfg, state, ctx, requested_precision)


def _check_micro_batches(cfg: TrainConfig, world_size: int) -> None:
    """--accumulate N splits each process's share of a batch into N micro-batches; batch norm
    needs at least 2 images in each (with 1 it fails mid-run, after a checkpoint is written)."""
    o = cfg.optim
    share = o.batch_size // max(1, world_size)
    if o.accumulate > 1 and share // o.accumulate < 2:
        most = max(1, share // 2)
        raise ValueError(f"--accumulate {o.accumulate} splits each process's {share} images "
                         f"(--batch-size {o.batch_size} over {world_size} process(es)) into "
                         "micro-batches of fewer than 2 images, and batch norm needs at least "
                         f"2: use --accumulate {most} or less, or a larger --batch-size; "
                         "nothing was created")


def _start(cfg: TrainConfig, resume: bool, ctx: dist.Context, guard: RunGuard
           ) -> tuple[Setup, TrainConfig, TrainState]:
    """Data, model and optimizer, the training length resolved, the checkpoint restored (or the
    first one written); up to here a failure changes nothing in the run directory."""
    run_dir = Path(cfg.run.run_dir)
    s = prepare(cfg, ctx, guard)
    cfg = s.cfg  # settled against the data (train/state.py settle)
    if len(s.train) == 0:
        raise DatasetError(f"the training split has fewer images than one batch "
                           f"({cfg.optim.batch_size}); lower --batch-size")
    if cfg.optim.early_stop is not None and s.val is None:
        raise DatasetError("--early-stop watches the validation error, and this run has no "
                           "validation split: add --holdout 0.1 (or a val/ folder), or drop "
                           "--early-stop")
    state = TrainState()
    if resume:
        state = _restore(s, load_checkpoint(guard.folder.checkpoint))
        if state.step > cfg.optim.iterations:
            raise RunError(f"{run_dir}: the run is at step {state.step}, past the "
                           f"{cfg.optim.iterations} iterations asked for; nothing was changed")
    if ctx.is_main:
        if resume:  # temporaries a killed writer left (the run lock excludes live ones)
            stray = stray_temporaries(run_dir)
            for p in stray:
                p.unlink(missing_ok=True)
            if stray:
                print(f"removed {len(stray)} temporary file(s) a stopped run left in {run_dir}",
                      file=sys.stderr)
        RunFolder(run_dir).truncate_metrics(state.step if resume else -1)
    if not resume:
        _save(s, state)  # the starting point: there is always a good checkpoint to go back to
    if ctx.is_main:
        path = RunFolder(run_dir).config
        text = cfg.to_json() + "\n"
        saved_text = path.read_text() if path.exists() else None  # read once
        if resume and saved_text is not None:
            saved = json.loads(saved_text)
            before = saved["optim"]["iterations"]
            if before != cfg.optim.iterations:
                print(f"resuming {run_dir} at step {state.step} with a new length: "
                      f"{before} -> {cfg.optim.iterations} iterations; the learning-rate "
                      "schedule is recomputed over the new length", file=sys.stderr)
            s = replace(s, resume_changes=resume_changes(saved, cfg.to_dict()))
        if saved_text != text:  # new, or resumed with a new length
            atomic_write_text(path, text)
    return s, cfg, state


def _train(s: Setup, cfg: TrainConfig, state: TrainState, ctx: dist.Context,
           requested_precision: str | None) -> dict[str, Any]:
    steps_per_epoch = len(s.train)
    log = Logger(s.guard.folder, cfg, ctx.is_main, cfg.optim.iterations)
    if s.data.skipped_bad:
        log.message(f"skipped {s.data.skipped_bad} bad file(s) (--skip-bad)")
        log.record({"step": state.step, "epoch": state.epoch,
                    "skipped_bad_files": s.data.skipped_bad})
    log.message(f"training {cfg.model.name} on {cfg.data.data} ({cfg.recipe} recipe): "
                f"{len(s.data.classes)} classes, {steps_per_epoch} steps/epoch, "
                f"{cfg.optim.iterations} steps, {ctx.world_size} process(es), {s.device}, "
                + (precision_why(cfg.run.precision, s.device)
                   if requested_precision in (None, "auto") else _explicit(cfg, s.device))
                + (f"; data {s.data.layout}" if s.data.layout else "")
                + f"; {s.data.validation}"
                + ("; no test split (no test/ folder or test-*.tar shards): no test error "
                   "is measured" if s.test is None else ""))
    if s.resume_changes:  # after a divergence: said, and kept in the metrics
        log.message(f"resumed at step {state.step} with changed settings: " + ", ".join(
            f"{k} {a} -> {b}" for k, (a, b) in s.resume_changes.items()))
        log.record({"step": state.step, "epoch": state.epoch,
                    "changed_on_resume": s.resume_changes})
    state.started = time.time()
    log.begin(state.step)  # the ETA counts this sitting's steps from here
    state.segments.append({"from_step": state.step, "to_step": state.step, "seconds": 0.0,
                           "machine": describe_machine(str(s.device), cfg.run.precision)})
    row: dict[str, Any] = {}
    while state.step < cfg.optim.iterations and not _early_stop(s, state, log):
        train_one_epoch(s, state, log)
        if s.guard.stop_requested():
            _save(s, state)
            raise s.guard.stopped(state.step)
        if state.batch >= steps_per_epoch:  # the epoch is complete
            row = evaluate_epoch(s, state)
            log.record(row)
            log.message(" ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                                 for k, v in row.items()))
            state.epoch, state.batch = state.epoch + 1, 0
            _save(s, state)
    _save(s, state)
    seconds = state.seconds()
    extra = {}
    if cfg.run.precise_bn:
        extra = {"precise_bn": precise_bn_pass(s, log)}
        row = {}  # the weights changed: evaluate again
    return finish(s, state, seconds, log, row, extra)


def _early_stop(s: Setup, state: TrainState, log: Logger) -> bool:
    """--early-stop N: the validation error has not improved in N evaluations (said, and
    recorded in metrics.jsonl; the summary is of the weights at this step)."""
    n = s.cfg.optim.early_stop
    if n is None or state.schedule.evals_since_best < n:
        return False
    log.message(f"early stop at step {state.step}: the validation error has not improved in "
                f"{n} evaluations (best {100 * state.schedule.best_val_error:.2f}%, kept in "
                f"best.safetensors)")
    log.record({"step": state.step, "epoch": state.epoch, "early_stop": True})
    return True


def _explicit(cfg: TrainConfig, device: torch.device) -> str:
    """The precision asked for by name, with a warning where it is emulated (slow)."""
    if cfg.run.precision == "bf16" and device.type == "cpu" and not cpu_has_native_bf16():
        return ("bf16, EMULATED on this CPU (no avx512_bf16 or AMX): many times slower than "
                "fp32; stop and resume with --precision auto to follow the machine")
    return cfg.run.precision


def train_one_epoch(s: Setup, state: TrainState, log: Logger) -> None:
    """Optimizer steps from ``state.batch`` to the epoch's end (or the iteration budget)."""
    cfg, o = s.cfg, s.cfg.optim
    s.model.train()
    loss_sum = torch.zeros((), device=s.device)
    wrong_sum = torch.zeros((), device=s.device)
    seen, t_last = 0, time.time()
    batches = s.train.batches(state.epoch, state.batch)
    for x, y in batches:
        if state.step >= o.iterations:
            break
        x, y = x.to(s.device, non_blocking=True), y.to(s.device, non_blocking=True)
        x = s.prep_train(x, derived_generator(cfg.run.seed, state.epoch, state.batch, 2))
        if cfg.run.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        target = y
        if s.mix is not None:  # mixup/cutmix: soft targets (data/augment.py)
            x, target = s.mix(x, y, derived_generator(cfg.run.seed, state.epoch, state.batch, 3))
        lr = lr_at(state.step, o, state.schedule)
        for group in s.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        logits, loss = _step(s, x, target, state.step)
        if s.ema is not None:
            update_ema(s)
        wrong = (logits.argmax(1) != y).sum()
        loss_sum += loss.detach() * y.shape[0]
        wrong_sum += wrong
        seen += y.shape[0]
        state.step += 1
        state.batch += 1
        if o.warmup_lr is not None and o.warmup_steps is None and not state.schedule.warmed_up:
            # §4.2: ResNet-110 leaves its 0.01 warm-up once training error is below 80% (over
            # the last warmup_window batches).
            if after_train_error(state.schedule, o, s.ctx.mean(wrong.float()).item()
                                 / y.shape[0]):
                log.message(f"step {state.step}: training error below "
                            f"{o.warmup_until_error:.0%}; warm-up over, lr {o.lr}")
        if state.step % cfg.run.log_every == 0 or state.step == o.iterations:
            s.guard.check_finite(state.step)
            totals = s.ctx.sum(torch.stack([loss_sum, wrong_sum,
                                            torch.tensor(float(seen), device=s.device)]))
            loss_v, wrong_v, n = totals.tolist()
            now = time.time()
            row = {STEP: state.step, EPOCH: state.epoch, LR: lr,
                   TRAIN_LOSS: loss_v / n, TRAIN_ERROR: wrong_v / n,
                   IMAGES_PER_S: n / max(now - t_last, 1e-9)}
            log.record(row)
            log.progress(state.step, f"epoch {state.epoch} loss {row[TRAIN_LOSS]:.3f} "
                                     f"err {row['train_error']:.3f} lr {lr:.4g} "
                                     f"{row[IMAGES_PER_S]:.0f} img/s")
            loss_sum.zero_(), wrong_sum.zero_()
            seen, t_last = 0, now
        if state.step % cfg.run.checkpoint_every == 0:
            s.guard.check_finite(state.step)  # never checkpoint past a bad step
            _save(s, state)
        if s.guard.stop_requested(state.step):
            s.guard.check_finite(state.step)
            return


def _step(s: Setup, x: torch.Tensor, target: torch.Tensor, step: int
          ) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step on a batch, in ``accumulate`` micro-batches (their gradients summed
    with weights by size, so the step matches the whole batch's but for BN statistics)."""
    cfg, o = s.cfg, s.cfg.optim
    s.optimizer.zero_grad(set_to_none=True)
    parts = zip(x.chunk(o.accumulate), target.chunk(o.accumulate), strict=True)
    all_logits, total = [], torch.zeros((), device=x.device)
    for xs, ts in parts:
        with autocast(cfg.run.precision, s.device):
            logits = s.model(xs)
            loss = F.cross_entropy(logits.float(), ts, weight=s.loss_weight,
                                   label_smoothing=o.label_smoothing) * (len(xs) / len(x))
        (s.scaler.scale(loss) if s.scaler is not None else loss).backward()
        all_logits.append(logits.detach())
        total = total + loss.detach()
    if s.scaler is not None:  # fp16: overflowing steps are the scaler's to skip
        if o.clip_grad_norm is not None:
            s.scaler.unscale_(s.optimizer)
            torch.nn.utils.clip_grad_norm_(s.module.parameters(), o.clip_grad_norm)
        s.scaler.step(s.optimizer)
        s.scaler.update()
    else:
        s.guard.after_backward(s.module, total, step)
        if o.clip_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(s.module.parameters(), o.clip_grad_norm)
        s.optimizer.step()
    return torch.cat(all_logits), total


def _save(s: Setup, state: TrainState) -> None:
    if s.ctx.is_main:
        save_checkpoint(_checkpoint_payload(s, state), s.guard.folder.checkpoint)
    s.ctx.barrier()


def _checkpoint_payload(s: Setup, state: TrainState) -> dict[str, Any]:
    return {
        "model": s.module.state_dict(),
        "optimizer": s.optimizer.state_dict(),
        "step": state.step, "epoch": state.epoch, "batch": state.batch,
        "schedule": state.schedule.to_dict(),
        # the time the run has trained (None: unknown before a resume from an old checkpoint)
        "seconds": None if state.seconds_before is None else round(state.seconds(), 1),
        "resumed_at": state.resumed_at,
        "segments": state.segments_so_far(),
        # The only global generator training draws from; every augmentation takes an explicit
        # CPU generator, and nothing draws from the CUDA generators, so they are not kept (a
        # resume with fewer visible GPUs could not restore them all).
        "rng_cpu": torch.get_rng_state(),
        "config": s.cfg.to_json(),
        **({"ema": s.ema.state_dict()} if s.ema is not None else {}),
        **({"scaler": s.scaler.state_dict()} if s.scaler is not None else {}),
    }


def _restore(s: Setup, ckpt: dict[str, Any]) -> TrainState:
    s.module.load_state_dict(ckpt["model"])
    s.optimizer.load_state_dict(ckpt["optimizer"])
    if s.ema is not None and "ema" in ckpt:
        s.ema.load_state_dict(ckpt["ema"])
    if s.scaler is not None and "scaler" in ckpt:
        s.scaler.load_state_dict(ckpt["scaler"])
    torch.set_rng_state(ckpt["rng_cpu"])  # older checkpoints' "rng_cuda" is not used
    # A checkpoint written before the training time was kept has no "seconds": the time
    # before this resume is unknown, and the summary says from which step it counts.
    return TrainState(ckpt["step"], ckpt["epoch"], ckpt["batch"],
                      ScheduleState(**ckpt["schedule"]), seconds_before=ckpt.get("seconds"),
                      resumed_at=[*ckpt.get("resumed_at", []), ckpt["step"]],
                      segments=list(ckpt.get("segments", [])))
