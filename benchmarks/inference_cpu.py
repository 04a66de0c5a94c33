"""CPU inference throughput: torchvision (or plain PyTorch) eager fp32 vs deepres fp32, bf16 and
int8, side by side in one process.

    .venv/bin/python benchmarks/inference_cpu.py [--reps 5] [--models resnet50,resnet20]

ResNet-50 at batch 1 and 16 (224x224), ResNet-20 at batch 1 and 256 (32x32). The baseline for
ResNet-50 is torchvision's resnet50 in eager fp32 (same weights); ResNet-20 has no torchvision
model, so its baseline is a textbook plain-PyTorch ResNet-20 (same option-A architecture).
deepres variants are what its commands run: fp32 = BN folded + channels_last; bf16 = that under
bf16 autocast (`--precision bf16`; used by `auto` on CPUs with native bf16); int8 = the
former `deepres export --format int8` module (FX static quantization, x86 backend, traced
and frozen: benchmarks/legacy_int8.py; the engine table in benchmarks/engines.py has the new one).
Variants are timed interleaved, round after round, and reported as the median round; the table
gives images/s and the ratio to the baseline. Outputs are checked against the baseline first.
"""

from __future__ import annotations

import argparse
import platform
from pathlib import Path

import torch
import torchvision
from legacy_int8 import fx_int8
from timing import interleaved
from train_throughput import ref_resnet20

import deepres
from deepres.export import fold_batchnorm
from deepres.runtime.precision import cpu_flags


def _calibrate(model: torch.nn.Module, size: int) -> torch.nn.Module:
    """BN statistics from a few random batches, as a trained network has them."""
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand(8, 3, size, size))
    return model.eval()


def _int8(model: torch.nn.Module, size: int, tmp: Path) -> torch.nn.Module:
    return fx_int8(model, [torch.rand(8, 3, size, size) - 0.5 for _ in range(4)])


def variants(name: str, tmp: Path) -> tuple[dict[str, tuple[torch.nn.Module, bool, bool]], int]:
    """label -> (module, channels_last input, bf16 autocast); and the input size."""
    if name == "resnet50":
        base = _calibrate(torchvision.models.resnet50(), 224)
        ours = deepres.create_model("resnet50")
        ours.load_state_dict(base.state_dict())
        label, size = "torchvision eager fp32", 224
    else:
        ours = _calibrate(deepres.create_model("resnet20"), 32)
        base = ref_resnet20()
        # The same weights: both list their tensors in the same order with the same shapes.
        mine = list(ours.state_dict().values())
        base.load_state_dict({k: v.clone() for k, v in zip(base.state_dict(), mine,
                                                            strict=True)})
        base.eval()
        label, size = "plain PyTorch eager fp32", 32
    ours = ours.eval()
    fast = fold_batchnorm(ours).to(memory_format=torch.channels_last)
    return {
        label: (base, False, False),
        "deepres fp32 (BN folded, channels_last)": (fast, True, False),
        "deepres bf16 (autocast)": (fast, True, True),
        "deepres int8 (former FX path)": (_int8(ours, size, tmp), False, False),
    }, size


def main() -> None:
    import tempfile

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--models", default="resnet50,resnet20")
    args = ap.parse_args()
    torch.manual_seed(0)
    flags = sorted(f for f in cpu_flags() if f in {"avx512_bf16", "amx_bf16", "amx_int8",
                                                    "avx512_vnni", "avx_vnni", "avx512f"})
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} "
          f"threads, torch {torch.__version__}; CPU flags: {' '.join(flags) or 'none of note'}")
    tmp = Path(tempfile.mkdtemp(prefix="deepres-bench-"))
    batches = {"resnet50": (1, 16), "resnet20": (1, 256)}
    for name in args.models.split(","):
        models, size = variants(name, tmp)
        base_label = next(iter(models))
        for batch in batches[name]:
            x = torch.rand(batch, 3, size, size) - 0.5

            def call(m, cl, bf, x=x):
                inp = x.contiguous(memory_format=torch.channels_last) if cl else x
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf):
                    return m(inp)

            fns = {k: (lambda v=v: call(*v)) for k, v in models.items()}
            with torch.inference_mode():
                ref = fns[base_label]().float()
                for k, fn in fns.items():
                    agree = (fn().float().argmax(1) == ref.argmax(1)).float().mean().item()
                    print(f"  check {name} b{batch} {k}: top-1 agrees with the baseline on "
                          f"{100 * agree:.0f}% of {batch} random inputs (untrained weights: "
                          "near-tied scores; the int8 accuracy check on trained models is in "
                          "BENCHMARKS.md)")
            small = size == 32
            iters = (20 if small else 5) if batch == 1 else (2 if small else 1)
            t = interleaved(fns, args.reps, iters=iters, warmup=1, context=torch.inference_mode)
            base = t[base_label]
            print(f"\n{name}, batch {batch}, {size}x{size}, torch.inference_mode")
            print(f"| variant | images/s | ratio vs {base_label} |\n|---|---|---|")
            for k, v in t.items():
                print(f"| {k} | {batch / v:.1f} | {base / v:.2f} |")
            print(flush=True)


if __name__ == "__main__":
    main()
