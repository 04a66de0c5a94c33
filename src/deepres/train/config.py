"""Typed, frozen training configuration and the recipes (presets) built from it."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field, replace
from typing import Any

from ..data.config import DataConfig
from ..models.description import ModelArgs
from ..runtime.options import (
    NONNEG_FLOAT,
    NONNEG_INT,
    POSITIVE_FLOAT,
    POSITIVE_INT,
    PRECISION_HELP,
    PRECISIONS,
    device,
    milestones,
    number,
    option,
)
from ..runtime.typecheck import checked_fields

_EMBEDDED: dict[str, Any] = {}  # ModelArgs's field types (filled on first use)


@dataclass(frozen=True, init=False)
class ModelConfig:
    """The model a run trains: its description, :class:`~deepres.models.description.ModelArgs`
    (every model option and its flag declared there once; the class count comes from the
    data), and how training starts it. ``cfg.model.shortcut`` and the like read the
    description; ``config.json`` keeps them flat in its ``model`` section, as it always has.
    Built as ``ModelConfig("resnet56", conv_init="fan_in", init=...)``; ``dataclasses.replace``
    takes a description field by name too."""

    model_args: ModelArgs = field(metadata={"embed": ModelArgs})
    # Start from these weights (a file, or torchvision:NAME): fine-tuning; see init_from.
    init: str | None = option(None, metavar="SOURCE", help="start from weights (fine-tuning): "
                              "a deepres .safetensors, a torchvision or timm .pth/.safetensors, "
                              "a reference-script checkpoint, or torchvision:NAME; a new "
                              "classifier head when the classes differ")
    freeze_backbone: bool = option(False, switch="on",
                                   help="with --init: train only the classifier")

    def __init__(self, name: str | None = None, *, model_args: ModelArgs | None = None,
                 init: str | None = None, freeze_backbone: bool = False,
                 **options: Any) -> None:
        if "num_classes" in options:
            raise TypeError("a run's class count is its data's; ModelConfig takes no "
                            "num_classes")
        base = model_args if model_args is not None else ModelArgs("resnet20")
        changes = {**options, **({"name": name} if name is not None else {})}
        object.__setattr__(self, "model_args", replace(base, **changes) if changes else base)
        object.__setattr__(self, "init", init)
        object.__setattr__(self, "freeze_backbone", freeze_backbone)

    def __getattr__(self, item: str) -> Any:
        if item == "model_args" or item.startswith("__"):  # not yet set (copy, unpickle)
            raise AttributeError(item)
        if item in field_types():
            return getattr(self.model_args, item)
        raise AttributeError(f"ModelConfig has no {item!r}")

    def args(self, num_classes: int) -> ModelArgs:
        """This run's model description, with the data's class count."""
        return replace(self.model_args, num_classes=num_classes)

    def flat(self) -> dict[str, Any]:
        """The ``model`` section of ``config.json``: the description's fields but the class
        count, and the training ones."""
        d = {k: v for k, v in dataclasses.asdict(self.model_args).items() if k != "num_classes"}
        return {**d, "init": self.init, "freeze_backbone": self.freeze_backbone}

    @staticmethod
    def field_types() -> dict[str, Any]:
        """The ``model`` section's keys and their types (for checking a config file)."""
        import typing

        return {**field_types(), **{k: v for k, v in typing.get_type_hints(ModelConfig).items()
                                    if k != "model_args"}}


def field_types() -> dict[str, Any]:
    """The description's fields a run sets (all but num_classes), with their types."""
    if not _EMBEDDED:
        import typing

        _EMBEDDED.update({k: v for k, v in typing.get_type_hints(ModelArgs).items()
                          if k != "num_classes"})
    return _EMBEDDED


SCHEDULES = ("step", "plateau", "cosine", "onecycle")
OPTIMIZERS = ("sgd", "adamw")


