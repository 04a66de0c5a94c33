"""``deepres reproduce``: an experiment's trainings (experiments/), then its report (report/).

This sits above both layers so that neither imports the other both ways: report reads the
experiments' data (runs, the paper's numbers); experiments know nothing of reports.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from .experiments.measure import measure
from .experiments.runner import prepare_experiment, train_runs
from .report.curves import plot_run_curves
from .report.experiments import write_report
from .runtime.runfolder import RunFolder


def reproduce(experiment: str, *, scale: str = "smoke", seeds: int = 1, data: str | None = None,
              device: str = "cpu", out: str | Path = "reports", report_only: bool = False,
              command: str | None = None) -> Path:
    """Run ``experiment`` at ``scale`` and write ``OUT/EXPERIMENT.md``; returns its path."""
    runs = prepare_experiment(experiment, scale=scale, seeds=seeds, data=data, device=device,
                              out=out)
    if not report_only:
        train_runs(runs, log=lambda m: print(m, file=sys.stderr, flush=True))
        for run in runs:  # each run's own curves, as `deepres train` draws them
            folder = RunFolder(run.config.run.run_dir)
            if folder.metrics.exists() and not folder.curves.exists():
                plot_run_curves(folder.path, run.label)
    # The command that trains what the report shows (--report-only only rebuilds it).
    command = command or "deepres reproduce " + shlex.join(
        a for a in sys.argv[2:] if a != "--report-only")
    return write_report(experiment, scale, measure(experiment, runs), Path(out), command,
                        device=device)
