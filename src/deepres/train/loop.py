"""The training loop: ``fit(config) -> summary``, readable top to bottom.

``fit`` locks the run directory and starts (or resumes) the run; ``prepare`` builds data (one
pipeline, ``data/pipeline.py``), model and optimizer; ``train_one_epoch`` runs optimizer steps
with logging and checkpoints as plain ``if step % n == 0`` checks; ``_evaluate_epoch`` measures
errors; ``_finish`` writes the weights and the summary. Helpers follow in the order they are
called.
"""

from __future__ import annotations

import copy
import json
import math
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..data import DatasetError
from ..data.loaders import Loader, derived_generator
from ..data.pipeline import Pipeline, build_pipeline
from ..data.testview import test_batches
from ..evaluate.metrics import evaluate
from ..models import create_model, save_weights
from ..models.weights import init_from
from ..runtime import distributed as dist
from ..runtime.files import atomic_write_text, is_out_of_space, out_of_space, stray_temporaries
from ..runtime.machine import describe_machine
from ..runtime.precision import autocast, configure_cuda
from ..runtime.precision import why as precision_why
from .checkpoint import CHECKPOINT, load_checkpoint, save_checkpoint
from .config import OptimConfig, TrainConfig, resolve_auto
from .divergence import DIVERGED, FiniteCheck, NonFiniteLossError, mark_diverged, optim_changes
from .guard import RunError, RunLock, RunStopped, StopOnSignal
from .precise_bn import recompute_bn_stats
from .schedule import ScheduleState, after_eval, after_train_error, lr_at


@dataclass
class TrainState:
    step: int = 0  # optimizer steps taken
    epoch: int = 0
    batch: int = 0  # next batch within the epoch
    schedule: ScheduleState = field(default_factory=ScheduleState)
    # Training wall time spent by the processes before this one (a resumed run's summary
    # counts the whole run); None when the checkpoint predates this field.
    seconds_before: float | None = 0.0
    resumed_at: list[int] = field(default_factory=list)  # the steps this run resumed from
    started: float = field(default_factory=time.time)  # when this process began training

    def seconds(self) -> float:
        """Training seconds so far, this process's and those before it (when known)."""
        return (self.seconds_before or 0.0) + time.time() - self.started


STOP_CHECK_EVERY = 10  # steps between the processes' agreement on a stop signal (torchrun)


