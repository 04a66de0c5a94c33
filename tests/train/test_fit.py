"""Training end to end on small data: accuracy rises, run directory, bad data, NaN, full disk."""

import errno
import json
import os

import pytest
import torch

from deepres import model_from_weights
from deepres.data import DatasetError
from deepres.train import CheckpointError, NonFiniteLossError, fit, load_checkpoint, recipe
from deepres.train import checkpoint as ckpt_mod
from deepres.train.config import with_overrides


def _cfg(data, run_dir, **optim):
    cfg = recipe("fast", "resnet8")
    return with_overrides(cfg, data={"data": str(data)},
                          optim={"batch_size": 16, "epochs": 3, **optim},
                          run={"run_dir": str(run_dir), "log_every": 2, "checkpoint_every": 4})


def test_accuracy_rises_and_run_directory_is_complete(tiny_data, tmp_path):
    run = tmp_path / "run"
    summary = fit(_cfg(tiny_data, run, epochs=4))
    assert summary["test_error"] < 0.34  # chance is 0.67 for three classes
    assert summary["test_images"] == 24
    for name in ("config.json", "metrics.jsonl", "weights.safetensors", "checkpoint.pt",
                 "summary.json"):
        assert (run / name).exists(), name
    assert not (run / "curves.png").exists()  # fit() returns results; callers draw them
    from deepres.report.curves import plot_run_curves
    plot_run_curves(run, "resnet8")
    assert (run / "curves.png").stat().st_size > 1000
    assert any(p.name.startswith("events") for p in (run / "tensorboard").iterdir())
    # TensorBoard's HParams tab: the settings beside the final errors
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    acc = EventAccumulator(str(run / "tensorboard"))
    acc.Reload()
    assert acc.Scalars("final/test_error")[-1].value == pytest.approx(summary["test_error"])
    content = acc.PluginTagToContent("hparams")
    info = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    lr = json.loads((run / "config.json").read_text())["optim"]["lr"]
    assert info.session_start_info.hparams["optim.lr"].number_value == pytest.approx(lr)
    assert info.session_start_info.hparams["model.name"].string_value == "resnet8"
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if "train_error" in r]
    assert {"step", "epoch", "lr", "train_loss", "train_error", "images_per_s"} <= set(
        train_rows[0])
    assert train_rows[-1]["train_loss"] < train_rows[0]["train_loss"]
    assert [r["test_error"] for r in rows if "test_error" in r][-1] == summary["test_error"]
    # three classes: a top-5 error is always 0 and means nothing, so none is logged
    assert not any("top5" in k for r in rows for k in r) and "test_top5_error" not in summary
    saved = json.loads((run / "config.json").read_text())
    assert saved["optim"]["iterations"] == 4 * 6 and saved["optim"]["epochs"] is None
    model, classes = model_from_weights(run / "weights.safetensors")
    assert classes == ["class0", "class1", "class2"] and model.fc.out_features == 3


def test_refuses_to_overwrite_a_run(tiny_data, tmp_path):
    fit(_cfg(tiny_data, tmp_path / "run", epochs=1))
    with pytest.raises(FileExistsError, match="--resume"):
        fit(_cfg(tiny_data, tmp_path / "run", epochs=1))


