"""The models' error type, on its own so that every module of models/ can raise it."""


class WeightsError(ValueError):
    """A weights file that cannot be read, or that does not fit the model."""