@dataclass(frozen=True)
class OptimConfig:
    batch_size: int = option(128, parse=POSITIVE_INT, help="images per step (all processes)")
    lr: float = option(0.1, parse=POSITIVE_FLOAT, help="peak learning rate")
    momentum: float = option(0.9, parse=number(float, 0.0, 1.0), help="SGD momentum (0.9)")
    weight_decay: float = option(1e-4, parse=NONNEG_FLOAT, help="L2 weight decay (1e-4)")
    # Weight decay of the normalisation layers' scale and shift (torchvision's reference script
    # calls it --norm-weight-decay); None: the same as weight_decay, as the paper (Caffe) did.
    norm_weight_decay: float | None = option(
        None, parse=NONNEG_FLOAT, help="weight decay of the BN layers' scale and shift "
        "(default: --weight-decay's, as the paper; 0 is common in fast recipes)")
    nesterov: bool = option(False, switch="both", help="Nesterov momentum")
    label_smoothing: float = option(0.0, parse=number(float, 0.0, 0.99),
                                    help="label smoothing of the cross-entropy (0)")
    iterations: int = option(64_000, parse=POSITIVE_INT, group="length",
                             help="training steps (replaces the recipe's epochs)")
    # if set, iterations = epochs x steps per epoch
    epochs: int | None = option(None, parse=POSITIVE_INT, group="length",
                                help="passes over the training set")
    # "step": divide by 10 at `milestones` (fractions of the iterations); "plateau": divide
    # by 10 when the validation error stops improving for `patience` evaluations; "onecycle":
    # linear up for `warmup_fraction` of training, then linear down to zero; "cosine": cosine
    # decay to zero.
    schedule: str = option("step", choices=SCHEDULES, help="learning-rate schedule")
    milestones: tuple[float, ...] = option((0.5, 0.75), parse=milestones, help="step schedule: "
                                           "where lr is divided, as fractions of the iterations "
                                           "(0.5,0.75: the paper's 32k and 48k of 64k)")
    gamma: float = option(0.1, parse=number(float, 1e-6, 1.0), help="the step factor (0.1)")
    patience: int = option(3, parse=POSITIVE_INT, help="plateau schedule: evaluations without "
                           "improvement before a step (3)")
    warmup_fraction: float = option(0.0, parse=number(float, 0.0, 0.99),
                                    help="onecycle: the fraction of training spent rising")
    # The ResNet-110 warm-up (§4.2): lr `warmup_lr` until the training error, averaged over
    # the last `warmup_window` batches, is below `warmup_until_error`.
    warmup_lr: float | None = option(None, parse=POSITIVE_FLOAT, help="ResNet-110's warm-up "
                                     "(§4.2): this lr until training error drops below "
                                     "--warmup-until-error")
    warmup_until_error: float = option(0.8, parse=number(float, 0.0, 1.0),
                                       help="the training error that ends the warm-up (0.8)")
    warmup_window: int = option(100, parse=POSITIVE_INT, help="the warm-up ends on the "
                                "training error over this many batches (100)")
    # The pre-activation paper's warm-up (He et al. 2016, §4.1 there): --warmup-lr for exactly
    # this many steps, whatever the training error.
    warmup_steps: int | None = option(None, parse=POSITIVE_INT, help="with --warmup-lr: warm "
                                      "up for exactly this many steps instead of until the "
                                      "training error drops (the pre-activation paper's 400)")
    # Beyond the paper: AdamW (no weight decay on norms and biases), a class-weighted loss,
    # mixup and cutmix (batched, seeded per batch), gradient accumulation in micro-batches.
    optimizer: str = option("sgd", choices=OPTIMIZERS, help="sgd (the paper's) or adamw "
                            "(decoupled weight decay; none on norms and biases)")
    class_weights: bool = option(False, switch="on", help="weight the loss of each class by "
                                 "the inverse of its share of the training images")
    mixup: float = option(0.0, parse=NONNEG_FLOAT, help="mixup's alpha (0: off; 0.2 is usual)")
    cutmix: float = option(0.0, parse=NONNEG_FLOAT, help="cutmix's alpha (0: off; 1.0 is "
                           "usual); with --mixup, one of the two per batch")
    accumulate: int = option(1, parse=POSITIVE_INT, help="split each batch into this many "
                             "micro-batches, one optimizer step per batch (less memory)")
    # Fine-tuning: the backbone's learning rate is this fraction of the classifier's.
    backbone_lr_factor: float = option(1.0, parse=POSITIVE_FLOAT, help="the backbone's "
                                       "learning rate as a fraction of the classifier's "
                                       "(finetune recipe: 0.1)")
    # Common training controls beyond the paper (which used neither).
    clip_grad_norm: float | None = option(None, parse=POSITIVE_FLOAT, metavar="X", help="clip "
                                          "the gradients' global norm to X before each step")
    early_stop: int | None = option(None, parse=POSITIVE_INT, metavar="N", help="stop when "
                                    "the validation error has not improved in N evaluations "
                                    "(needs a validation split); the best weights are kept "
                                    "(best.safetensors)")


