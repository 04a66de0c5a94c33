"""A loaded model (floor above models/ and data/, below evaluate/, export/ and serve/): any
weights format read into a :class:`Predictor` that knows its input and classes."""

from .._lazy import exports

__getattr__, __dir__, __all__ = exports(__name__, {
    "Predictor": ".predictor",
    "load_predictor": ".predictor",
    "probs_single": ".predictor",
    "calibration_batches": ".calibration",
    "is_int8_file": ".int8",
    "load_int8": ".int8",
})
