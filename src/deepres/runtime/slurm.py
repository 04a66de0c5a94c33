"""Runs started by Slurm's ``srun`` (one task per GPU or CPU process), without torchrun.

torchrun describes the process group in ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR`` and ``MASTER_PORT``; ``srun`` describes its tasks in ``SLURM_PROCID``,
``SLURM_NTASKS``, ``SLURM_LOCALID`` and the step's node list. Where the first set is absent
and the second present, :func:`adopt_slurm` fills the first from the second, so the rest of
deepres sees one description (README, "Clusters: Slurm"). Without torch: it runs before a
command starts.
"""

from __future__ import annotations

import os
import re
from collections.abc import MutableMapping

DEFAULT_PORT_BASE = 29500  # torchrun's default port, shifted by the job id (see master_port)


def first_host(nodelist: str) -> str:
    """The first host of a Slurm node list: ``gpu[003-004,9],cpu1`` gives ``gpu003``, and a
    suffix or several ranges are kept in place (``n[01-04]-ib`` gives ``n01-ib``,
    ``r[1-2]n[07-08]`` gives ``r1n07``), as Slurm's hostlist expands them."""
    text, depth, end = nodelist.strip(), 0, None
    for i, ch in enumerate(text):  # the first host expression ends at a comma outside brackets
        depth += {"[": 1, "]": -1}.get(ch, 0)
        if depth < 0 or depth > 1:
            break
        if ch == "," and depth == 0:
            end = i
            break
    first = text[:end]
    host = re.sub(r"\[([^\]]*)\]", lambda m: m.group(1).split(",")[0].split("-")[0], first)
    if depth < 0 or depth > 1 or not host or any(c in host for c in "[],"):
        raise ValueError(f"cannot read a host from the Slurm node list {nodelist!r}")
    return host  # zero padding kept: "003" stays "003"


def master_port(environ: MutableMapping[str, str]) -> str:
    """The same port on every task of a job, different between jobs that share a node."""
    job = environ.get("SLURM_JOB_ID", "0")
    return str(DEFAULT_PORT_BASE + int(job) % 1000 if job.isdecimal() else DEFAULT_PORT_BASE)


def adopt_slurm(environ: MutableMapping[str, str] | None = None) -> bool:
    """Fill torchrun's variables from Slurm's when this process is one of several ``srun``
    tasks and torchrun's are absent; True when it did. ``MASTER_ADDR``/``MASTER_PORT`` already
    set (by an sbatch script) are kept."""
    env = os.environ if environ is None else environ
    if "RANK" in env or "WORLD_SIZE" in env:  # torchrun (or the user) said it already
        return False
    needed = ("SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID")
    if not all(k in env for k in needed) or "SLURM_STEP_ID" not in env:
        return False  # not an srun task (sbatch's own shell has no step)
    try:
        rank, world, local = (int(env[k]) for k in needed)
    except ValueError as exc:
        raise ValueError(f"Slurm's task variables are not numbers: {exc}") from exc
    if world <= 1:
        return False
    nodes = env.get("SLURM_STEP_NODELIST") or env.get("SLURM_JOB_NODELIST")
    if "MASTER_ADDR" not in env and not nodes:
        raise ValueError("srun started several tasks but Slurm gave no node list "
                         "(SLURM_STEP_NODELIST); set MASTER_ADDR to the first node's address")
    env.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(local))
    env.setdefault("MASTER_ADDR", first_host(nodes or ""))
    env.setdefault("MASTER_PORT", master_port(env))
    return True
