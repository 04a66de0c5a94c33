"""What a run trains with: its state (step, epoch, schedule, time) and its setup (the data
pipeline, model, optimizer, device, processes), built by ``prepare``."""

from __future__ import annotations

import copy
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..data.augment import class_loss_weights, mixing
from ..data.batches import Loader
from ..data.pipeline import Pipeline, build_pipeline
from ..models import create_model
from ..models.transfer import init_from
from ..runtime import distributed as dist
from ..runtime.precision import configure_cuda
from .config import OptimConfig, TrainConfig
from .guard import RunGuard
from .schedule import ScheduleState


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
    # One entry per process that trained the run (a sitting): the steps it took, its training
    # seconds and its machine and precision; a long run that moves between machines says
    # which trained what (README, "Runs that move between machines").
    segments: list[dict] = field(default_factory=list)
    started: float = field(default_factory=time.time)  # when this process began training

    def seconds(self) -> float:
        """Training seconds so far, this process's and those before it (when known)."""
        return (self.seconds_before or 0.0) + time.time() - self.started

    def segments_so_far(self) -> list[dict]:
        """The run's sittings up to this step, this process's own closed at it."""
        done = [dict(seg) for seg in self.segments]
        if done:
            done[-1].update(to_step=self.step, seconds=round(time.time() - self.started, 1))
        return done


@dataclass(frozen=True)
class Setup:
    """Everything a run trains with, built once by :func:`prepare` (its config already
    settled against the data: see :func:`settle`); a resume's changes are added with
    ``dataclasses.replace``, never by patching. Signals, non-finite values and divergence are
    the run guard's (train/guard.py)."""

    cfg: TrainConfig
    model: nn.Module
    module: nn.Module  # the unwrapped model (without DDP)
    optimizer: torch.optim.Optimizer
    data: Pipeline
    device: torch.device
    run_dir: Path
    ctx: dist.Context
    guard: RunGuard
    ema: nn.Module | None = None  # the moving average of the weights (--ema)
    resume_changes: dict[str, Any] = field(default_factory=dict)  # settings a resume changed
    # Beyond the paper (data/augment.py): mixup/cutmix of the batch, the class weights of the
    # loss, fp16's gradient scaler; None when off.
    mix: Any = None
    loss_weight: torch.Tensor | None = None
    scaler: Any = None

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


def prepare(cfg: TrainConfig, ctx: dist.Context, guard: RunGuard | None = None) -> Setup:
    """Data (one pipeline, data/pipeline.py), model, optimizer; ``guard``: the run's guard
    (train/guard.py; a new one on ``cfg.run.run_dir`` if None)."""
    device = ctx.local_device(cfg.run.device)
    configure_cuda(device, cfg.run.tf32)
    if cfg.run.deterministic:
        make_deterministic()
    o = cfg.optim
    p = build_pipeline(cfg.data, o.batch_size, device, cfg.run.seed, ctx.rank, ctx.world_size,
                       channels=cfg.model.in_chans)
    module = create_model(cfg.model.args(len(p.classes))).to(device)
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
    ema = None
    if cfg.run.ema is not None:
        ema = copy.deepcopy(module).eval()
        for param in ema.parameters():
            param.requires_grad_(False)
    weight = (class_loss_weights(_train_labels(p), len(p.classes)).to(device)
              if o.class_weights else None)
    # fp16 (CUDA only, runtime/precision.py): the loss is scaled so that small gradients do
    # not flush to zero; a step with overflowing gradients is skipped and the scale lowered.
    scaler = torch.amp.GradScaler("cuda") if cfg.run.precision == "fp16" else None
    return Setup(settle(cfg, p), model, module, _optimizer(module, o), p, device,
                 Path(cfg.run.run_dir), ctx, guard or RunGuard(cfg.run.run_dir, ctx), ema=ema,
                 mix=mixing(len(p.classes), o.mixup, o.cutmix), loss_weight=weight,
                 scaler=scaler)


def settle(cfg: TrainConfig, p: Pipeline) -> TrainConfig:
    """The config as the data makes it: held (small) images take no ImageNet crop, and a
    length in epochs becomes iterations (saved so, resumed so)."""
    if p.in_memory and cfg.data.crop is not None:
        cfg = replace(cfg, data=replace(cfg.data, crop=None))
    if cfg.optim.epochs is not None:
        cfg = replace(cfg, optim=replace(cfg.optim, iterations=cfg.optim.epochs * len(p.train),
                                         epochs=None))
    return cfg


def _train_labels(p: Pipeline) -> torch.Tensor:
    return torch.as_tensor(p.train_source.labels).long()


def make_deterministic() -> None:
    """Deterministic algorithms only (an error names any operation that has none), cuDNN
    deterministic and not benchmarking; cuBLAS needs its workspace setting."""
    import os

    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


@torch.no_grad()
def update_ema(s: Setup) -> None:
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
    if o.optimizer == "adamw":
        return torch.optim.AdamW(_no_decay_groups(module, groups), lr=o.lr,
                                 weight_decay=o.weight_decay)
    return torch.optim.SGD(groups, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay,
                           nesterov=o.nesterov)


def _no_decay_groups(module: nn.Module, groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """AdamW's usual groups: no weight decay on biases and normalisation parameters (every
    parameter of one dimension); each group above split in two, keeping its lr_scale."""
    out = []
    for group in groups:
        for decay in (True, False):
            params = [p for p in group["params"] if (p.dim() > 1) == decay]
            if params:
                out.append({**group, "params": params,
                            **({} if decay else {"weight_decay": 0.0})})
    return out
