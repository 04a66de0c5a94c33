"""The paper's experiments: what to run, what the paper reported, and the runner."""

from .specs import EXPERIMENTS, SCALES

__all__ = ["EXPERIMENTS", "SCALES"]
