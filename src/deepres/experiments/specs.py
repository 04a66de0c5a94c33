"""The paper's experiments as data: which networks to train, for how long, on what."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..train.config import TrainConfig, recipe, with_overrides

EXPERIMENTS = ("table1", "cifar-depth", "shortcuts", "layer-responses", "imagenet")
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
    imagenet_depths: tuple[int, ...] = (18, 34)
    imagenet_iterations: int = 2
    imagenet_batch: int = 4


SCALES = {
    # Seconds: tiny networks, a few steps on the bundled sample. What the tests run.
    "smoke": Scale("smoke", (8, 14), 6, 32, 0.1, imagenet_depths=(18,), imagenet_iterations=2,
                   imagenet_batch=4),
    # About an hour on 2 CPU cores: two depths, 2,000 iterations (3% of the paper's 64k).
    "quick": Scale("quick", (20, 56), 2000, 128, 0.1, imagenet_iterations=2000,
                   imagenet_batch=64),
    # The paper's schedule (§4.2): 64k iterations; for a GPU.
    "full": Scale("full", (20, 32, 44, 56, 110), 64_000, 128, 0.1,
                  imagenet_iterations=600_000, imagenet_batch=256),
}
SHORTCUT_DEPTH = {"smoke": 8, "quick": 20, "full": 32}


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
        model={"shortcut": shortcut},
        data={"data": data, "holdout": scale.holdout},
        optim={"iterations": scale.iterations, "batch_size": scale.batch_size},
        run={"run_dir": str(out / "runs" / key), "seed": seed, "device": device,
             "log_every": max(1, min(100, scale.iterations // 20)),
             "checkpoint_every": max(1, min(500, scale.iterations // 4))},
    )
    return Run(key, model + (f" ({shortcut})" if shortcut else ""), cfg)


def plan(experiment: str, scale_name: str, seeds: int, data: str, device: str, out: Path
         ) -> list[Run]:
    """The runs an experiment needs at a scale."""
    scale = SCALES[scale_name]
    runs: list[Run] = []
    for seed in range(seeds):
        if experiment in ("cifar-depth", "layer-responses"):
            depths = scale.depths
            if experiment == "layer-responses" and scale_name == "full":
                depths = (20, 56, 110)
            for kind in ("plain", "resnet"):
                for d in depths:
                    runs.append(_cifar_run(f"{kind}{d}", None, seed, scale, data, device, out))
        elif experiment == "shortcuts":
            d = SHORTCUT_DEPTH[scale_name]
            for option in ("A", "B", "C"):
                runs.append(_cifar_run(f"resnet{d}", option, seed, scale, data, device, out))
        elif experiment == "imagenet":
            for kind in ("plain", "resnet"):
                for d in scale.imagenet_depths:
                    model = f"{kind}{d}"
                    cfg = recipe("imagenet-paper", model)
                    cfg = with_overrides(
                        cfg, data={"data": data},
                        optim={"iterations": scale.imagenet_iterations,
                               "batch_size": scale.imagenet_batch},
                        run={"run_dir": str(out / "runs" / f"{model}-s{seed}"), "seed": seed,
                             "device": device, "log_every": 1 if scale_name == "smoke" else 100,
                             "checkpoint_every": max(1, scale.imagenet_iterations // 4)})
                    runs.append(Run(f"{model}-s{seed}", model, cfg))
    return runs
