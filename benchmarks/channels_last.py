"""CPU forward speed of the committed CIFAR nets in the two memory layouts (NCHW and channels-
last), side by side in one process: one image (a served request's batch of one) and batches.

    .venv/bin/python benchmarks/channels_last.py [--seconds 2]

A lead for issue 42 item 6 (one client's latency): the layout decides which oneDNN kernels run
the 3x3 convolutions of 16-64 channels.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from deepres.loaded import load_predictor
from deepres.runtime.machine import describe_machine

ROOT = Path(__file__).resolve().parents[1]


def rate(model: torch.nn.Module, x: torch.Tensor, seconds: float) -> float:
    """Images per second of ``model`` on ``x`` (after a warm-up), in inference mode."""
    with torch.inference_mode():
        for _ in range(10):
            model(x)
        t, n = time.perf_counter(), 0
        while time.perf_counter() - t < seconds:
            model(x)
            n += 1
        return n * len(x) / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=2.0)
    a = ap.parse_args()
    print(describe_machine("cpu", "fp32"), f"threads {torch.get_num_threads()}")
    print("| model | batch | NCHW img/s | channels-last img/s | ratio | NCHW ms/batch |")
    print("|---|---|---|---|---|---|")
    for net in ("resnet20", "resnet56"):
        model = load_predictor(str(ROOT / f"reports/runs/{net}-s0/weights.safetensors")).model
        for batch in (1, 16, 128):
            x = torch.randn(batch, 3, 32, 32)
            nchw = rate(model.to(memory_format=torch.contiguous_format).eval(), x, a.seconds)
            last = rate(model.to(memory_format=torch.channels_last).eval(),
                        x.contiguous(memory_format=torch.channels_last), a.seconds)
            print(f"| {net} | {batch} | {nchw:,.0f} | {last:,.0f} | {last / nchw:.2f}x | "
                  f"{1000 * batch / nchw:.2f} |")


if __name__ == "__main__":
    main()
