"""``deepres reproduce``: an experiment's trainings (experiments/), then its report (report/).

This sits above both layers so that neither imports the other both ways: report reads the
experiments' data (runs, the paper's numbers); experiments know nothing of reports. It holds the
one declaration of each experiment (:data:`EXPERIMENTS`): its title, the runs it needs, what it
measures beyond its runs' records, and the renderer of its sections. The measuring and rendering
functions are named by module and imported when called, so that the command line lists the
experiments without importing torch; a test resolves every one.
"""

from __future__ import annotations

import importlib
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .experiments import specs

if TYPE_CHECKING:
    from .experiments.measure import Measured
    from .experiments.specs import Run, Scale

PlanFn = Callable[[str, "Scale", int, str, str, Path], "list[Run]"]


@dataclass(frozen=True)
class Deferred:
    """A function named by its module and name, imported on first call."""

    module: str
    name: str

    def resolve(self) -> Callable[..., Any]:
        return getattr(importlib.import_module(self.module), self.name)

    def __call__(self, *args: Any) -> Any:
        return self.resolve()(*args)


def _measure(name: str) -> Deferred:  # (Measured) -> what the report shows beyond the records
    return Deferred("deepres.experiments.measure", name)


def _render(module: str, name: str) -> Deferred:  # (Measured, out folder, lines) -> None
    return Deferred(f"deepres.report.{module}", name)


@dataclass(frozen=True)
class Experiment:
    """One of the paper's experiments, declared once."""

    name: str
    title: str  # the report's title
    plan: PlanFn  # the runs it needs at a scale (experiments/specs.py)
    render: Deferred  # appends its sections to the report's lines (report/)
    measure: Deferred | None = None  # what it measures beyond the runs' records
    runs_in_header: bool = True  # the header states the runs' data, schedule and seeds


EXPERIMENTS: dict[str, Experiment] = {e.name: e for e in (
    Experiment("table1", "Table 1: network sizes and multiply-adds", specs.plan_nothing,
               _render("experiments", "report_table1"), _measure("table1"),
               runs_in_header=False),
    Experiment("cifar-depth", "CIFAR-10 depth sweep: plain vs residual (Figure 6, Table 6)",
               specs.plan_depth, _render("experiments", "report_cifar_depth"),
               _measure("depth_checks")),
    Experiment("shortcuts", "Shortcut options A, B, C (Table 3's question)",
               specs.plan_shortcuts, _render("experiments", "report_shortcuts")),
    Experiment("layer-responses", "Layer responses (Figure 7)", specs.plan_depth,
               _render("responses", "report_layer_responses"), _measure("layer_responses")),
    Experiment("imagenet", "ImageNet: plain vs residual (Tables 2 to 4)", specs.plan_imagenet,
               _render("experiments", "report_imagenet"), _measure("imagenet_tests")),
    Experiment("preact", "Pre-activation vs original residual units (He et al. 2016, Table 3)",
               specs.plan_preact, _render("experiments", "report_preact"),
               _measure("plan_cost")),
)}


def experiment(name: str) -> Experiment:
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; choose from {', '.join(EXPERIMENTS)}")
    return EXPERIMENTS[name]


def plan(name: str, scale: str, seeds: int, data: str, device: str, out: str | Path
         ) -> list[Run]:
    """The runs experiment ``name`` needs at ``scale`` (data as given, not resolved)."""
    return experiment(name).plan(name, specs.scale(scale), seeds, data, device, Path(out))


def runs_of(name: str, *, scale: str = "smoke", seeds: int = 1, data: str | None = None,
            device: str = "cpu", out: str | Path = "reports") -> list[Run]:
    """Check the arguments, resolve the data and return the runs experiment ``name`` needs."""
    from .experiments.runner import prepare_experiment

    return prepare_experiment(name, experiment(name).plan, scale=scale, seeds=seeds, data=data,
                              device=device, out=out)


def reproduce(name: str, *, scale: str = "smoke", seeds: int = 1, data: str | None = None,
              device: str = "cpu", out: str | Path = "reports", report_only: bool = False,
              command: str | None = None) -> Path:
    """Run experiment ``name`` at ``scale`` and write ``OUT/NAME.md``; returns its path."""
    from .experiments.measure import measure
    from .experiments.runner import train_runs
    from .report.curves import plot_run_curves
    from .report.experiments import write_report
    from .runtime.runfolder import RunFolder

    row = experiment(name)
    runs = runs_of(name, scale=scale, seeds=seeds, data=data, device=device, out=out)
    if not report_only:
        train_runs(runs, log=lambda m: print(m, file=sys.stderr, flush=True))
        for run in runs:  # each run's own curves, as `deepres train` draws them
            folder = RunFolder(run.config.run.run_dir)
            if folder.metrics.exists() and not folder.curves.exists():
                plot_run_curves(folder.path, run.label)
    # The command that trains what the report shows (--report-only only rebuilds it).
    command = command or "deepres reproduce " + shlex.join(
        a for a in sys.argv[2:] if a != "--report-only")
    measured: Measured = measure(runs, row.measure)
    return write_report(name, row.title, row.render, scale, measured, Path(out), command,
                        device=device, runs_in_header=row.runs_in_header)