def test_bad_files_stop_before_first_step_unless_skipped(tiny_data, tmp_path):
    (tiny_data / "train" / "class1" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match=r"(?s)1 bad file.*--skip-bad.*broken\.png"):
        fit(_cfg(tiny_data, tmp_path / "a", epochs=1))
    assert not (tmp_path / "a" / "checkpoint.pt").exists()
    cfg = with_overrides(_cfg(tiny_data, tmp_path / "b", epochs=1), data={"skip_bad": True})
    fit(cfg)
    rows = [json.loads(x) for x in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["skipped_bad_files"] == 1


def test_non_finite_loss_stops_before_the_update(tiny_data, tmp_path):
    run = tmp_path / "run"
    cfg = _cfg(tiny_data, run, epochs=3, lr=1e12)
    with pytest.raises(NonFiniteLossError, match=r"step \d+") as err:
        fit(cfg)
    failed_at = int(str(err.value).split()[1].rstrip(":"))
    ck = load_checkpoint(run / "checkpoint.pt")
    assert ck["step"] < failed_at
    assert all(torch.isfinite(v).all() for v in ck["model"].values() if v.is_floating_point())


def test_deferred_finite_check_stops_at_the_next_log_without_a_bad_checkpoint(
        tiny_data, tmp_path, monkeypatch):
    # The GPU path (no host sync per step), exercised on the CPU: the flag is read back at the
    # logging interval, the bad step's gradients were zeroed, no checkpoint follows it.
    from deepres.train import guard

    monkeypatch.setattr(guard, "defers_finite_check", lambda device: True)
    run = tmp_path / "run"
    cfg = with_overrides(_cfg(tiny_data, run, epochs=3, lr=1e12), run={"log_every": 3})
    with pytest.raises(NonFiniteLossError, match=r"found at step \d+ by step \d+") as err:
        fit(cfg)
    failed_at = int(str(err.value).split()[1].rstrip(":"))
    ck = load_checkpoint(run / "checkpoint.pt")
    assert ck["step"] < failed_at
    assert all(torch.isfinite(v).all() for v in ck["model"].values() if v.is_floating_point())


def test_full_disk_keeps_earlier_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    ckpt_mod.save_checkpoint({"step": 1, "w": torch.ones(3)}, path)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ckpt_mod.torch, "save", full)
    with pytest.raises(CheckpointError, match="disk is full"):
        ckpt_mod.save_checkpoint({"step": 2, "w": torch.zeros(3)}, path)
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]  # no temporary left


def test_a_tight_gradient_clip_changes_the_run_and_a_loose_one_nothing(tiny_data, tmp_path):
    def weights(run):
        from safetensors.torch import load_file
        return load_file(str(run / "weights.safetensors"))

    fit(_cfg(tiny_data, tmp_path / "plain", epochs=1))
    fit(with_overrides(_cfg(tiny_data, tmp_path / "loose", epochs=1),
                       optim={"clip_grad_norm": 1e9}))
    fit(with_overrides(_cfg(tiny_data, tmp_path / "tight", epochs=1),
                       optim={"clip_grad_norm": 1e-4}))
    plain, loose, tight = (weights(tmp_path / n) for n in ("plain", "loose", "tight"))
    assert all(torch.equal(plain[k], loose[k]) for k in plain)  # a bound never reached
    k = "layer1.0.conv1.weight"
    assert not torch.equal(plain[k], tight[k])
    saved = json.loads((tmp_path / "tight" / "config.json").read_text())
    assert saved["optim"]["clip_grad_norm"] == 1e-4


def test_early_stop_stops_when_validation_stops_improving(tiny_data, tmp_path):
    run = tmp_path / "run"
    cfg = with_overrides(_cfg(tiny_data, run, epochs=40), data={"holdout": 0.25},
                         optim={"early_stop": 2})
    summary = fit(cfg)
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert any(r.get("early_stop") for r in rows)
    assert summary["steps"] < json.loads((run / "config.json").read_text())["optim"]["iterations"]
    evals = [r for r in rows if "val_error" in r]
    best = min(r["val_error"] for r in evals)
    assert all(r["val_error"] >= best for r in evals[-2:]) and not evals[-1].get("best")
    assert (run / "best.safetensors").exists()


def test_early_stop_without_a_validation_split_is_refused(tiny_data, tmp_path):
    cfg = with_overrides(_cfg(tiny_data, tmp_path / "run", epochs=2), optim={"early_stop": 2})
    with pytest.raises(DatasetError, match="--holdout"):
        fit(cfg)
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


