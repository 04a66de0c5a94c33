"""Model names: which names exist, what each one is (``resolve``), and the input
specification each family expects by default. Nothing here builds a model."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..inputspec import CIFAR, IMAGENET, InputSpec
from .blocks import BasicBlock, Bottleneck

# Table 1: blocks per stage.
IMAGENET_LAYERS: dict[int, tuple[type, tuple[int, int, int, int]]] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}
SHORTCUTS = ("A", "B", "C")  # §4.1's options
IMAGENET_WIDTHS = (64, 128, 256, 512)
CIFAR_WIDTHS = (16, 32, 64)  # §4.2: 16, 32, 64 filters on 32, 16, 8 maps
# Depths listed by list_models(); any other 6n+2 depth is built on request.
CIFAR_LISTED_DEPTHS = (8, 14, 20, 32, 44, 56, 110, 1202)


@dataclass(frozen=True)
class ModelSpec:
    """What a registered name builds."""

    name: str
    family: str  # "imagenet" or "cifar"
    depth: int
    residual: bool
    default_num_classes: int
    default_input_size: int
    default_shortcut: str
    groups: int = 1  # 3x3 convolution groups (ResNeXt)
    width_per_group: int = 64  # bottleneck inner width per group (wide ResNets: 128)


# The paper's successors that are its bottleneck nets with a wider or grouped 3x3, under
# torchvision's names (its ImageNet weights load as they are): name -> (depth, groups, width).
WIDER_BOTTLENECKS: dict[str, tuple[int, int, int]] = {
    "resnext50_32x4d": (50, 32, 4),      # Xie et al. 2017
    "resnext101_32x8d": (101, 32, 8),
    "resnext101_64x4d": (101, 64, 4),
    "wide_resnet50_2": (50, 1, 128),     # Zagoruyko and Komodakis 2016, torchvision's variant
    "wide_resnet101_2": (101, 1, 128),
}


def _imagenet_spec(name: str, depth: int, residual: bool) -> ModelSpec:
    # Option B by default for ImageNet models (§4.1: the 50/101/152 use B; torchvision's too).
    return ModelSpec(name, "imagenet", depth, residual, 1000, 224, "B")


def _cifar_spec(name: str, depth: int, residual: bool) -> ModelSpec:
    # Option A in all CIFAR cases (§4.2), so residual and plain nets have equal parameters.
    return ModelSpec(name, "cifar", depth, residual, 10, 32, "A")


_CIFAR_RE = re.compile(r"^(?:cifar_)?(resnet|plain)(\d+)$")


def resolve(name: str) -> ModelSpec:
    """Parse a model name into its spec, or raise a ValueError that lists what exists."""
    if name in WIDER_BOTTLENECKS:
        depth, groups, width = WIDER_BOTTLENECKS[name]
        return ModelSpec(name, "imagenet", depth, True, 1000, 224, "B", groups, width)
    m = _CIFAR_RE.match(name)
    if m is None:
        raise ValueError(_unknown(name))
    kind, depth = m.group(1), int(m.group(2))
    residual = kind == "resnet"
    if not name.startswith("cifar_") and depth in IMAGENET_LAYERS:
        return _imagenet_spec(name, depth, residual)
    if depth >= 8 and (depth - 2) % 6 == 0:
        return _cifar_spec(name, depth, residual)
    raise ValueError(_unknown(name))


def _unknown(name: str) -> str:
    import difflib

    close = difflib.get_close_matches(name.lower(), list_models(), n=3, cutoff=0.6)
    hint = f" Did you mean {' or '.join(close)}?" if close else ""
    return (
        f"unknown model {name!r}.{hint} ImageNet models: resnet18/34/50/101/152 and "
        f"plain18..plain152, {', '.join(WIDER_BOTTLENECKS)}; "
        "CIFAR models: resnetN or plainN for any depth N = 6n+2 (8, 14, 20, 32, 44, 56, 110, "
        "1202, ...), also as cifar_resnetN. `deepres models` lists them."
    )


# The input specification each family's weights expect by default (what `deepres train`
# writes into its weights overrides it): ImageNet nets as torchvision's published weights;
# CIFAR nets the usual CIFAR-10 channel statistics at 32x32 (deepres/inputspec.py).
DEFAULT_INPUT_SPEC: dict[str, InputSpec] = {"imagenet": IMAGENET, "cifar": CIFAR}


def default_input_spec(name: str) -> InputSpec:
    """The input specification model ``name``'s family expects by default (ImageNet's for a
    name that is not a model)."""
    try:
        return DEFAULT_INPUT_SPEC[resolve(name).family]
    except ValueError:
        return IMAGENET


def list_models() -> list[str]:
    """The registered model names (ImageNet first, then CIFAR), each residual then plain."""
    names = [f"{k}{d}" for k in ("resnet", "plain") for d in IMAGENET_LAYERS]
    names += list(WIDER_BOTTLENECKS)
    names += [f"{k}{d}" for k in ("resnet", "plain") for d in CIFAR_LISTED_DEPTHS]
    return names
