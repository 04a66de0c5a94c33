"""Analyses of networks: parameter and multiply-add counts, layer responses."""

from .._lazy import exports

__getattr__, __dir__, __all__ = exports(__name__, {
    "count_macs": ".flops",
    "count_params": ".flops",
})
