"""The paper's experiments as data: which networks to train, for how long, on what."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from ..models.choices import SHORTCUTS
from ..train.config import TrainConfig, recipe, with_overrides

SHARED_CIFAR = Path(__file__).resolve().parents[3] / ".." / "shared" / "datasets" / \
    "cifar10-jpg.tar.gz"


@dataclass(frozen=True)
class Scale:
    """How much of an experiment to run."""

    name: str
    depths: tuple[int, ...]  # CIFAR depths (6n+2)
    iterations: int
    batch_size: int
    holdout: float
    imagenet_runs: tuple[tuple[str, str | None, bool], ...] = ()  # (model, shortcut, stride 1x1)
    imagenet_iterations: int = 2
    imagenet_batch: int = 4
    precise_bn: int = 2  # batches for the precise BN statistics of the ImageNet runs
    seeds_for: dict[str, int] | None = None  # CIFAR models trained over more seeds (Table 6)
    compile: bool = False  # torch.compile the CIFAR runs (worth it only for long runs)
    # The CIFAR runs' convolution initialisation; None: the recipe's (fan_in, the paper's).
    # A scale whose runs are committed keeps the one they were made with, so that a seed added
    # later differs from them in nothing but the seed.
    conv_init: str | None = None
    # `preact`: the depths at which original and pre-activation nets are compared (the
    # follow-up paper's 110 and 164; smaller at the short scales).
    preact_depths: tuple[int, ...] = (110, 164)
    # The order in which the CIFAR depths train (None: as listed); each seed's runs in turn.
    priority: tuple[int, ...] | None = None
    # The ImageNet runs' training crop (§3.4's 224); the tests' sizes keep its proportions
    # (256/224 resize, 224/256/384 scales). The smoke scale checks the same code at 64.
    imagenet_crop: int = 224


# What each ImageNet table trained (§4.1): Table 2 compares plain and residual 18/34 with option
# A (zero-padding, parameter-free); Table 3 adds ResNet-34 with B and C, and the bottleneck nets;
# Table 4 (multi-scale) uses B for 50/101/152. The paper's bottlenecks put the stride in the 1x1.
IMAGENET_FULL = (("plain18", None, False), ("plain34", None, False), ("resnet18", "A", False),
                 ("resnet34", "A", False), ("resnet34", "B", False), ("resnet34", "C", False),
                 ("resnet50", "B", True), ("resnet101", "B", True), ("resnet152", "B", True))
IMAGENET_SMOKE = (("plain18", None, False), ("resnet18", "A", False), ("resnet18", "C", False),
                  ("resnet50", "B", True))

SCALES = {
    # Seconds: tiny networks, a few steps on the bundled sample. What the tests run.
    "smoke": Scale("smoke", (8, 14), 6, 32, 0.1, imagenet_runs=IMAGENET_SMOKE,
                   imagenet_iterations=2, imagenet_batch=4, precise_bn=2, preact_depths=(8,),
                   imagenet_crop=64),
    # About an hour on 2 CPU cores: two depths, 2,000 iterations (3% of the paper's 64k). It
    # shows plain-net degradation (measured, one seed: plain-56 69% vs plain-20 32% training
    # error) but not deeper ResNets doing better: the /10 step at iteration 1,000 comes
    # before ResNet-56 has caught up (41.7% vs 26.1% test error). See `medium`.
    "quick": Scale("quick", (20, 56), 2000, 128, 0.1, imagenet_runs=IMAGENET_FULL[:6],
                   imagenet_iterations=2000, imagenet_batch=64, precise_bn=50,
                   preact_depths=(20,)),
    # About 4.5 hours on 2 CPU cores (bf16, torch.compile) for 2 seeds: the paper's schedule
    # shape (lr 0.1, /10 at 50% and 75%) over 12,000 iterations (~31 epochs, 19% of the
    # paper's 64k), all 50k training images, two depths; run with --seeds 3 (three seeds of
    # every net, so that the plain nets' degradation is judged by the same rule as the
    # residual finding: their seeds 1 and 2 were added later, each the seed-0 config.json but
    # for its seed, `deepres train --config`). Long enough that the first /10
    # step comes after ResNet-56 has caught up with ResNet-20 (at 10 epochs it had not,
    # measured on this project's machines). Measured on an AMX Xeon: ResNet-20 20-24 min,
    # ResNet-56 58-80 min, plain-20 21 min, plain-56 59 min a run; on an AMD Zen 4 with
    # avx512_bf16, sharing the CPU, ResNet-20 51 min. Results: reports/cifar-depth.md. Runs made
    # with fan_out initialisation, before fan_in became the paper recipes' default: medium keeps
    # fan_out so that every seed is trained alike.
    "medium": Scale("medium", (20, 56), 12_000, 128, 0.0, imagenet_runs=IMAGENET_FULL[:6],
                    imagenet_iterations=2000, imagenet_batch=64, precise_bn=50, compile=True,
                    conv_init="fan_out", preact_depths=(56,)),
    # The paper's schedule (§4.2): 64k iterations, all depths of Table 6 (ResNet-1202
    # included), ResNet-110 over 5 seeds (Table 6 reports its mean and std). Hours per net on
    # a CPU, spread over sittings: trained in the order of `priority` (ResNet-20 and -56
    # first), each run's precision resolved afresh at every resume (bf16 where native, fp32
    # elsewhere: README, "Runs that move between machines"), compiled (1.04x for ResNet-20,
    # 1.07x for ResNet-56 on a Zen 4: benchmarks/full_schedule_settings.py).
    "full": Scale("full", (20, 32, 44, 56, 110, 1202), 64_000, 128, 0.0,
                  imagenet_runs=IMAGENET_FULL, imagenet_iterations=600_000,
                  imagenet_batch=256, precise_bn=200, seeds_for={"resnet110": 5},
                  compile=True, priority=(20, 56, 32, 44, 110, 1202)),
}
SHORTCUT_DEPTH = {"smoke": 8, "quick": 20, "medium": 20, "full": 32}


@dataclass(frozen=True)
class Run:
    """One training run of an experiment; ``key`` names its folder under ``OUT/runs``."""

    key: str
    label: str
    config: TrainConfig


def default_data(experiment: str, scale: str) -> str:
    if experiment == "imagenet":
        return "generated" if scale == "smoke" else ""
    if scale == "smoke":
        return "sample"
    return str(SHARED_CIFAR.resolve()) if SHARED_CIFAR.exists() else "cifar10"


def _cifar_run(model: str, shortcut: str | None, seed: int, scale: Scale, data: str,
               device: str, out: Path) -> Run:
    cfg = recipe("cifar-paper", model)  # §4.2, with the iterations of this scale
    key = f"{model}{'-' + shortcut if shortcut else ''}-s{seed}"
    cfg = with_overrides(
        cfg,
        model={"shortcut": shortcut, "conv_init": scale.conv_init},
        data={"data": data, "holdout": scale.holdout},
        optim={"iterations": scale.iterations, "batch_size": scale.batch_size},
        run={"run_dir": str(out / "runs" / key), "seed": seed, "device": device,
             "log_every": max(1, min(100, scale.iterations // 20)),
             "checkpoint_every": max(1, min(500, scale.iterations // 4)),
             "compile": scale.compile},
    )
    return Run(key, model + (f" ({shortcut})" if shortcut else ""), cfg)


def plan_depth(experiment: str, scale: Scale, seeds: int, data: str, device: str,
                out: Path) -> list[Run]:
    """Figure 6 / Table 6 (and Figure 7's nets): plain and residual nets of each depth."""
    extra_seeds = scale.seeds_for or {}
    depths = scale.depths
    if experiment == "layer-responses" and scale.name == "full":
        depths = (20, 56, 110)
    order = {d: i for i, d in enumerate(scale.priority or depths)}
    keyed = []
    for seed in range(max([seeds, *extra_seeds.values()])):
        for kind in ("plain", "resnet"):
            for d in depths:
                if kind == "plain" and d > 110:
                    continue  # Table 6 has no plain-1202; plain-110 is already past 60%
                model = f"{kind}{d}"
                n = max(seeds, extra_seeds.get(model, 0))
                if seed < n:
                    run = _cifar_run(model, None, seed, scale, data, device, out)
                    # Every seed of the residual nets first, then the plain nets: the residual
                    # finding needs the most compute, and a long sweep stopped half-way still
                    # answers it. With a priority, seed by seed in its order of depths.
                    keyed.append(((kind == "plain",) + ((seed, order[d]) if scale.priority
                                                        else ()), run))
    keyed.sort(key=lambda kr: kr[0])  # stable: without a priority, the listed order
    return [run for _, run in keyed]


def plan_shortcuts(experiment: str, scale: Scale, seeds: int, data: str, device: str,
                    out: Path) -> list[Run]:
    """Table 3's question on CIFAR: one depth with options A, B and C."""
    d = SHORTCUT_DEPTH[scale.name]
    return [_cifar_run(f"resnet{d}", option, seed, scale, data, device, out)
            for seed in range(seeds) for option in SHORTCUTS]


def plan_imagenet(experiment: str, scale: Scale, seeds: int, data: str, device: str,
                   out: Path) -> list[Run]:
    """Tables 2 to 4: the scale's ImageNet nets, each as the paper trained it."""
    return [_imagenet_run(m, sc, s1, seed, scale, data, device, out)
            for seed in range(seeds) for m, sc, s1 in scale.imagenet_runs]


def plan_preact(experiment: str, scale: Scale, seeds: int, data: str, device: str,
                 out: Path) -> list[Run]:
    """The follow-up paper's CIFAR comparison (He et al. 2016, "Identity Mappings"): the
    original and the pre-activation net of each depth (from 164 bottleneck nets), the
    cifar-paper recipe (§4.2), the same seeds. As that paper: both arms with projection
    shortcuts where dimensions grow (B; the original ResNet-164 then has its 1.7M parameters),
    so the arms differ in the unit only, and every run warms up at 0.01 for its first 400
    iterations."""
    runs = []
    for seed in range(seeds):
        for d in scale.preact_depths:
            for kind in ("cifar_resnet", "cifar_preact_resnet"):
                run = _cifar_run(f"{kind}{d}", "B", seed, scale, data, device, out)
                warm = min(400, max(1, scale.iterations // 10))  # shorter scales: a tenth
                runs.append(replace(run, config=with_overrides(
                    run.config, optim={"warmup_lr": 0.01, "warmup_steps": warm})))
    return runs


def plan_nothing(*_: object) -> list[Run]:
    return []  # Table 1: sizes and multiply-adds, no training


def scale(name: str) -> Scale:
    if name not in SCALES:
        raise ValueError(f"unknown scale {name!r}; choose from {', '.join(SCALES)}")
    return SCALES[name]


def _imagenet_run(model: str, shortcut: str | None, stride_in_1x1: bool, seed: int,
                  scale: Scale, data: str, device: str, out: Path) -> Run:
    key = f"{model}{'-' + shortcut if shortcut else ''}-s{seed}"
    cfg = recipe("imagenet-paper", model)
    cfg = with_overrides(
        cfg, model={"shortcut": shortcut, "stride_in_1x1": stride_in_1x1 or None},
        data={"data": data, "crop": scale.imagenet_crop},
        optim={"iterations": scale.imagenet_iterations, "batch_size": scale.imagenet_batch},
        run={"run_dir": str(out / "runs" / key), "seed": seed, "device": device,
             "log_every": 1 if scale.name == "smoke" else 100, "precise_bn": scale.precise_bn,
             "checkpoint_every": max(1, scale.imagenet_iterations // 4)})
    label = model + (f"-{shortcut}" if shortcut else "")
    return Run(key, label, cfg)
