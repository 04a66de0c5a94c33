"""Testing: top-1/top-5 error."""

from .._lazy import exports

__getattr__, __dir__, __all__ = exports(__name__, {
    "evaluate": ".metrics",
    "topk_wrong": ".metrics",
})
