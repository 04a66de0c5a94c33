"""Training: typed config and recipes, schedules, the loop, checkpoints, distributed runs."""

from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .config import RECIPES, DataConfig, ModelConfig, OptimConfig, RunConfig, TrainConfig, recipe
from .divergence import NonFiniteLossError
from .loop import fit

__all__ = [
    "RECIPES", "CheckpointError", "DataConfig", "ModelConfig", "NonFiniteLossError",
    "OptimConfig", "RunConfig", "TrainConfig", "fit", "load_checkpoint", "recipe",
    "save_checkpoint",
]