@dataclass(frozen=True)
class RunConfig:
    run_dir: str = "runs/latest"  # --run-dir / --resume (cli.py: run folders, train/runs.py)
    seed: int = option(0, parse=NONNEG_INT, help="seed of initialisation, order, augmentation")
    device: str = option("cpu", parse=device, help="cpu, cuda or cuda:N (default cpu)")
    log_every: int = option(20, parse=POSITIVE_INT, help="steps between log lines")
    eval_every: int = option(1, parse=POSITIVE_INT, help="epochs between evaluations (1)")
    checkpoint_every: int = option(200, parse=POSITIVE_INT, help="steps between checkpoints "
                                   "(also at each epoch's end)")
    # None: automatic. channels_last on (measured faster for training on CPU, BENCHMARKS.md;
    # the usual choice on GPUs too); torch.compile off (its start-up cost outweighs short runs).
    channels_last: bool | None = option(None, switch="both",
                                        help="channels_last memory layout (default: on)")
    # "auto": bf16 where it is native (runtime/precision.py); resolved to "fp32" or "bf16" in
    # the saved config.
    precision: str = option("auto", choices=PRECISIONS, help=PRECISION_HELP)
    compile: bool = option(False, switch="both", help="torch.compile (default: off, on in "
                           "fast90)")
    # On a GPU: allow TF32 for fp32 matmuls and convolutions (faster, ~10 mantissa bits);
    # off by default so that "fp32" means fp32.
    tf32: bool = option(False, switch="both", help="GPU only: TF32 for fp32 matmuls and "
                        "convolutions (off: fp32 means fp32)")
    sync_bn: bool = option(False, switch="on", help="under torchrun: BN statistics over the "
                           "global batch (any backend)")
    # After training, recompute BN statistics over this many batches of un-augmented training
    # images ("precise BN", as the authors' released models); 0: keep the running averages.
    precise_bn: int = option(0, parse=NONNEG_INT, metavar="N", help="after training, recompute "
                             "batch-norm statistics over N batches of un-augmented training "
                             "images (the authors' precise BN); 0: off")
    # Deterministic algorithms only (torch.use_deterministic_algorithms; cuDNN deterministic),
    # so a run repeats bit for bit on a GPU too, at some cost in speed.
    deterministic: bool = option(False, switch="on", help="deterministic algorithms only "
                                 "(GPU runs repeat bit for bit; slower)")
    # Keep an exponential moving average of the weights with this decay per step (e.g. 0.999),
    # evaluate it beside the weights and write it as ema.safetensors; None: off.
    ema: float | None = option(None, parse=number(float, 0.0, 0.999999), metavar="DECAY",
                               help="keep an exponential moving average of the weights (e.g. "
                               "0.999 per step), evaluate it too and write ema.safetensors")
    # Experiment tracking beside metrics.jsonl and TensorBoard (train/tracking.py).
    tracker: str | None = option(None, choices=("mlflow",), help="also log to this tracker: "
                                 "mlflow (params, per-step metrics, weights and curves)")
    tracking_uri: str | None = option(None, metavar="URI", help="with --tracker mlflow: where "
                                      "(a folder, file:PATH, sqlite:///FILE or "
                                      "http://host:port; default $MLFLOW_TRACKING_URI, else "
                                      "./mlruns)")
    experiment: str | None = option(None, metavar="NAME", help="with --tracker mlflow: the "
                                    "MLflow experiment, created if missing (default "
                                    "$MLFLOW_EXPERIMENT_NAME, else MLflow's Default)")


