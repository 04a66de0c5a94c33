"""The bottom layer: what the hardware is and how to use it (precision, the distributed
context of torchrun processes); train and evaluate both build on it."""

from .precision import PRECISIONS, autocast, cpu_has_native_bf16, resolve_precision

__all__ = ["PRECISIONS", "autocast", "cpu_has_native_bf16", "resolve_precision"]
