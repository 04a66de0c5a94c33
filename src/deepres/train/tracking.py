"""Experiment tracking beyond the run folder: MLflow (``--tracker mlflow``), the most used
self-hosted tracker; it runs offline against a local folder or a server of one's own.

The run's settings become parameters (``section.name``), each logged row's numbers metrics at
its step, and at the end the weights and the summary's errors; ``deepres train`` adds
``curves.png`` once drawn. The MLflow run's id is kept in the run folder (``mlflow.json``), so a
resumed run goes on logging into the same MLflow run. Rank 0 only.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..runtime.runfolder import RunFolder

# A tracking server that is down must not stop or stall a run: MLflow's HTTP client retries a
# call 7 times with exponential backoff (minutes); we ask for 2 retries and 10 s, and after a
# failure skip calls for RETRY_AFTER_S seconds. The run folder keeps every row regardless.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
RETRY_AFTER_S = 60.0


def tracking_uri(given: str | None, saved: str | None = None) -> str:
    """Where MLflow runs go: ``--tracking-uri``, else where the run began (a resume), else
    ``$MLFLOW_TRACKING_URI`` (as every MLflow client reads it), else ``./mlruns``."""
    return given or saved or os.environ.get("MLFLOW_TRACKING_URI") or "./mlruns"


def _use_store(mlflow: Any, uri: str) -> None:
    if uri.startswith("file:") or "://" not in uri:  # a folder: MLflow's folder store
        # MLflow 3 keeps the folder store in maintenance mode and refuses it unless asked
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    mlflow.set_tracking_uri(uri)


class MlflowTracker:
    def __init__(self, run_dir: Path, uri: str | None, config: dict[str, Any],
                 experiment: str | None = None) -> None:
        try:
            import mlflow
        except ImportError as exc:
            raise ValueError("--tracker mlflow needs the mlflow package: pip install "
                             "'deepres[mlflow]' (or mlflow-skinny)") from exc
        self.mlflow, self.run_dir = mlflow, run_dir
        self.failures, self.down_since = 0, None  # calls that failed; when it went down
        saved = RunFolder(run_dir).tracking
        info = json.loads(saved.read_text()) if saved.exists() else {}
        run_id = info.get("run_id")
        uri = tracking_uri(uri, info.get("tracking_uri"))
        _use_store(mlflow, uri)
        try:
            if run_id is None and experiment:  # a resumed run stays in its own experiment
                mlflow.set_experiment(experiment)
            self.run = mlflow.start_run(run_id=run_id,
                                        run_name=None if run_id else run_dir.name)
        except mlflow.exceptions.MlflowException as exc:
            raise ValueError(f"--tracker mlflow: MLflow at {uri} refused the run: "
                             f"{str(exc).splitlines()[0]}") from exc
        if run_id is None:
            mlflow.log_params(flatten(config))
            saved.write_text(json.dumps({"run_id": self.run.info.run_id,
                                         "experiment_id": self.run.info.experiment_id,
                                         "tracking_uri": mlflow.get_tracking_uri()}) + "\n")

    def _call(self, what: str, fn: Callable[[], object]) -> None:
        """``fn()``, unless MLflow failed less than RETRY_AFTER_S ago; a failure is one line
        on stderr (the first of an outage) and the run goes on."""
        now = time.monotonic()
        if self.down_since is not None and now - self.down_since < RETRY_AFTER_S:
            self.failures += 1
            return
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - any client or server failure
            self.failures += 1
            if self.down_since is None:
                first = next((x for x in str(exc).splitlines() if x.strip()), type(exc).__name__)
                print(f"warning: MLflow did not take the {what} ({first[:200]}); training goes "
                      f"on, the run folder keeps every row; retrying every "
                      f"{RETRY_AFTER_S:g} s", file=sys.stderr, flush=True)
            self.down_since = now
        else:
            if self.down_since is not None:
                print(f"MLflow answers again ({self.failures} call(s) were skipped; their rows "
                      "are in metrics.jsonl)", file=sys.stderr, flush=True)
            self.down_since = None

    def log(self, row: dict[str, Any]) -> None:
        numbers = {k: float(v) for k, v in row.items()
                   if isinstance(v, int | float) and not isinstance(v, bool)
                   and k not in ("step", "epoch")}
        if numbers:
            self._call("metrics", lambda: self.mlflow.log_metrics(
                numbers, step=int(row.get("step", 0))))

    def close(self, summary: dict[str, Any]) -> None:
        finals = {f"final_{k}": float(v) for k, v in summary.items()
                  if k.endswith("_error") and isinstance(v, int | float)}
        self.down_since = None  # the end is worth one more try
        if finals:
            self._call("final errors", lambda: self.mlflow.log_metrics(finals))
        folder = RunFolder(self.run_dir)
        for path in (folder.weights, folder.summary, folder.config):
            if path.exists():
                self._call(path.name, lambda p=path: self.mlflow.log_artifact(str(p)))
        self._call("end of the run", lambda: self.mlflow.end_run())


def flatten(config: dict[str, Any]) -> dict[str, Any]:
    """``{"optim": {"lr": 0.1}}`` as ``{"optim.lr": 0.1}``; lists and None as text."""
    out: dict[str, Any] = {}
    for section, fields in config.items():
        if not isinstance(fields, dict):
            out[section] = fields
            continue
        for k, v in fields.items():
            out[f"{section}.{k}"] = v if isinstance(v, bool | int | float | str) else str(v)
    return out


def log_artifact(run_dir: str | Path, path: str | Path) -> None:
    """Add a file (``curves.png``) to the MLflow run of ``run_dir``, if it has one."""
    saved = RunFolder(run_dir).tracking
    if not saved.exists() or not Path(path).exists():
        return
    import mlflow

    info = json.loads(saved.read_text())
    _use_store(mlflow, info["tracking_uri"])
    try:
        with mlflow.start_run(run_id=info["run_id"]):
            mlflow.log_artifact(str(path))
    except Exception as exc:  # noqa: BLE001 - the run is done; the file is in its folder
        print(f"warning: MLflow did not take {path}: {str(exc).splitlines()[0][:200]}",
              file=sys.stderr)
