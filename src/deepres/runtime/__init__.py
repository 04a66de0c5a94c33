"""The bottom layer: what the hardware is and how to use it (precision, the distributed
context of torchrun processes); train and evaluate both build on it."""

from .._lazy import exports

__getattr__, __dir__, __all__ = exports(__name__, {
    "PRECISIONS": ".options",
    "autocast": ".precision",
    "cpu_has_native_bf16": ".precision",
    "resolve_precision": ".precision",
})
