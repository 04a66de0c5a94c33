"""deepres: Deep Residual Learning for Image Recognition (He, Zhang, Ren, Sun 2015) as software.

Public API::

    import deepres
    model = deepres.create_model("resnet56")            # CIFAR ResNet-56, option A shortcuts
    deepres.list_models()                               # registered names
    deepres.load_weights(model, "weights.safetensors")  # .safetensors / .pth, no code execution
"""

from .analysis import count_macs, count_params
from .models import (
    WeightsError,
    create_model,
    list_models,
    load_weights,
    model_from_weights,
    save_weights,
)


def _version() -> str:
    # The version is written once, in pyproject.toml; the installed metadata carries it.
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("deepres")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


__version__ = _version()

__all__ = [
    "WeightsError", "__version__", "count_macs", "count_params", "create_model", "list_models",
    "load_weights", "model_from_weights", "save_weights",
]
