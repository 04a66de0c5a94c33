"""An experiment's trainings: what to run at a scale (resolving its data) and running it,
resuming any run that was interrupted. The report is written above this layer
(``deepres.reproduce``), so experiments never import report."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from ..data import DatasetError
from ..runtime.runfolder import RunFolder
from ..train import fit
from . import specs
from .specs import Run, Scale, default_data

# (experiment, scale, seeds, data, device, out) -> its runs
PlanFn = Callable[[str, Scale, int, str, str, Path], list[Run]]


def make_generated_imagenet(root: Path, classes: int = 3, per_class: int = 8) -> Path:
    """A tiny ImageNet-shaped folder (train/test, images of 96 to 128 pixels: over the size
    held in memory, so streamed and scale-augmented as ImageNet is) for smoke runs, which
    crop 64 (specs.py ``imagenet_crop``)."""
    if (root / ".complete").exists():
        return root
    rng = np.random.default_rng(0)
    for split, n in (("train", per_class), ("test", per_class // 2)):
        for c in range(classes):
            d = root / split / f"n{c:08d}"
            d.mkdir(parents=True, exist_ok=True)
            base = rng.integers(30, 225, 3)
            for i in range(n):
                h, w = rng.integers(96, 128, 2)
                img = np.clip(base + rng.normal(0, 40, (h, w, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(img).save(d / f"{i:04d}.jpg", quality=90)
    (root / ".complete").touch()
    return root


def train_runs(runs: list[Run], log=print) -> None:
    """Train each run not yet finished; an interrupted one continues from its checkpoint."""
    for i, run in enumerate(runs, 1):
        run_dir = Path(run.config.run.run_dir)
        if RunFolder(run_dir).finished():
            log(f"[{i}/{len(runs)}] {run.key}: done already")
            continue
        resume = RunFolder(run_dir).started()
        log(f"[{i}/{len(runs)}] {run.key}: {'resuming' if resume else 'training'}")
        if run.config.run.compile:
            # Each fit compiles its own network: without a reset, the compiler's cache of the
            # earlier fits' graphs reaches its recompile limit (8) and later ones run eagerly.
            import torch._dynamo

            torch._dynamo.reset()
        fit(run.config, resume=resume)


def prepare_experiment(experiment: str, plan: PlanFn, *, scale: str = "smoke",
                       seeds: int = 1, data: str | None = None, device: str = "cpu",
                       out: str | Path = "reports") -> list[Run]:
    """Check the arguments, resolve the data and return the runs ``plan`` makes for
    ``experiment`` (its declaration is above this layer: deepres/reproduce.py)."""
    scale_of = specs.scale(scale)
    if seeds < 1:
        raise ValueError(f"--seeds must be at least 1, got {seeds}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = data or default_data(experiment, scale)
    if experiment == "imagenet" and data == "generated":
        data = str(make_generated_imagenet(out / "_generated-imagenet"))
    if experiment == "imagenet" and not data:
        raise DatasetError("the imagenet experiment needs --data PATH, an ImageNet folder with "
                           "train/ and val/ (or test/) sub-folders")
    return plan(experiment, scale_of, seeds, data, device, out)
