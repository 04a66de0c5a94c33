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
from pathlib import Path
from typing import Any

from ..runtime.runfolder import RunFolder

ID_FILE = "mlflow.json"


class MlflowTracker:
    def __init__(self, run_dir: Path, uri: str | None, config: dict[str, Any]) -> None:
        try:
            import mlflow
        except ImportError as exc:
            raise ValueError("--tracker mlflow needs the mlflow package: pip install "
                             "mlflow-skinny (or mlflow)") from exc
        self.mlflow, self.run_dir = mlflow, run_dir
        uri = uri or "./mlruns"
        if uri.startswith("file:") or "://" not in uri:  # a folder: MLflow's folder store
            # MLflow 3 keeps the folder store in maintenance mode and refuses it unless asked
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        mlflow.set_tracking_uri(uri)
        saved = run_dir / ID_FILE
        run_id = json.loads(saved.read_text())["run_id"] if saved.exists() else None
        try:
            self.run = mlflow.start_run(run_id=run_id,
                                        run_name=None if run_id else run_dir.name)
        except mlflow.exceptions.MlflowException as exc:
            raise ValueError(f"--tracker mlflow: MLflow at {uri} refused the run: "
                             f"{str(exc).splitlines()[0]}") from exc
        if run_id is None:
            mlflow.log_params(flatten(config))
            saved.write_text(json.dumps({"run_id": self.run.info.run_id,
                                         "tracking_uri": mlflow.get_tracking_uri()}) + "\n")

    def log(self, row: dict[str, Any]) -> None:
        numbers = {k: float(v) for k, v in row.items()
                   if isinstance(v, int | float) and not isinstance(v, bool)
                   and k not in ("step", "epoch")}
        if numbers:
            self.mlflow.log_metrics(numbers, step=int(row.get("step", 0)))

    def close(self, summary: dict[str, Any]) -> None:
        finals = {f"final_{k}": float(v) for k, v in summary.items()
                  if k.endswith("_error") and isinstance(v, int | float)}
        if finals:
            self.mlflow.log_metrics(finals)
        folder = RunFolder(self.run_dir)
        for path in (folder.weights, folder.summary, folder.config):
            if path.exists():
                self.mlflow.log_artifact(str(path))
        self.mlflow.end_run()


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
    saved = Path(run_dir) / ID_FILE
    if not saved.exists() or not Path(path).exists():
        return
    import mlflow

    info = json.loads(saved.read_text())
    if info["tracking_uri"].startswith("file:") or "://" not in info["tracking_uri"]:
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    mlflow.set_tracking_uri(info["tracking_uri"])
    with mlflow.start_run(run_id=info["run_id"]):
        mlflow.log_artifact(str(path))
