"""Testing: top-1/top-5 error."""

from .metrics import evaluate, topk_wrong

__all__ = ["evaluate", "topk_wrong"]
