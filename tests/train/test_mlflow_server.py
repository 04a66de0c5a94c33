"""MLflow as teams run it (slow suite): a real ``mlflow server`` process with a SQLite database
and served artifacts, started and stopped here, and the README's commands run exactly as
written against it; what they logged is read back with MLflow's own client."""

import os
import re
import shlex
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _readme_block() -> list[str]:
    """The bash block after "With a team's server:" in the README."""
    text = (ROOT / "docs" / "training.md").read_text()
    after = text[text.index("With a team's server:"):]
    block = re.search(r"```bash\n(.*?)```", after, re.S).group(1)
    return [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]


@pytest.fixture
def mlflow_server(tmp_path):
    mlflow = pytest.importorskip("mlflow")
    lines = _readme_block()
    url = next(x.split("=", 1)[1] for x in lines if x.startswith("export MLFLOW_TRACKING_URI="))
    port = int(url.rsplit(":", 1)[1])
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            pytest.skip(f"port {port} (the README's) is in use here")
    log = open(tmp_path / "server.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", "--serve-artifacts",
         "--artifacts-destination", str(tmp_path / "artifacts"), "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path, start_new_session=True)
    deadline = time.time() + 120
    import urllib.request

    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        assert server.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
        assert time.time() < deadline, "mlflow server did not answer /health in 120 s"
        time.sleep(0.5)
    yield mlflow, url, lines
    os.killpg(server.pid, 15)
    server.wait(timeout=30)
    log.close()


def test_the_readme_example_logs_to_a_real_mlflow_server(mlflow_server, tmp_path):
    mlflow, url, lines = mlflow_server
    install = next(x for x in lines if x.startswith("pip install"))
    extra = re.search(r"deepres\[(\w+)\]", install).group(1)
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    assert any(d.startswith("mlflow") for d in extras[extra]), extras[extra]  # it names MLflow
    env = dict(os.environ)
    env.pop("MLFLOW_EXPERIMENT_NAME", None)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # our `deepres`
    for line in lines:
        if line.startswith("pip install"):
            continue  # installed: the dev extras hold [mlflow]'s packages
        if line.startswith("export "):
            key, value = line[len("export "):].split("=", 1)
            env[key] = value
            continue
        done = subprocess.run(shlex.split(line), env=env, cwd=tmp_path, capture_output=True,
                              text=True, timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
        assert "MLflow did not take" not in done.stderr, done.stderr[-2000:]
    experiment = re.search(r"--experiment (\S+)", lines[-1]).group(1)
    client = mlflow.tracking.MlflowClient(tracking_uri=url)
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"no experiment {experiment!r} on the server"
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 1
    run = runs[0]
    assert run.data.params["model.name"] == "resnet20"
    assert 0 <= run.data.metrics["final_test_error"] <= 1
    assert len(client.get_metric_history(run.info.run_id, "train_loss")) >= 2
    files = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"weights.safetensors", "summary.json", "config.json", "curves.png"} <= files
    assert any((tmp_path / "artifacts").rglob("weights.safetensors"))  # served, not local
    assert not (tmp_path / "mlruns").exists()  # nothing went to the default folder