@dataclass(frozen=True)
class TrainConfig:
    recipe: str = "fast"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "model": self.model.flat()}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "config") -> TrainConfig:
        """A config from its JSON form, checked against the fields' declared types: unknown
        keys and wrongly typed values are a ValueError naming ``where`` and the key; a
        section or field the file leaves out takes its default."""
        if not isinstance(d, dict):
            raise ValueError(f"{where}: must be a JSON object of sections "
                             f"({', '.join(SECTIONS)}), not {type(d).__name__}")
        unknown = sorted(set(d) - {"recipe", *SECTIONS})
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; known: "
                             f"recipe, {', '.join(SECTIONS)}")
        recipe_name = d.get("recipe", "fast")
        if not isinstance(recipe_name, str):
            raise ValueError(f"{where}: 'recipe' must be a string, not {recipe_name!r}")
        parts = {}
        for name, kind in SECTIONS.items():
            section = d.get(name) or {}
            if not isinstance(section, dict):
                raise ValueError(f"{where}: {name} must be a JSON object of fields, not "
                                 f"{json.dumps(section)[:40]}")
            values = dict(section)
            if name == "run" and "amp" in values:  # written before --precision: amp true/false
                amp = values.pop("amp")
                values.setdefault("precision", {True: "bf16", False: "fp32"}.get(amp, "auto"))
            if name == "optim" and isinstance(values.get("milestones"), list):
                values["milestones"] = tuple(values["milestones"])
            parts[name] = kind(**checked_fields(kind, values, f"{where}: {name}"))
        return cls(recipe=recipe_name, **parts)


SECTIONS: dict[str, type] = {"model": ModelConfig, "data": DataConfig, "optim": OptimConfig,
                             "run": RunConfig}


def _cifar_paper(model: str) -> TrainConfig:
    """§4.2: batch 128, lr 0.1, /10 at 32k and 48k (half and three quarters), stop at 64k, all
    50k training images; ResNet-110 and deeper warm up at 0.01 until training error is below
    80% (about 400 iterations)."""
    from ..models.names import resolve  # the family table, not the digits of the name

    try:
        spec = resolve(model)
        deep_cifar = spec.family == "cifar" and spec.depth >= 110
    except ValueError:  # an unknown name is refused, with the list, when the model is built
        deep_cifar = False
    return TrainConfig(
        recipe="cifar-paper",
        model=ModelConfig(name=model, conv_init="fan_in"),
        # The reported models see all 50k training images (§4.2; PAPER.md); --holdout 5000
        # reproduces the 45k/5k split on which the schedule was chosen.
        data=DataConfig(holdout=0.0, crop=None),
        optim=OptimConfig(batch_size=128, lr=0.1, momentum=0.9, weight_decay=1e-4,
                          iterations=64_000, schedule="step", milestones=(0.5, 0.75),
                          warmup_lr=0.01 if deep_cifar else None),
    )


def _imagenet_paper(model: str) -> TrainConfig:
    """§3.4: batch 256, lr 0.1 divided by 10 when the error plateaus, up to 60e4 iterations,
    weight decay 1e-4, momentum 0.9, no dropout."""
    return TrainConfig(
        recipe="imagenet-paper",
        model=ModelConfig(name=model, conv_init="fan_in"),
        # The plateau needs an error to watch: 10,000 training images held out (capped at a
        # tenth of a smaller set), or the dataset's val/ folder with --val-split.
        data=DataConfig(holdout=10_000, pixel_mean=True),
        optim=OptimConfig(batch_size=256, lr=0.1, momentum=0.9, weight_decay=1e-4,
                          iterations=600_000, schedule="plateau", patience=3),
    )


