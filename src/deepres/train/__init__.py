"""Training: typed config and recipes, schedules, the loop, checkpoints, distributed runs."""

from .._lazy import exports

__getattr__, __dir__, __all__ = exports(__name__, {
    "CheckpointError": ".errors",
    "load_checkpoint": ".checkpoint",
    "save_checkpoint": ".checkpoint",
    "RECIPES": ".config",
    "DataConfig": ".config",
    "ModelConfig": ".config",
    "OptimConfig": ".config",
    "RunConfig": ".config",
    "TrainConfig": ".config",
    "recipe": ".config",
    "NonFiniteLossError": ".errors",
    "fit": ".loop",
})
