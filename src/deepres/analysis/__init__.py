"""Analyses of networks: parameter and multiply-add counts, layer responses."""

from .flops import count_macs, count_params

__all__ = ["count_macs", "count_params"]
