"""deepres: Deep Residual Learning for Image Recognition (He, Zhang, Ren, Sun 2015) as software.

Public API::

    import deepres
    model = deepres.create_model("resnet56")            # CIFAR ResNet-56, option A shortcuts
    deepres.list_models()                               # registered names
    deepres.load_weights(model, "weights.safetensors")  # .safetensors / .pth, no code execution
"""

import importlib
from typing import Any

# The public API, imported on first use (PEP 562): `import deepres` and `deepres --help` do not
# load torch, and a Ctrl-C while torch loads reaches the command's own handler.
_API = {
    "count_macs": ".analysis", "count_params": ".analysis", "WeightsError": ".models",
    "create_model": ".models", "list_models": ".models", "load_weights": ".models",
    "model_from_weights": ".models", "save_weights": ".models", "Predictor": ".loaded",
    "data_config": ".data.model_transform", "create_transform": ".data.model_transform",
    "resolve_data_config": ".data.model_transform",
}

_SUBPACKAGES = ("analysis", "data", "evaluate", "export", "loaded", "models", "serve", "train")


def _version() -> str:
    # The version is written once, in pyproject.toml; the installed metadata carries it.
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("deepres")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


def __getattr__(name: str) -> Any:
    if name == "__version__":
        value: Any = _version()
    elif name in _SUBPACKAGES:  # `deepres.data.create_transform`, as `timm.data....`
        value = importlib.import_module(f".{name}", __name__)
    elif name in _API:
        value = getattr(importlib.import_module(_API[name], __name__), name)
    else:
        raise AttributeError(f"module 'deepres' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_API, "__version__"])


__all__ = [
    "Predictor", "WeightsError", "__version__", "count_macs", "count_params", "create_model",
    "create_transform", "data_config", "list_models", "load_weights", "model_from_weights",
    "resolve_data_config", "save_weights",
]
