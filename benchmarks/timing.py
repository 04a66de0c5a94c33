"""Interleaved timing: each variant runs in turn, round after round, so drift and noise on a
shared machine hit all of them alike; the median round is reported."""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable


def interleaved(fns: dict[str, Callable[[], object]], reps: int, iters: int, warmup: int = 2,
                context: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
                settle: float = 0.0) -> dict[str, float]:
    """Median seconds per call of each function. ``settle``: seconds to wait before each
    function's turn, so that threads the previous one left spinning (ONNX Runtime's pool
    spins after each call) go idle instead of taking cores from the next."""
    with context():
        for fn in fns.values():
            for _ in range(warmup):
                fn()
        times: dict[str, list[float]] = {k: [] for k in fns}
        for _ in range(reps):
            for k, fn in fns.items():
                time.sleep(settle)
                t = time.perf_counter()
                for _ in range(iters):
                    fn()
                times[k].append((time.perf_counter() - t) / iters)
    return {k: statistics.median(v) for k, v in times.items()}


def train_step(model, x, y, precision: str = "fp32") -> Callable[[], None]:
    """One SGD train step on a fixed batch (lr 0.01, momentum 0.9, weight decay 1e-4), under
    bf16 autocast when ``precision`` is 'bf16': the step the training benchmarks time."""
    import torch
    import torch.nn.functional as F

    from deepres.runtime.precision import autocast

    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    device = x.device

    def step() -> None:
        with autocast(precision, device):
            loss = F.cross_entropy(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step