@dataclass
class Setup:
    cfg: TrainConfig
    model: nn.Module
    module: nn.Module  # the unwrapped model (without DDP)
    optimizer: torch.optim.Optimizer
    data: Pipeline
    device: torch.device
    run_dir: Path
    ctx: dist.Context
    stop: StopOnSignal | None = None
    ema: nn.Module | None = None  # the moving average of the weights (--ema)
    # The per-step finite check; on a GPU it stays on the device (train/divergence.py).
    finite: FiniteCheck = field(default_factory=FiniteCheck)
    resume_changes: dict[str, Any] = field(default_factory=dict)  # settings a resume changed

    @property
    def train(self) -> Loader:
        return self.data.train

    @property
    def val(self) -> Loader | None:
        return self.data.val

    @property
    def test(self) -> Loader | None:
        return self.data.test

    def prep_train(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        return self.data.prep_train(x, g)

    def prep_eval(self, x: torch.Tensor) -> torch.Tensor:
        return self.data.prep_eval(x)

    def stop_requested(self, step: int | None = None) -> bool:
        """A SIGTERM/SIGINT arrived; with several processes, one that all of them agree on,
        asked every ``STOP_CHECK_EVERY`` steps (the agreement is a collective read back to the
        host; ``step`` None asks now)."""
        signum = self.stop.signum if self.stop is not None else None
        if not self.ctx.active:
            return signum is not None
        if step is not None and step % STOP_CHECK_EVERY:
            return False
        flag = torch.tensor([float(signum or 0)], device=self.device)
        got = self.ctx.sum(flag).item()  # the same answer on every process
        if got and self.stop is not None and self.stop.signum is None:
            self.stop.signum = int(signal.SIGTERM)
        return bool(got)


def fit(cfg: TrainConfig, *, resume: bool = False) -> dict[str, Any]:
    """Train as ``cfg`` says; with ``resume`` continue the run in ``cfg.run.run_dir``."""
    ctx = dist.init(cfg.run.device)
    try:
        summary = _fit(cfg, resume, ctx)
        ctx.barrier()  # let rank 0 finish writing before the process group goes away
        return summary
    finally:
        ctx.close()


def _fit(cfg: TrainConfig, resume: bool, ctx: dist.Context) -> dict[str, Any]:
    requested_precision = cfg.run.precision
    cfg = resolve_auto(cfg)
    torch.manual_seed(cfg.run.seed)
    run_dir = Path(cfg.run.run_dir)
    lock = RunLock(run_dir)
    created = False
    if ctx.is_main:
        if resume and not (run_dir / CHECKPOINT).is_file():
            raise RunError(f"{run_dir / CHECKPOINT}: no checkpoint to resume from; nothing was "
                           "changed. Start a new run with another --run-dir")
        created = not run_dir.exists()
        run_dir.mkdir(parents=True, exist_ok=True)
        lock.acquire()
    try:
        try:
            if ctx.is_main and not resume and (run_dir / CHECKPOINT).exists():
                raise FileExistsError(f"{run_dir} already holds a run; pass --resume {run_dir} "
                                      "to continue it, or choose another --run-dir")
            ctx.barrier()
            s, cfg, state = _start(cfg, resume, ctx)
        except BaseException:
            if created:  # a failed start leaves nothing behind
                lock.release()
                shutil.rmtree(run_dir, ignore_errors=True)
            raise
        try:
            return _train(s, cfg, state, ctx, requested_precision)
        except NonFiniteLossError as exc:
            raise mark_diverged(s.run_dir, s.cfg, exc, ctx.is_main) from None
    finally:
        lock.release()


def _start(cfg: TrainConfig, resume: bool, ctx: dist.Context
           ) -> tuple[Setup, TrainConfig, TrainState]:
    """Data, model and optimizer, the training length resolved, the checkpoint restored (or the
    first one written); up to here a failure changes nothing in the run directory."""
    run_dir = Path(cfg.run.run_dir)
    s = prepare(cfg, ctx)
    if len(s.train) == 0:
        raise DatasetError(f"the training split has fewer images than one batch "
                           f"({cfg.optim.batch_size}); lower --batch-size")
    if s.data.in_memory and cfg.data.crop is not None:  # small images take no ImageNet crop
        cfg = replace(cfg, data=replace(cfg.data, crop=None))
        s.cfg = cfg
    if cfg.optim.epochs is not None:  # resolve epochs into iterations; saved resolved
        cfg = replace(cfg, optim=replace(cfg.optim, iterations=cfg.optim.epochs * len(s.train),
                                         epochs=None))
        s.cfg = cfg
    state = TrainState()
    if resume:
        state = _restore(s, load_checkpoint(run_dir / CHECKPOINT))
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
        _truncate_metrics(run_dir / "metrics.jsonl", state.step if resume else -1)
    if not resume:
        _save(s, state)  # the starting point: there is always a good checkpoint to go back to
    if ctx.is_main:
        path = run_dir / "config.json"
        text = cfg.to_json() + "\n"
        if resume and path.exists():
            before = json.loads(path.read_text())["optim"]["iterations"]
            if before != cfg.optim.iterations:
                print(f"resuming {run_dir} at step {state.step} with a new length: "
                      f"{before} -> {cfg.optim.iterations} iterations; the learning-rate "
                      "schedule is recomputed over the new length", file=sys.stderr)
        if resume and path.exists():
            s.resume_changes = optim_changes(json.loads(path.read_text()), cfg)
        if not path.exists() or path.read_text() != text:  # new, or resumed with a new length
            atomic_write_text(path, text)
    return s, cfg, state


def _train(s: Setup, cfg: TrainConfig, state: TrainState, ctx: dist.Context,
           requested_precision: str | None) -> dict[str, Any]:
    steps_per_epoch = len(s.train)
    log = Logger(s, cfg.optim.iterations)
    if s.data.skipped_bad:
        log.message(f"skipped {s.data.skipped_bad} bad file(s) (--skip-bad)")
        log.record({"step": state.step, "epoch": state.epoch,
                    "skipped_bad_files": s.data.skipped_bad})
    log.message(f"training {cfg.model.name} on {cfg.data.data} ({cfg.recipe} recipe): "
                f"{len(s.data.classes)} classes, {steps_per_epoch} steps/epoch, "
                f"{cfg.optim.iterations} steps, {ctx.world_size} process(es), {s.device}, "
                + (precision_why(cfg.run.precision, s.device)
                   if requested_precision in (None, "auto") else cfg.run.precision)
                + (f"; data {s.data.layout}" if s.data.layout else "")
                + f"; {s.data.validation}")
    if s.resume_changes:  # after a divergence: said, and kept in the metrics
        log.message(f"resumed at step {state.step} with changed settings: " + ", ".join(
            f"{k} {a} -> {b}" for k, (a, b) in s.resume_changes.items()))
        log.record({"step": state.step, "epoch": state.epoch,
                    "changed_on_resume": s.resume_changes})
    if ctx.is_main:
        (s.run_dir / DIVERGED).unlink(missing_ok=True)
    state.started = time.time()
    row: dict[str, Any] = {}
    with StopOnSignal() as stop:
        s.stop = stop
        while state.step < cfg.optim.iterations:
            train_one_epoch(s, state, log)
            if s.stop_requested():
                _save(s, state)
                raise RunStopped(stop.signum or int(signal.SIGTERM), state.step, s.run_dir)
            if state.batch >= steps_per_epoch:  # the epoch is complete
                row = _evaluate_epoch(s, state)
                log.record(row)
                log.message(" ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                                     for k, v in row.items()))
                state.epoch, state.batch = state.epoch + 1, 0
                _save(s, state)
        _save(s, state)
        seconds = state.seconds()
        extra = {}
        if cfg.run.precise_bn:
            extra = {"precise_bn": _precise_bn(s, log)}
            row = {}  # the weights changed: evaluate again
        return _finish(s, state, seconds, log, row, extra)


def prepare(cfg: TrainConfig, ctx: dist.Context) -> Setup:
    """Data (one pipeline, data/pipeline.py), model, optimizer."""
    device = ctx.local_device(cfg.run.device)
    configure_cuda(device, cfg.run.tf32)
    o = cfg.optim
    p = build_pipeline(cfg.data, o.batch_size, device, cfg.run.seed, ctx.rank, ctx.world_size)
    module = create_model(cfg.model.name, num_classes=len(p.classes),
                          shortcut=cfg.model.shortcut, stride_in_1x1=cfg.model.stride_in_1x1,
                          zero_init_residual=cfg.model.zero_init_residual,
                          conv_init=cfg.model.conv_init).to(device)
    lines = []
    if cfg.model.init:  # the weights' source decides their input (models/weights.py Init)
        init = init_from(module, cfg.model.init)
        lines = [init.message, p.adopt(init.spec, init.spec_origin, cfg.data.input_spec)]
    elif cfg.data.input_spec == "imagenet":
        lines = [p.adopt(None, "", "imagenet")]
    if ctx.is_main:
        for line in lines:
            print(line, file=sys.stderr)
    if cfg.model.freeze_backbone:
        for name, param in module.named_parameters():
            param.requires_grad_(name.startswith("fc."))
    if cfg.run.sync_bn and ctx.active:
        module = dist.convert_global_bn(module)
    if cfg.run.channels_last:
        module = module.to(memory_format=torch.channels_last)
    model = ctx.wrap(module)
    if cfg.run.compile:
        model = torch.compile(model)
    s = Setup(cfg, model, module, _optimizer(module, o), p, device, Path(cfg.run.run_dir), ctx,
              finite=FiniteCheck(deferred=device.type == "cuda"))
    if cfg.run.ema is not None:
        s.ema = copy.deepcopy(module).eval()
        for param in s.ema.parameters():
            param.requires_grad_(False)
    return s


@torch.no_grad()
def _update_ema(s: Setup) -> None:
    """ema = decay * ema + (1 - decay) * weights; BN statistics are copied as they are."""
    decay = s.cfg.run.ema
    ema_p = list(s.ema.parameters())
    torch._foreach_lerp_(ema_p, [p.detach() for p in s.module.parameters()], 1.0 - decay)
    for e, b in zip(s.ema.buffers(), s.module.buffers(), strict=True):
        e.copy_(b)


def _optimizer(module: nn.Module, o: OptimConfig) -> torch.optim.Optimizer:
    """SGD; with a backbone factor (fine-tuning) the backbone's group runs at a fraction of
    the classifier's learning rate (``lr_scale``, applied by the loop at every step); with
    ``norm_weight_decay`` the BN layers' parameters form groups of their own."""
    # Without it the groups are as before, so checkpoints of earlier runs still resume.
    norms = {id(p) for m in module.modules()
             if isinstance(m, (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm))
             for p in m.parameters(recurse=False)} if o.norm_weight_decay is not None else set()
    groups = []
    for in_head in (True, False):
        for is_norm in (False, True):
            params = [p for n, p in module.named_parameters() if p.requires_grad
                      and n.startswith("fc.") == in_head and (id(p) in norms) == is_norm]
            if not params:
                continue
            group = {"params": params, "lr_scale": 1.0 if in_head else o.backbone_lr_factor}
            if is_norm and o.norm_weight_decay is not None:
                group["weight_decay"] = o.norm_weight_decay
            groups.append(group)
    return torch.optim.SGD(groups, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay,
                           nesterov=o.nesterov)


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
        lr = lr_at(state.step, o, state.schedule)
        for group in s.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        with autocast(cfg.run.precision, s.device):
            logits = s.model(x)
            loss = F.cross_entropy(logits.float(), y, label_smoothing=o.label_smoothing)
        s.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        s.finite.after_backward(s.module, loss, state.step)
        s.optimizer.step()
        if s.ema is not None:
            _update_ema(s)
        wrong = (logits.argmax(1) != y).sum()
        loss_sum += loss.detach() * y.shape[0]
        wrong_sum += wrong
        seen += y.shape[0]
        state.step += 1
        state.batch += 1
        if o.warmup_lr is not None and not state.schedule.warmed_up:
            # §4.2: ResNet-110 leaves its 0.01 warm-up once training error is below 80% (over
            # the last warmup_window batches).
            if after_train_error(state.schedule, o, s.ctx.mean(wrong.float()).item()
                                 / y.shape[0]):
                log.message(f"step {state.step}: training error below "
                            f"{o.warmup_until_error:.0%}; warm-up over, lr {o.lr}")
        if state.step % cfg.run.log_every == 0 or state.step == o.iterations:
            s.finite.raise_if_found(s.ctx, state.step)
            totals = s.ctx.sum(torch.stack([loss_sum, wrong_sum,
                                            torch.tensor(float(seen), device=s.device)]))
            loss_v, wrong_v, n = totals.tolist()
            now = time.time()
            row = {"step": state.step, "epoch": state.epoch, "lr": lr,
                   "train_loss": loss_v / n, "train_error": wrong_v / n,
                   "images_per_s": n / max(now - t_last, 1e-9)}
            log.record(row)
            log.progress(state.step, f"epoch {state.epoch} loss {row['train_loss']:.3f} "
                                     f"err {row['train_error']:.3f} lr {lr:.4g} "
                                     f"{row['images_per_s']:.0f} img/s")
            loss_sum.zero_(), wrong_sum.zero_()
            seen, t_last = 0, now
        if state.step % cfg.run.checkpoint_every == 0:
            s.finite.raise_if_found(s.ctx, state.step)  # never checkpoint past a bad step
            _save(s, state)
        if s.stop_requested(state.step):
            s.finite.raise_if_found(s.ctx, state.step)
            return


def _save(s: Setup, state: TrainState) -> None:
    if s.ctx.is_main:
        save_checkpoint(_checkpoint_payload(s, state), s.run_dir / CHECKPOINT)
    s.ctx.barrier()


def _evaluate_epoch(s: Setup, state: TrainState) -> dict[str, Any]:
    row: dict[str, Any] = {"step": state.step, "epoch": state.epoch}
    last = state.step >= s.cfg.optim.iterations
    if (state.epoch + 1) % s.cfg.run.eval_every and not last:
        return row
    if s.val is not None:
        m = evaluate(s.model, s.val, s.prep_eval, s.device, s.ctx,
                     s.cfg.run.precision)
        row["val_error"], row["val_top5_error"] = m["top1_error"], m["top5_error"]
        row["val_images"] = m["images"]
        if after_eval(state.schedule, s.cfg.optim, m["top1_error"]):
            row["lr_divided"] = True
        if m["top1_error"] < state.schedule.best_val_error:  # selected on validation only
            state.schedule.best_val_error = m["top1_error"]
            row["best"] = True
            if s.ctx.is_main:
                _write_weights(s, s.module, s.run_dir / "best.safetensors",
                               {"best_step": state.step, "best_val_error": m["top1_error"]})
    if s.test is not None:
        m = evaluate(s.model, s.test, s.prep_eval, s.device, s.ctx,
                     s.cfg.run.precision)
        row["test_error"], row["test_top5_error"] = m["top1_error"], m["top5_error"]
        row["test_images"] = m["images"]
    if s.ema is not None:
        for name, loader in (("val", s.val), ("test", s.test)):
            if loader is not None:
                row[f"ema_{name}_error"] = evaluate(s.ema, loader, s.prep_eval, s.device,
                                                    s.ctx, s.cfg.run.precision)["top1_error"]
    return row


def _precise_bn(s: Setup, log: Logger) -> dict[str, Any]:
    """Errors before, BN statistics recomputed, errors after (PAPER.md: precise BN)."""
    out: dict[str, Any] = {"batches": s.cfg.run.precise_bn}
    split = "val" if s.val is not None else "test"
    loader = s.val if s.val is not None else s.test
    if loader is not None:
        out[f"{split}_error_before"] = evaluate(s.model, loader, s.prep_eval, s.device, s.ctx,
                                                s.cfg.run.precision)["top1_error"]
    out["batches"] = recompute_bn_stats(s.module, _unaugmented_batches(s), s.cfg.run.precise_bn,
                                        s.cfg.run.precision, s.ctx)
    if loader is not None:
        out[f"{split}_error_after"] = evaluate(s.model, loader, s.prep_eval, s.device, s.ctx,
                                               s.cfg.run.precision)["top1_error"]
        log.message(f"precise BN over {out['batches']} batches: {split} error "
                    f"{100 * out[f'{split}_error_before']:.2f}% -> "
                    f"{100 * out[f'{split}_error_after']:.2f}%")
    return out


def _unaugmented_batches(s: Setup) -> Iterator[torch.Tensor]:
    """Training images as the model sees them at test time (no augmentation), shuffled each
    pass; each process gets its share of every global batch (data/testview.py)."""
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


def _finish(s: Setup, state: TrainState, seconds: float, log: Logger,
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
    if state.seconds_before is None:  # resumed from a checkpoint that did not keep the time
        summary["seconds_since_step"] = state.resumed_at[-1]
    fresh = last_row.get("step") == state.step
    for name, loader in (("val", s.val), ("test", s.test)):
        if loader is None:
            continue
        if fresh and f"{name}_error" in last_row:
            top1, top5, n = (last_row[f"{name}_error"], last_row[f"{name}_top5_error"],
                             last_row[f"{name}_images"])
        else:
            m = evaluate(s.model, loader, s.prep_eval, s.device, s.ctx,
                         s.cfg.run.precision)
            top1, top5, n = m["top1_error"], m["top5_error"], m["images"]
        summary[f"{name}_error"], summary[f"{name}_top5_error"] = top1, top5
        summary[f"{name}_images"] = n
    if s.ctx.is_main:
        _write_weights(s, s.module, s.run_dir / "weights.safetensors")
        if s.ema is not None:
            _write_weights(s, s.ema, s.run_dir / "ema.safetensors", {"ema_decay": s.cfg.run.ema})
        atomic_write_text(s.run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
        if log.tb is not None:
            log.tb.close()
    if not math.isnan(summary.get("test_error", math.nan)):
        log.message(f"done: test error {100 * summary['test_error']:.2f}% "
                    f"(accuracy {100 * (1 - summary['test_error']):.2f}%) in {seconds:.0f}s")
    return summary


def _write_weights(s: Setup, module: nn.Module, path: Path,
                   extra: dict[str, Any] | None = None) -> None:
    """A weights file with the input specification it needs (it travels with the weights)."""
    d = s.data
    save_weights(module, path, class_names=d.classes,
                 extra={**d.spec.to_metadata(), "recipe": s.cfg.recipe, **(extra or {})})


def _checkpoint_payload(s: Setup, state: TrainState) -> dict[str, Any]:
    return {
        "model": s.module.state_dict(),
        "optimizer": s.optimizer.state_dict(),
        "step": state.step, "epoch": state.epoch, "batch": state.batch,
        "schedule": state.schedule.to_dict(),
        # the time the run has trained (None: unknown before a resume from an old checkpoint)
        "seconds": None if state.seconds_before is None else round(state.seconds(), 1),
        "resumed_at": state.resumed_at,
        # The only global generator training draws from; every augmentation takes an explicit
        # CPU generator, and nothing draws from the CUDA generators, so they are not kept (a
        # resume with fewer visible GPUs could not restore them all).
        "rng_cpu": torch.get_rng_state(),
        "config": s.cfg.to_json(),
        **({"ema": s.ema.state_dict()} if s.ema is not None else {}),
    }


def _restore(s: Setup, ckpt: dict[str, Any]) -> TrainState:
    s.module.load_state_dict(ckpt["model"])
    s.optimizer.load_state_dict(ckpt["optimizer"])
    if s.ema is not None and "ema" in ckpt:
        s.ema.load_state_dict(ckpt["ema"])
    torch.set_rng_state(ckpt["rng_cpu"])  # older checkpoints' "rng_cuda" is not used
    # A checkpoint written before the training time was kept has no "seconds": the time
    # before this resume is unknown, and the summary says from which step it counts.
    return TrainState(ckpt["step"], ckpt["epoch"], ckpt["batch"],
                      ScheduleState(**ckpt["schedule"]), seconds_before=ckpt.get("seconds"),
                      resumed_at=[*ckpt.get("resumed_at", []), ckpt["step"]])


def _truncate_metrics(path: Path, last_step: int) -> None:
    """Drop metrics logged after the checkpoint being resumed from (they are redone)."""
    if not path.exists():
        return
    keep = [line for line in path.read_text().splitlines()
            if line.strip() and json.loads(line)["step"] <= last_step]
    atomic_write_text(path, "".join(line + "\n" for line in keep))


class Logger:
    """metrics.jsonl, TensorBoard and the console; only rank 0 writes anything."""

    def __init__(self, s: Setup, total_steps: int) -> None:
        self.active = s.ctx.is_main
        self.total, self.t0, self.tty = total_steps, time.time(), sys.stderr.isatty()
        self.path = s.run_dir / "metrics.jsonl"
        self.tb = None
        if self.active:
            try:
                from torch.utils.tensorboard import SummaryWriter
                self.tb = SummaryWriter(str(s.run_dir / "tensorboard"))
            except ImportError:  # tensorboard is optional at run time
                self.tb = None

    def record(self, row: dict[str, Any]) -> None:
        if not self.active:
            return
        try:
            with open(self.path, "a") as f:
                f.write(json.dumps(row) + "\n")
        except OSError as exc:  # lines already written stay; a full disk is said plainly
            if is_out_of_space(exc, self.path.parent):
                raise out_of_space(self.path, len(json.dumps(row)) + 1, exc) from exc
            raise
        if self.tb is not None:
            for k, v in row.items():
                if isinstance(v, float | int) and k not in ("step", "epoch"):
                    self.tb.add_scalar(k, v, row["step"])
            self.tb.flush()

    def progress(self, step: int, text: str) -> None:
        if not self.active:
            return
        done = step / max(1, self.total)
        elapsed = time.time() - self.t0
        eta = elapsed / max(done, 1e-9) * (1 - done) if done > 0 else float("nan")
        line = f"[{step}/{self.total} {100 * done:5.1f}% eta {eta:5.0f}s] {text}"
        if self.tty:
            print("\r" + line.ljust(110), end="", file=sys.stderr, flush=True)
        else:
            print(line, file=sys.stderr, flush=True)

    def message(self, text: str) -> None:
        if self.active:
            print(("\n" if self.tty else "") + text, file=sys.stderr, flush=True)
