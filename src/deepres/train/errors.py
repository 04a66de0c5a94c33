"""Training's error types, in a module of their own that imports nothing heavy: the command
line catches them without loading torch (``deepres models`` and ``--help`` stay instant)."""


class CheckpointError(RuntimeError):
    """A checkpoint could not be written or read; earlier checkpoints are left as they were."""


class NonFiniteLossError(RuntimeError):
    """The loss or a gradient became NaN or infinite; training stopped before the update."""