def _fast(model: str) -> TrainConfig:
    """Not the paper's: a short one-cycle schedule with Nesterov momentum, label smoothing and
    heavier weight decay, for good accuracy on little compute."""
    return TrainConfig(
        recipe="fast",
        model=ModelConfig(name=model),
        optim=OptimConfig(batch_size=128, lr=0.2, momentum=0.9, weight_decay=5e-4, nesterov=True,
                          label_smoothing=0.1, epochs=20, schedule="onecycle",
                          warmup_fraction=0.2, milestones=()),
    )


def _fast90(model: str) -> TrainConfig:
    """Not the paper's: the ``fast`` recipe sized for ResNet-20 on CIFAR-10 in under 30 minutes
    on 2 CPU cores, aiming at 90% test accuracy (benchmarks/time_to_accuracy.py; it reaches
    87.98% in 27.7 minutes on an AMX machine, BENCHMARKS.md): batch 256, peak lr
    0.2 (the common 0.1 at batch 128, scaled), 44 epochs, bf16 where native, torch.compile, and
    evaluation every 5 epochs to save time. (A first version, peak lr 0.4 for 40 epochs, reached
    87.83% in 24.1 minutes: BENCHMARKS.md.)"""
    return TrainConfig(
        recipe="fast90",
        model=ModelConfig(name=model),
        optim=OptimConfig(batch_size=256, lr=0.2, momentum=0.9, weight_decay=5e-4,
                          nesterov=True, label_smoothing=0.1, epochs=44, schedule="onecycle",
                          warmup_fraction=0.2, milestones=()),
        run=RunConfig(compile=True, eval_every=5),
    )


def _finetune(model: str) -> TrainConfig:
    """Not the paper's: fine-tuning from --init weights: a short one-cycle schedule at a lower
    peak learning rate (0.02), Nesterov, label smoothing 0.1, the backbone at a tenth of the
    classifier's rate, 10 epochs. The paper fine-tunes its ImageNet nets for detection (§4.3)."""
    return TrainConfig(
        recipe="finetune",
        model=ModelConfig(name=model),
        optim=OptimConfig(batch_size=64, lr=0.02, momentum=0.9, weight_decay=1e-4,
                          nesterov=True, label_smoothing=0.1, epochs=10, schedule="onecycle",
                          warmup_fraction=0.1, milestones=(), backbone_lr_factor=0.1),
    )


def _finetune_modern(model: str) -> TrainConfig:
    """Not the paper's: ``finetune`` with today's usual regularisers: AdamW (peak 1e-3, weight
    decay 0.05, none on norms and biases), TrivialAugmentWide, random erasing 0.25, and mixup
    0.2 or cutmix 1.0 on each batch. benchmarks/transfer.py measures it against finetune."""
    cfg = _finetune(model)
    return replace(cfg, recipe="finetune-modern",
                   data=replace(cfg.data, auto_augment="trivialaugment", random_erasing=0.25),
                   optim=replace(cfg.optim, optimizer="adamw", lr=1e-3, weight_decay=0.05,
                                 mixup=0.2, cutmix=1.0))


RECIPES = {"cifar-paper": _cifar_paper, "imagenet-paper": _imagenet_paper, "fast": _fast,
           "fast90": _fast90, "finetune": _finetune, "finetune-modern": _finetune_modern}


def resolve_auto(cfg: TrainConfig) -> TrainConfig:
    """Settle the settings left as None (automatic) for the run's device."""
    from ..runtime.precision import resolve_precision  # torch: only when a run starts

    return replace(cfg, run=replace(
        cfg.run,
        channels_last=True if cfg.run.channels_last is None else cfg.run.channels_last,
        precision=resolve_precision(cfg.run.precision, cfg.run.device),
    ))


def recipe(name: str, model: str) -> TrainConfig:
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; choose one of {', '.join(RECIPES)}")
    return RECIPES[name](model)


def with_overrides(cfg: TrainConfig, **sections: dict[str, Any]) -> TrainConfig:
    """Replace fields section by section, e.g. ``with_overrides(cfg, optim={"lr": 0.05})``."""
    out = cfg
    for section, values in sections.items():
        values = {k: v for k, v in values.items() if v is not None}
        if values:
            out = replace(out, **{section: replace(getattr(out, section), **values)})
    return out
