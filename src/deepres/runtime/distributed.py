"""Many processes through ``torchrun`` (PyTorch DDP); a no-op context for one process."""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass, field
from datetime import timedelta

import torch
import torch.distributed as tdist
import torch.distributed._functional_collectives as funcol
from torch import nn


@dataclass
class Context:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    # Where collectives run: the CPU for gloo, this rank's GPU for NCCL.
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    def local_device(self, device: str | torch.device) -> torch.device:
        """The device this process computes on: under torchrun, CUDA means this rank's own GPU
        (``cuda:LOCAL_RANK``, as DDP's ``device_ids`` say); a ``cuda:N`` given with several
        processes is mapped to it, said once."""
        d = torch.device(device)
        if d.type != "cuda" or not self.active:
            return d
        if d.index is not None and d.index != self.local_rank and self.is_main:
            print(f"deepres: --device {d} under torchrun: each process uses its own GPU "
                  f"(cuda:LOCAL_RANK); rank 0 uses cuda:{self.local_rank}", file=sys.stderr)
        return torch.device("cuda", self.local_rank)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def wrap(self, model: nn.Module) -> nn.Module:
        if not self.active:
            return model
        device_ids = [self.local_rank] if next(model.parameters()).is_cuda else None
        return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)

    def sum(self, t: torch.Tensor) -> torch.Tensor:
        """The sum over processes, returned on ``t``'s device; the collective runs on the
        backend's device (a CPU tensor is never handed to NCCL, nor a GPU one to gloo)."""
        if self.active:
            home = t.device
            t = t.to(self.device, copy=True)
            tdist.all_reduce(t, op=tdist.ReduceOp.SUM)
            t = t.to(home)
        return t

    def mean(self, t: torch.Tensor) -> torch.Tensor:
        return self.sum(t) / self.world_size

    def barrier(self) -> None:
        if self.active:
            tdist.barrier()

    def close(self) -> None:
        if self.active and tdist.is_initialized():
            tdist.destroy_process_group()

    def __enter__(self) -> Context:
        return self

    def __exit__(self, kind, value, tb) -> None:
        # Leaving normally, the ranks meet first, so that none tears the group down while
        # another still works (rank 0 writing a run's files, say). After an error there is
        # no meeting: the other ranks may never arrive.
        try:
            if kind is None:
                self.barrier()
        finally:
            self.close()


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """Batch norm over the global batch of all processes, on any device (gloo or NCCL).

    PyTorch's SyncBatchNorm runs only on GPUs; this one all-reduces the per-channel sums with
    a differentiable collective, so a run on N processes computes what one process would on the
    whole batch. The paper's own BN statistics were per GPU (32 images); this is an option.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and tdist.is_available() and tdist.is_initialized()
                and tdist.get_world_size() > 1):
            return super().forward(x)
        c = x.shape[1]
        count = torch.full((1,), x.numel() / c, device=x.device, dtype=torch.float32)
        xf = x.float()
        # Sums around a shift that every process shares (the running mean, which DDP keeps
        # equal across processes), so E[d^2] - E[d]^2 does not cancel catastrophically in fp32.
        shift = (self.running_mean.detach().float() if self.track_running_stats
                 else torch.zeros(c, device=x.device)).view(1, c, 1, 1)
        d = xf - shift
        stats = torch.cat([d.sum((0, 2, 3)), (d * d).sum((0, 2, 3)), count])
        # Functional collective: differentiable (its backward all-reduces the gradient) and
        # traceable by torch.compile, with no Python-side warning in the forward.
        stats = funcol.all_reduce(stats, "sum", tdist.group.WORLD)
        n = stats[-1]
        mean_d = stats[:c] / n
        var = (stats[c:2 * c] / n - mean_d * mean_d).clamp_min(0)
        mean = mean_d + shift.view(c)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                # momentum None: the cumulative average over the batches seen, as
                # nn.BatchNorm2d (precise BN relies on it to get the exact mean).
                m = (self.momentum if self.momentum is not None
                     else 1.0 / float(self.num_batches_tracked))
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * n / (n - 1), alpha=m)
        shape = (1, c, 1, 1)
        out = (xf - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out.to(x.dtype)


def convert_global_bn(module: nn.Module) -> nn.Module:
    """Swap every BatchNorm2d for :class:`GlobalBatchNorm2d`, keeping parameters and names."""
    for name, child in module.named_children():
        if type(child) is nn.BatchNorm2d:
            new = GlobalBatchNorm2d(child.num_features, child.eps, child.momentum, child.affine,
                                    child.track_running_stats, device=child.weight.device)
            new.load_state_dict(child.state_dict())
            setattr(module, name, new)
        else:
            convert_global_bn(child)
    return module


def collective_timeout() -> timedelta:
    """How long a collective waits for the other processes (``DEEPRES_DIST_TIMEOUT`` seconds,
    default 600). PyTorch's default is 30 minutes: when a peer dies in the middle of a step, the
    survivors would sit that long before torchrun could restart the group."""
    raw = os.environ.get("DEEPRES_DIST_TIMEOUT", "600")
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1
    if not seconds > 0:
        raise ValueError(f"DEEPRES_DIST_TIMEOUT must be a number of seconds > 0, not {raw!r}")
    return timedelta(seconds=seconds)


def _attempt_store(timeout: timedelta) -> tdist.Store:
    """The rendezvous store, with keys private to this torchrun attempt.

    After a restart, torch 2.14's workers read the gloo addresses that the previous attempt's
    (dead) processes published under the same keys, and connecting to them is refused until
    the timeout ("Gloo connectFullMesh failed ... Connection refused"): the restart hangs or
    fails. A prefix per attempt (TORCHELASTIC_RESTART_COUNT) gives each attempt fresh keys.
    """
    rank = int(os.environ["RANK"])
    world = int(os.environ["WORLD_SIZE"])
    agent = os.environ.get("TORCHELASTIC_USE_AGENT_STORE", "").lower() == "true"
    store = tdist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world,
                           is_master=not agent and rank == 0, timeout=timeout,
                           wait_for_workers=False)
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    return tdist.PrefixStore(f"deepres/attempt-{attempt}", store)


def _join_timed_out(seconds: float) -> None:
    rank = os.environ.get("RANK", "?")
    print(f"deepres: error: rank {rank} could not join the process group within {seconds:.0f} s "
          "(DEEPRES_DIST_TIMEOUT); leaving so that torchrun --max-restarts can start the group "
          "again", file=sys.stderr, flush=True)
    os._exit(75)  # EX_TEMPFAIL: worth retrying


def init(device: str | torch.device = "cpu") -> Context:
    """Join the process group that ``torchrun`` describes in the environment, if any. The
    backend follows the device the run computes on, not what is installed: gloo for the CPU
    (even where GPUs are visible), NCCL for CUDA."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Context()
    cuda = torch.device(device).type == "cuda"
    backend = "nccl" if cuda else "gloo"
    if not tdist.is_initialized():
        timeout = collective_timeout()
        # Joining the group after a torchrun restart has been seen to hang inside gloo's
        # connection set-up (torch 2.14, ProcessGroupGloo creation), beyond the timeout given
        # here. A watchdog bounds it: the process leaves with a message and a non-zero status,
        # and torchrun's --max-restarts starts the group again.
        watchdog = threading.Timer(timeout.total_seconds(), _join_timed_out,
                                   args=(timeout.total_seconds(),))
        watchdog.daemon = True
        watchdog.start()
        try:
            tdist.init_process_group(backend, timeout=timeout, store=_attempt_store(timeout),
                                     rank=int(os.environ["RANK"]), world_size=world)
        finally:
            watchdog.cancel()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if cuda:  # only ranks that compute on a GPU claim one
        torch.cuda.set_device(local)
    return Context(tdist.get_rank(), tdist.get_world_size(), local,
                   torch.device("cuda", local) if cuda else torch.device("cpu"))
