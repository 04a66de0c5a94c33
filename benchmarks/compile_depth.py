"""Does torch.compile pay for the CIFAR nets at each depth? The train step of ``deepres train``
(bf16 autocast where native, channels_last, SGD), eager vs compiled, interleaved in one run.

    .venv/bin/python benchmarks/compile_depth.py [--models resnet20,resnet56] [--reps 5]

The compile time is reported apart: it is paid once per run (and again on a resume).
"""

from __future__ import annotations

import argparse
import time

import torch
from timing import interleaved, train_step

import deepres
from deepres.runtime.precision import cpu_name, resolve_precision


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="resnet20,resnet56")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--precision", default="auto")
    a = ap.parse_args()
    precision = resolve_precision(a.precision, "cpu")
    print(f"{cpu_name()}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
          f"{precision}, channels_last, batch {a.batch_size}")
    torch.manual_seed(0)
    cl = torch.channels_last
    x = torch.randn(a.batch_size, 3, 32, 32).contiguous(memory_format=cl)
    y = torch.randint(0, 10, (a.batch_size,))
    print("| model | eager img/s | compiled img/s | compiled / eager | compile time (s) |")
    print("|---|---|---|---|---|")
    for name in a.models.split(","):
        eager = deepres.create_model(name).to(memory_format=cl).train()
        compiled = torch.compile(deepres.create_model(name).to(memory_format=cl).train())
        fns = {"eager": train_step(eager, x, y, precision),
               "compiled": train_step(compiled, x, y, precision)}
        t0 = time.perf_counter()
        fns["compiled"]()  # the first call compiles forward and backward
        compile_s = time.perf_counter() - t0
        t = interleaved(fns, a.reps, a.iters)
        e, c = a.batch_size / t["eager"], a.batch_size / t["compiled"]
        print(f"| {name} | {e:.0f} | {c:.0f} | {c / e:.2f} | {compile_s:.0f} |", flush=True)


if __name__ == "__main__":
    main()
