"""Which settings to train the ``full`` cifar-depth scale with: train-step throughput of ResNet-20
and ResNet-56 (batch 128, 32x32, the paper's SGD step) under each candidate setting, side by side
with plain PyTorch eager fp32 in one run on the same machine.

    .venv/bin/python benchmarks/full_schedule_settings.py [--reps 5] [--no-compile]

Interleaved rounds, medians, ratios to the plain-PyTorch baseline (these machines are noisy).
bf16 rows are shown only where the CPU computes bf16 natively; elsewhere PyTorch emulates it and
it is many times slower than fp32 (see BENCHMARKS.md), so ``--precision auto`` never picks it.
"""

from __future__ import annotations

import argparse

import torch
from timing import interleaved, train_step
from train_throughput import ref_resnet20

import deepres
from deepres.runtime.precision import cpu_flags, cpu_has_native_bf16, cpu_name


def _ref(depth: int) -> torch.nn.Module:
    """The plain-PyTorch option-A CIFAR ResNet of ``depth`` (the script's own, not deepres's)."""
    import train_throughput as tt

    if depth == 20:
        return ref_resnet20()
    n = (depth - 2) // 6
    layers: list[torch.nn.Module] = [torch.nn.Conv2d(3, 16, 3, 1, 1, bias=False),
                                     torch.nn.BatchNorm2d(16), torch.nn.ReLU()]
    cin = 16
    for cout, stride in ((16, 1), (32, 2), (64, 2)):
        for i in range(n):
            layers.append(tt.RefBlock(cin, cout, stride if i == 0 else 1))
            cin = cout
    layers += [torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(64, 10)]
    return torch.nn.Sequential(*layers)


def variants(depth: int, compile_: bool) -> dict:
    bs = 128
    x, y = torch.randn(bs, 3, 32, 32), torch.randint(0, 10, (bs,))
    xcl = x.contiguous(memory_format=torch.channels_last)

    def ours(cl: bool = True) -> torch.nn.Module:
        m = deepres.create_model(f"resnet{depth}")
        return m.to(memory_format=torch.channels_last) if cl else m

    fns = {"plain PyTorch eager fp32 (baseline)": train_step(_ref(depth), x, y),
           "deepres fp32": train_step(ours(False), x, y),
           "deepres fp32 channels_last": train_step(ours(), xcl, y)}
    if compile_:
        fns["deepres fp32 channels_last compiled"] = train_step(torch.compile(ours()), xcl, y)
    if cpu_has_native_bf16():
        fns["deepres bf16 channels_last"] = train_step(ours(), xcl, y, "bf16")
        if compile_:
            fns["deepres bf16 channels_last compiled"] = train_step(
                torch.compile(ours()), xcl, y, "bf16")
    return fns


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--depths", default="20,56")
    ap.add_argument("--no-compile", action="store_true")
    args = ap.parse_args()
    torch.manual_seed(0)
    flags = sorted(f for f in cpu_flags() if f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16"))
    print(f"machine: {cpu_name()}, flags {' '.join(flags)}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}")
    for depth in (int(d) for d in args.depths.split(",")):
        t = interleaved(variants(depth, not args.no_compile), args.reps,
                        iters=5 if depth < 50 else 2, warmup=3)
        base = t["plain PyTorch eager fp32 (baseline)"]
        print(f"\nresnet{depth}, batch 128, 32x32, train step (forward+backward+SGD)")
        print("| setting | images/s | ratio vs baseline |\n|---|---|---|")
        for k, v in t.items():
            print(f"| {k} | {128 / v:.0f} | {base / v:.2f} |")


if __name__ == "__main__":
    main()
