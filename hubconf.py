"""torch.hub entry points: every deepres model by name, with deepres's own trained weights.

    model = torch.hub.load("path/to/deepres", "resnet20", source="local", pretrained=True)

``pretrained=True`` loads the name's published weights (deepres's own CIFAR-10 nets, else
torchvision's), ``pretrained="deepres:resnet20.cifar10-medium"`` a tagged one; other keyword
arguments go to ``deepres.create_model``. From a clone, deepres is imported from ``src/``.
"""

import sys
from pathlib import Path

dependencies = ["torch", "torchvision", "safetensors"]

try:
    import deepres
except ImportError:  # a clone that is not installed: its own source tree
    sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))
    import deepres


def _entry(name):
    def build(pretrained=False, **kwargs):
        return deepres.create_model(name, pretrained=pretrained, **kwargs)

    build.__name__ = name
    build.__doc__ = f"deepres {name} (deepres.create_model({name!r}, ...))."
    return build


for _name in deepres.list_models():
    globals()[_name] = _entry(_name)
