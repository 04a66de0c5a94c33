"""An experiment's measurements, taken from its finished runs: each run's record (summary,
per-step metrics, the config it saved), parameter counts, and what some experiments measure
on the trained weights (layer responses, ImageNet's 10-crop and multi-scale tests, Table 1's
multiply-adds). The report renders these and computes nothing (report/)."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..analysis import count_macs, count_params
from ..data import DatasetError
from ..models import create_model, resolve
from ..runtime.runfolder import RunFolder
from ..train.config import TrainConfig
from ..train.records import IMAGES_PER_S, STEP, TRAIN_ERROR
from . import paper
from .specs import Run

# Figure 7's statistics are taken on every test image: the test split is sorted by class, so
# its first images (as once used: the first 2,000, all airplanes and automobiles) are no sample.
LAYER_RESPONSE_IMAGES: int | None = None  # None: all


@dataclass
class Measured:
    """What a report shows, as plain data."""

    runs: list[Run]
    records: dict[str, dict[str, Any]]  # run key -> its record (finished runs only)
    groups: dict[str, list[dict[str, Any]]]  # label -> the records of its seeds
    configs: dict[str, TrainConfig]  # label -> the config of its runs
    params: dict[str, int]  # label -> parameters of its model
    extra: dict[str, Any] = field(default_factory=dict)  # what the experiment measures more


def load_record(run: Run) -> dict[str, Any] | None:
    """A finished run's summary with its metric rows, the final training error (the mean of
    the last five logged values: they are noisy), its conv init and training time."""
    folder = RunFolder(run.config.run.run_dir)
    if not folder.finished():
        return None
    rows = folder.read_metrics()
    summary = folder.read_summary()
    for key in ("test_error", "val_error", "train_error", "test_top5_error"):
        value = summary.get(key)
        if isinstance(value, float) and not math.isfinite(value):
            raise DatasetError(f"{folder.summary}: {key} is {value}, not a number a "
                               "report can use; retrain the run or remove its folder")
    # Training error per logged step: one walk of the rows serves both the final value
    # and the over-the-run comparison.
    curve = {r[STEP]: r[TRAIN_ERROR] for r in rows if r.get(TRAIN_ERROR) is not None}
    train = [curve[k] for k in sorted(curve)]
    summary["train_curve"] = curve
    summary[TRAIN_ERROR] = statistics.mean(train[-5:]) if train else float("nan")
    summary["rows"] = rows
    summary["model"] = run.config.model.name
    model_cfg = folder.read_config().get("model", {}) if folder.started() else {}
    summary["conv_init_recorded"] = "conv_init" in model_cfg
    summary["conv_init"] = model_cfg.get("conv_init", "fan_out")
    summary["key"] = run.key
    summary["train_seconds"], summary["seconds_estimated"] = _train_seconds(
        summary, rows, run.config.optim.batch_size)
    return summary


def _train_seconds(summary: dict[str, Any], rows: list[dict[str, Any]], batch: int
                   ) -> tuple[float, bool]:
    """The run's training time. A run resumed from a checkpoint that did not keep the time
    (``seconds_since_step`` in its summary) has the part before that step estimated from the
    logged training rates (evaluations not counted); the flag says so."""
    since = summary.get("seconds_since_step")
    if since is None:
        return summary["seconds"], False
    before, prev, rate = 0.0, 0, None
    for r in rows:  # each logged rate covers the steps since the previous log
        if r.get(IMAGES_PER_S) and r[STEP] <= since:
            rate = r[IMAGES_PER_S]
            before += (r[STEP] - prev) * batch / rate
            prev = r[STEP]
    if rate:  # the steps between the last log and the checkpoint, at the last rate
        before += (since - prev) * batch / rate
    return summary["seconds"] + before, True


def layer_responses(m: Measured) -> dict[str, Any]:
    """Every seed's per-layer response stds by both methods (analysis/responses.py), per
    label, seeds in order."""
    from ..analysis.responses import layer_response_stds
    from ..data import load_data
    from ..loaded import load_predictor

    stds: dict[str, list[dict[str, list[float]]]] = {}
    images: dict[str, torch.Tensor] = {}  # the runs of a report share one dataset
    for run in sorted(m.runs, key=lambda r: r.config.run.seed):
        weights = RunFolder(run.config.run.run_dir).weights
        if not weights.exists():
            continue
        p = load_predictor(str(weights))
        data = run.config.data.data
        if data not in images:
            test = load_data(data, splits=("test",)).test
            images[data] = torch.from_numpy(
                test.images[:LAYER_RESPONSE_IMAGES]).permute(0, 3, 1, 2)
        x = images[data]
        # batches of 100: a ResNet-56's activations then stay in cache (10,000 images: 21 s
        # against 29 s in batches of 500 on a Zen 3)
        batches = (p.normalize(x[i:i + 100]) for i in range(0, len(x), 100))
        stds.setdefault(run.label, []).append(layer_response_stds(p.model, batches))
    return {"stds": stds}


def imagenet_tests(m: Measured) -> dict[str, Any]:
    """10-crop and multi-scale (224, 256, 384, at the 224 crop) errors of each seed's final
    weights."""
    from ..evaluate.runner import run_eval

    tests: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for label, records in m.groups.items():
        data = m.configs[label].data.data
        crop = m.configs[label].data.crop or 224  # the smoke scale's 64 keeps the proportions
        scales = [round(s * crop / 224) for s in (224, 256, 384)]
        weights = [str(RunFolder(s["run_dir"]).weights) for s in records]
        # precision "auto": as these reports were measured before eval's default became fp32
        tests[label] = {"ten": [run_eval([w], data, crops=10, precision="auto")
                                for w in weights],
                        "multi": [run_eval([w], data, scales=scales, precision="auto")
                                  for w in weights]}
    return {"tests": tests}


def table1(m: Measured) -> dict[str, Any]:
    """Parameters and multiply-adds at 224x224 with the stride in the 1x1 (the paper's
    placement) and in the 3x3 (torchvision's)."""
    rows = []
    for name, ref in paper.TABLE1_GMACS.items():
        bottleneck = resolve(name).depth >= 50
        with torch.device("meta"):
            m1 = create_model(name, stride_in_1x1=bottleneck)
            m3 = create_model(name)
        rows.append({"name": name, "params": count_params(m1), "paper_gmacs": ref,
                     "gmacs_1x1": count_macs(m1, 224) / 1e9,
                     "gmacs_3x3": count_macs(m3, 224) / 1e9})
    return {"table1": rows}


def _training_macs(runs: list[Run]) -> float:
    """Multiply-adds of training ``runs``: 3x the forward pass per image (forward, and the
    backward's two), times batch and iterations."""
    total = 0.0
    for r in runs:
        with torch.device("meta"):
            model = create_model(r.config.model.name, shortcut=r.config.model.shortcut)
        per_image = count_macs(model, resolve(r.config.model.name).default_input_size)
        total += 3 * per_image * r.config.optim.batch_size * r.config.optim.iterations
    return total


def plan_cost(m: Measured) -> dict[str, Any]:
    """The cost of this plan and of one seed of the ``full`` plan (written out, for a GPU)."""
    from .specs import SCALES, plan_preact

    full = plan_preact("preact", SCALES["full"], 1, "cifar10", "cuda", Path("reports"))
    return {"macs": _training_macs(m.runs), "full_macs": _training_macs(full),
            "full_runs": [r.key for r in full]}


def depth_checks(m: Measured) -> dict[str, Any]:
    """At the paper's full schedule, the recipe checked on the runs' files (recipe_checks.py):
    the evidence a report gives when its errors miss Table 6."""
    optim = m.runs[0].config.optim
    if optim.iterations < 64_000 or not m.records:
        return {}
    from .peer import read_published, read_runs
    from .recipe_checks import recipe_checks

    folder = Path(m.runs[0].config.run.run_dir).parents[1] / "peer"
    return {"checks": recipe_checks(m.records, optim),
            "peer_published": read_published(folder), "peer_runs": read_runs(folder)}


def measure(runs: list[Run], extra: Callable[[Measured], dict[str, Any]] | None = None
            ) -> Measured:
    """Everything a report shows, from its runs' files and weights: their records, and what
    the experiment's ``extra`` measures beyond them (deepres/reproduce.py declares which)."""
    records = {r.key: rec for r in runs if (rec := load_record(r)) is not None}
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in runs:
        if r.key in records:
            groups[r.label].append(records[r.key])
    configs = {r.label: r.config for r in runs}
    params = {}
    for label, cfg in configs.items():
        with torch.device("meta"):
            params[label] = count_params(create_model(cfg.model.name,
                                                      shortcut=cfg.model.shortcut))
    m = Measured(runs, records, dict(groups), configs, params)
    if extra is not None:
        m.extra = extra(m)
    return m
