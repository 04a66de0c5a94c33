"""srun without torchrun: Slurm's task variables become the process group (runtime/slurm.py)."""

import json
import os
import socket
import subprocess
import sys

import pytest

from deepres.runtime.slurm import adopt_slurm, first_host, master_port


@pytest.mark.parametrize("nodes, host", [
    ("gpu[003-004,9],cpu1", "gpu003"), ("node7", "node7"), ("a1,b2", "a1"),
    ("rack1-n[10-12]", "rack1-n10"), ("x[5]", "x5"),
    ("n[01-04]-ib", "n01-ib"), ("r[1-2]n[07-08],c3", "r1n07"), ("a[2,4]-b[9-9]-c", "a2-b9-c"),
])
def test_the_first_host_of_a_node_list(nodes, host):
    assert first_host(nodes) == host


@pytest.mark.parametrize("nodes", ["", "gpu[003", "gpu]1", "a[[1]]", ","])
def test_a_node_list_with_no_first_host_is_one_error(nodes):
    with pytest.raises(ValueError, match="Slurm node list"):
        first_host(nodes)


def _slurm(rank, world=2, **extra):
    return {"SLURM_PROCID": str(rank), "SLURM_NTASKS": str(world), "SLURM_LOCALID": str(rank),
            "SLURM_STEP_ID": "0", "SLURM_STEP_NODELIST": "gpu[01-02]", "SLURM_JOB_ID": "4242",
            **extra}


def test_srun_tasks_fill_torchruns_variables_and_torchrun_wins():
    env = _slurm(1)
    assert adopt_slurm(env)
    assert (env["RANK"], env["WORLD_SIZE"], env["LOCAL_RANK"]) == ("1", "2", "1")
    assert env["MASTER_ADDR"] == "gpu01" and env["MASTER_PORT"] == master_port(env) == "29742"
    torchrun = {**_slurm(1), "RANK": "5", "WORLD_SIZE": "8"}
    assert not adopt_slurm(torchrun) and torchrun["RANK"] == "5"
    given = _slurm(0, MASTER_ADDR="10.0.0.1", MASTER_PORT="1234")
    assert adopt_slurm(given) and (given["MASTER_ADDR"], given["MASTER_PORT"]) == ("10.0.0.1",
                                                                                   "1234")
    batch_shell = {k: v for k, v in _slurm(0).items() if k != "SLURM_STEP_ID"}
    assert not adopt_slurm(batch_shell) and "RANK" not in batch_shell
    assert not adopt_slurm(_slurm(0, world=1))


def _free_job_id():
    for job in range(4000, 5000):  # the port is 29500 + job % 1000
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", 29500 + job % 1000))
                return job
            except OSError:
                continue
    pytest.skip("no free port in 29500-30499")


def test_two_srun_tasks_train_one_run(tiny_data, tmp_path):
    job = _free_job_id()
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "deepres", "train", "--model", "resnet8", "--data",
           str(tiny_data), "--epochs", "2", "--batch-size", "16", "--log-every", "1", "--seed",
           "3", "--run-dir", str(run), "--precision", "fp32", "--lr", "0.01"]
    base = {k: v for k, v in os.environ.items()
            if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    procs = [subprocess.Popen(cmd, env={**base, **_slurm(r, SLURM_JOB_ID=str(job),
                                                         SLURM_STEP_NODELIST="127.0.0.1")},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for r in (0, 1)]
    outs = [p.communicate(timeout=300) for p in procs]
    codes = [p.returncode for p in procs]
    errs = [err for _, err in outs]
    assert codes == [0, 0], "\n".join(f"--- rank {r} (exit {codes[r]}):\n{errs[r][-2500:]}"
                                       for r in (0, 1))
    summary = json.loads(outs[0][0][outs[0][0].index("{"):])
    assert summary["test_images"] == 24  # every test image once, over the two tasks
    assert "2 process(es)" in outs[0][1]
    steps = [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()
             if "train_loss" in x]
    assert steps == sorted(set(steps)) and len(steps) == 12  # one writer: rank 0
    assert outs[1][0] == ""  # rank 1 prints no summary
