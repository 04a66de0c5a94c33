"""Numeric precision: which one a device does well, and the autocast context for it.

bf16 autocast is fast where the hardware computes bf16 dot products natively: NVIDIA GPUs, and
CPUs with AVX512-BF16 or AMX (Intel Cooper Lake / Sapphire Rapids and later, AMD Zen 4 and
later). Elsewhere PyTorch emulates bf16 on the CPU, which is slower than fp32, so ``auto``
follows the hardware rather than a fixed default.
"""

from __future__ import annotations

import contextlib

import torch

from .cpu import cpu_flags, cpu_name  # noqa: F401 - cpu_name: callers import it from here
from .options import PRECISIONS

# CPU feature flags (as /proc/cpuinfo spells them) that mean native bf16 matrix arithmetic.
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_has_native_bf16(flags: frozenset[str] | None = None) -> bool:
    """True when the CPU computes bf16 dot products in hardware (AVX512-BF16 or AMX)."""
    flags = cpu_flags() if flags is None else flags
    if any(f in flags for f in NATIVE_BF16_FLAGS):
        return True
    if flags:  # /proc/cpuinfo answered: trust it
        return False
    # No /proc/cpuinfo (macOS, Windows): ask PyTorch's own CPU feature probe where it has one.
    probe = getattr(torch._C, "_cpu", None)
    check = getattr(probe, "_is_avx512_bf16_supported", None)
    return bool(check()) if check is not None else False


def resolve_precision(precision: str | None, device: str | torch.device) -> str:
    """``auto`` (or None) becomes ``bf16`` where bf16 is native (GPUs of compute capability 8.0
    or newer, CPUs with avx512_bf16 or AMX), else ``fp32``."""
    precision = precision or "auto"
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    kind = torch.device(device).type
    if precision == "fp16" and kind != "cuda":
        raise ValueError("--precision fp16 needs a CUDA GPU (its gradient scaler keeps small "
                         "gradients from vanishing); on a CPU use bf16 (native on this one: "
                         f"{'yes' if cpu_has_native_bf16() else 'no'}) or fp32")
    if precision != "auto":
        return precision
    if kind == "cuda":
        return "bf16" if cuda_has_native_bf16(device) else "fp32"
    if kind == "cpu":
        return "bf16" if cpu_has_native_bf16() else "fp32"
    return "fp32"


def why(precision: str, device: str | torch.device) -> str:
    """One line saying which precision ``auto`` chose and why."""
    kind = torch.device(device).type
    if kind == "cuda":
        if precision == "bf16":
            return "bf16 (auto: the GPU computes bf16 natively, compute capability 8.0 or newer)"
        return ("fp32 (auto: the GPU's compute capability is below 8.0, where bf16 is emulated; "
                "fp32 without TF32 unless --tf32)")
    native = [f for f in NATIVE_BF16_FLAGS if f in cpu_flags()]
    if precision == "bf16":
        return f"bf16 (auto: the CPU has {', '.join(native) or 'native bf16'})"
    return "fp32 (auto: the CPU has no native bf16, which would be emulated and slower)"


def cuda_has_native_bf16(device: str | torch.device = "cuda") -> bool:
    """True on GPUs of compute capability 8.0 or newer (Ampere onwards); V100 (7.0) and T4
    (7.5) emulate bf16, more slowly than fp32."""
    if not torch.cuda.is_available():
        return False
    return torch.cuda.get_device_capability(torch.device(device)) >= (8, 0)


def configure_cuda(device: str | torch.device, tf32: bool = False) -> None:
    """On a GPU, fp32 means fp32: TF32 matmuls and convolutions only when ``tf32`` is asked
    for (PyTorch's cuDNN default is TF32 convolutions); cuDNN picks the fastest algorithm for
    the fixed input shapes of training and evaluation (``cudnn.benchmark``)."""
    if torch.device(device).type != "cuda":
        return
    mode = "tf32" if tf32 else "ieee"
    torch.backends.cuda.matmul.fp32_precision = mode
    torch.backends.cudnn.conv.fp32_precision = mode
    torch.backends.cudnn.benchmark = True


def autocast(precision: str, device: str | torch.device) -> contextlib.AbstractContextManager:
    """bf16 (or fp16) autocast for ``precision`` 'bf16' ('fp16'); a no-op context for fp32."""
    if precision in ("bf16", "fp16"):
        dtype = torch.bfloat16 if precision == "bf16" else torch.float16
        return torch.autocast(torch.device(device).type, dtype=dtype)
    return contextlib.nullcontext()