@pytest.mark.parametrize("store", ["folder", "sqlite", "environment"])
def test_an_mlflow_run_is_logged_and_readable(tiny_data, tmp_path, monkeypatch, store):
    """Both stores the README names, its sqlite URI exactly as written (issue 42: the
    [mlflow] extra's mlflow-skinny refused it until the extra named sqlalchemy and alembic);
    and the store given as MLflow clients take it, $MLFLOW_TRACKING_URI, with --experiment
    (it once went to ./mlruns whatever the variable said)."""
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow's folder store, offline
    pytest.importorskip("pandas")  # mlflow.search_runs returns a DataFrame
    import subprocess
    import sys

    # (the relative sqlite URI is the README's; the environment's is absolute, as MLflow's
    # client in this process caches a store by its URI)
    uri = {"folder": f"file:{tmp_path / 'mlruns'}", "sqlite": "sqlite:///mlflow.db",
           "environment": f"sqlite:///{tmp_path / 'team.db'}"}[store]
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "deepres", "train", "--model", "resnet8", "--data",
           str(tiny_data), "--epochs", "2", "--batch-size", "16", "--log-every", "2",
           "--run-dir", str(run), "--tracker", "mlflow"]
    env = dict(os.environ)
    if store == "environment":
        env["MLFLOW_TRACKING_URI"] = uri
        cmd += ["--experiment", "sweep-1"]
    else:
        env.pop("MLFLOW_TRACKING_URI", None)
        cmd += ["--tracking-uri", uri]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout[done.stdout.index("{"):])
    monkeypatch.chdir(tmp_path)
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(search_all_experiments=True)
    assert len(runs) == 1
    row = runs.iloc[0]
    if store == "environment":
        assert mlflow.get_experiment(row["experiment_id"]).name == "sweep-1"
    assert row["params.model.name"] == "resnet8" and row["params.optim.batch_size"] == "16"
    assert row["metrics.final_test_error"] == pytest.approx(summary["test_error"])
    client = mlflow.tracking.MlflowClient()
    rid = row["run_id"]
    steps = [m.step for m in client.get_metric_history(rid, "train_loss")]
    assert len(steps) >= 3 and steps == sorted(steps)
    files = {a.path for a in client.list_artifacts(rid)}
    assert {"weights.safetensors", "summary.json", "curves.png"} <= files


def test_the_first_progress_line_has_an_eta(tiny_data, tmp_path, capsys):
    """The ETA counts from the sitting's first step, so the first logged line says a time
    (it once said `eta  nans`)."""
    import re

    from deepres.cli import main

    assert main(["train", "--data", str(tiny_data), "--run-dir", str(tmp_path / "run"),
                 "--model", "resnet8", "--iterations", "3", "--batch-size", "8",
                 "--log-every", "1", "--precision", "fp32", "--workers", "0"]) == 0
    lines = [x for x in capsys.readouterr().err.splitlines() if x.startswith("[")]
    assert lines and re.match(r"^\[1/3 +\d+\.\d% eta +\d+s\]", lines[0]), lines[:2]
    assert "nan" not in lines[0]


def test_a_tracking_outage_does_not_stop_the_run(tiny_data, tmp_path, monkeypatch, capsys):
    """Issue 42: an MLflow server dying mid-run killed training. Here every MLflow call after
    the run's start fails as a dead server's would: the run finishes, says so once, and its
    folder holds every row."""
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    import requests

    from deepres.cli import main

    def down(*args, **kwargs):
        raise requests.exceptions.ConnectionError("Connection refused (server gone)")

    end_run = mlflow.end_run
    for name in ("log_metrics", "log_artifact", "end_run"):
        monkeypatch.setattr(mlflow, name, down)
    run = tmp_path / "run"
    assert main(["train", "--model", "resnet8", "--data", str(tiny_data), "--epochs", "2",
                 "--batch-size", "16", "--log-every", "2", "--run-dir", str(run),
                 "--precision", "fp32", "--tracker", "mlflow", "--tracking-uri",
                 f"file:{tmp_path / 'mlruns'}"]) == 0
    err = capsys.readouterr().err
    end_run()  # leave no active run behind for the next test
    # one line when it went down, one for the final errors, one for curves.png
    assert err.count("warning: MLflow did not take") == 3, err
    assert "Connection refused" in err and "Traceback" not in err
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) >= 3 and (run / "weights.safetensors").exists()
