"""CPU inference throughput of ResNet-50: deepres's optimised path vs torchvision eager.

    .venv/bin/python benchmarks/inference_cpu.py [--reps 5] [--compile]

Same weights, same input, timed interleaved in one process; reported as images/s and as the
ratio to torchvision eager. Each step is added one at a time so its share is visible.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
import torchvision

import deepres
from deepres.export import fold_batchnorm


def bench(fns: dict, x: torch.Tensor, reps: int, iters: int) -> dict[str, float]:
    with torch.inference_mode():
        for fn in fns.values():
            fn(x)  # warm-up (and compilation)
        times: dict[str, list[float]] = {k: [] for k in fns}
        for _ in range(reps):
            for k, fn in fns.items():
                t = time.perf_counter()
                for _ in range(iters):
                    fn(x)
                times[k].append((time.perf_counter() - t) / iters)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--compile", action="store_true", help="also time torch.compile (slow start)")
    args = ap.parse_args()
    torch.manual_seed(0)
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}")
    tv = torchvision.models.resnet50().eval()
    ours = deepres.create_model("resnet50").eval()
    ours.load_state_dict(tv.state_dict())
    folded = fold_batchnorm(ours)
    folded_cl = fold_batchnorm(ours).to(memory_format=torch.channels_last)
    variants = {
        "torchvision eager": tv,
        "deepres eager": ours,
        "deepres + BN folded": folded,
        "deepres + BN folded + channels_last": folded_cl,
    }
    if args.compile:
        variants["deepres + BN folded + channels_last + compile"] = torch.compile(folded_cl)
    for batch in (1, 16):
        x = torch.rand(batch, 3, 224, 224)
        x_cl = x.contiguous(memory_format=torch.channels_last)
        fns = {k: (lambda inp, m=m, cl="channels_last" in k: m(x_cl if cl else inp))
               for k, m in variants.items()}
        with torch.inference_mode():
            ref = tv(x)
            for k, m in variants.items():
                diff = (m(x_cl if "channels_last" in k else x) - ref).abs().max().item()
                assert diff < 1e-2, (k, diff)
        t = bench(fns, x, args.reps, iters=10 if batch == 1 else 2)
        base = t["torchvision eager"]
        print(f"\nresnet50, batch {batch}, 224x224, float32, torch.inference_mode")
        print("| variant | images/s | ratio vs torchvision eager |\n|---|---|---|")
        for k, v in t.items():
            print(f"| {k} | {batch / v:.1f} | {base / v:.2f} |")


if __name__ == "__main__":
    main()
