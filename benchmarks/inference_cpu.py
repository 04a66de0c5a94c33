"""CPU inference throughput of ResNet-50: deepres's optimised path vs torchvision eager.

    .venv/bin/python benchmarks/inference_cpu.py [--reps 5] [--compile]

Same weights, same input, timed interleaved in one process; reported as images/s and as the
ratio to torchvision eager. Each step is added one at a time so its share is visible.
"""

from __future__ import annotations

import argparse
import platform

import torch
import torchvision
from timing import interleaved

import deepres
from deepres.export import fold_batchnorm, trace_frozen


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
        "deepres + BN folded + TorchScript, CPU passes (export --format cpu, load_cpu)":
            trace_frozen(folded, 224, optimize=True),
    }
    if args.compile:
        variants["deepres + BN folded + channels_last + compile"] = torch.compile(folded_cl)
    for batch in (1, 16):
        x = torch.rand(batch, 3, 224, 224)
        x_cl = x.contiguous(memory_format=torch.channels_last)
        fns = {k: (lambda m=m, inp=(x_cl if "channels_last" in k else x): m(inp))
               for k, m in variants.items()}
        with torch.inference_mode():
            ref = tv(x)
            for k, m in variants.items():
                diff = (m(x_cl if "channels_last" in k else x) - ref).abs().max().item()
                assert diff < 1e-2, (k, diff)
        t = interleaved(fns, args.reps, iters=10 if batch == 1 else 2, warmup=1,
                        context=torch.inference_mode)
        base = t["torchvision eager"]
        print(f"\nresnet50, batch {batch}, 224x224, float32, torch.inference_mode")
        print("| variant | images/s | ratio vs torchvision eager |\n|---|---|---|")
        for k, v in t.items():
            print(f"| {k} | {batch / v:.1f} | {base / v:.2f} |")


if __name__ == "__main__":
    main()
