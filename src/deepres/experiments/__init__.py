"""The paper's experiments: what to run, what the paper reported, and the runner."""

from .._lazy import exports

__getattr__, __dir__, __all__ = exports(__name__, {
    "SCALES": ".specs",
})
