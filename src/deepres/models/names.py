"""Model names: which names exist, what each one is (``resolve``), and the input
specification each family expects by default. Nothing here builds a model."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..inputspec import CIFAR, IMAGENET, InputSpec
from .blocks import BasicBlock, Bottleneck
from .choices import SHORTCUTS  # noqa: F401  (re-exported)

# Table 1: blocks per stage.
IMAGENET_LAYERS: dict[int, tuple[type, tuple[int, int, int, int]]] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}
IMAGENET_WIDTHS = (64, 128, 256, 512)
CIFAR_WIDTHS = (16, 32, 64)  # §4.2: 16, 32, 64 filters on 32, 16, 8 maps
# Depths listed by list_models(); any other 6n+2 depth is built on request.
CIFAR_LISTED_DEPTHS = (8, 14, 20, 32, 44, 56, 110, 1202)


@dataclass(frozen=True)
class ModelSpec:
    """What a registered name builds."""

    name: str
    family: str  # "imagenet" or "cifar": the stem, widths and default input specification
    depth: int
    residual: bool
    default_num_classes: int
    default_input_size: int
    default_shortcut: str
    groups: int = 1  # 3x3 convolution groups (ResNeXt)
    width_per_group: int = 64  # bottleneck inner width per group (wide ResNets: 128)
    arch: str = "original"  # "original" (the paper's blocks) or "preact" (He et al. 2016)
    bottleneck: bool = False
    layers: tuple[int, ...] = ()  # blocks per stage
    widen: int = 1  # stage widths times this (Wide ResNets' K)


# The paper's successors that are its bottleneck nets with a wider or grouped 3x3, under
# torchvision's names (its ImageNet weights load as they are): name -> (depth, groups, width).
WIDER_BOTTLENECKS: dict[str, tuple[int, int, int]] = {
    "resnext50_32x4d": (50, 32, 4),      # Xie et al. 2017
    "resnext101_32x8d": (101, 32, 8),
    "resnext101_64x4d": (101, 64, 4),
    "wide_resnet50_2": (50, 1, 128),     # Zagoruyko and Komodakis 2016, torchvision's variant
    "wide_resnet101_2": (101, 1, 128),
}
ORIGINAL_IMAGENET_LAYERS = {d: v[1] for d, v in IMAGENET_LAYERS.items()}
PREACT_IMAGENET_LAYERS = {**ORIGINAL_IMAGENET_LAYERS,
                          200: (3, 24, 36, 3)}  # the follow-up paper's ResNet-200


def _imagenet(name: str, depth: int, residual: bool, arch: str = "original",
              groups: int = 1, width: int = 64) -> ModelSpec:
    # Option B by default for ImageNet models (§4.1: the 50/101/152 use B; torchvision's too).
    layers = (PREACT_IMAGENET_LAYERS if arch == "preact" else ORIGINAL_IMAGENET_LAYERS)[depth]
    return ModelSpec(name, "imagenet", depth, residual, 1000, 224, "B", groups, width, arch,
                     depth >= 50, layers)


def _cifar(name: str, depth: int, residual: bool, arch: str = "original",
           widen: int = 1) -> ModelSpec | None:
    """CIFAR nets (§4.2): 3 stages of n blocks. Basic blocks at depth 6n+2; from depth 164 a
    depth 9n+2 means bottleneck blocks, as the follow-up paper's ResNet-164 and ResNet-1001.
    Option A in all the paper's CIFAR cases (residual and plain nets then have equal
    parameters); pre-activation nets use projections (B), as the follow-up paper's code."""
    shortcut = "A" if arch == "original" else "B"
    if depth >= 164 and (depth - 2) % 9 == 0:
        n = (depth - 2) // 9
        return ModelSpec(name, "cifar", depth, residual, 10, 32, shortcut, arch=arch,
                         bottleneck=True, layers=(n, n, n))
    if depth >= 8 and (depth - 2) % 6 == 0:
        n = (depth - 2) // 6
        return ModelSpec(name, "cifar", depth, residual, 10, 32, shortcut, arch=arch,
                         layers=(n, n, n), widen=widen)
    return None


def _wrn(name: str, depth: int, k: int) -> ModelSpec | None:
    """WRN-D-K (Zagoruyko and Komodakis 2016): pre-activation basic blocks, (D-4)/6 per stage,
    widths 16K, 32K, 64K after a 16-filter stem."""
    if depth < 10 or (depth - 4) % 6 or not 1 <= k <= 32:
        return None
    n = (depth - 4) // 6
    return ModelSpec(name, "cifar", depth, True, 10, 32, "B", arch="preact", layers=(n, n, n),
                     widen=k)


@dataclass(frozen=True)
class Family:
    """One family of names: how a name is read, which names ``list_models`` shows, and what
    ``deepres models`` says of it."""

    pattern: re.Pattern[str]
    spec: Callable[[str, re.Match[str]], ModelSpec | None]
    listed: tuple[str, ...]
    about: str


# Read in order: the first family whose pattern matches and gives a spec names the model.
# ImageNet depths come before CIFAR ones (``resnet50`` is ImageNet's; ``cifar_resnet50`` CIFAR's).
FAMILIES: tuple[Family, ...] = (
    Family(re.compile(r"^(resnet|plain)(18|34|50|101|152)$"),
           lambda n, m: _imagenet(n, int(m[2]), m[1] == "resnet"),
           tuple(f"{k}{d}" for k in ("resnet", "plain") for d in IMAGENET_LAYERS),
           "ImageNet: resnet18/34/50/101/152 (Table 1) and their plain twins plain18..152"),
    Family(re.compile("^(" + "|".join(WIDER_BOTTLENECKS) + ")$"),
           lambda n, m: _imagenet(n, WIDER_BOTTLENECKS[n][0], True,
                                  groups=WIDER_BOTTLENECKS[n][1], width=WIDER_BOTTLENECKS[n][2]),
           tuple(WIDER_BOTTLENECKS), "ImageNet: " + ", ".join(WIDER_BOTTLENECKS)),
    Family(re.compile(r"^preact_resnet(18|34|50|101|152|200)$"),
           lambda n, m: _imagenet(n, int(m[1]), True, arch="preact"),
           tuple(f"preact_resnet{d}" for d in PREACT_IMAGENET_LAYERS),
           "ImageNet, pre-activation (He et al. 2016): preact_resnet18..200"),
    Family(re.compile(r"^(?:cifar_)?(resnet|plain)(\d+)$"),
           lambda n, m: _cifar(n, int(m[2]), m[1] == "resnet"),
           tuple(f"{k}{d}" for k in ("resnet", "plain") for d in CIFAR_LISTED_DEPTHS),
           "CIFAR: resnetN or plainN for any depth N = 6n+2 (8, 14, 20, 32, 44, 56, 110, "
           "1202, ...), also as cifar_resnetN; from 164, N = 9n+2 is a bottleneck net"),
    Family(re.compile(r"^(?:cifar_)?preact_resnet(\d+)$"),
           lambda n, m: _cifar(n, int(m[1]), True, arch="preact"),
           ("preact_resnet110", "preact_resnet164", "preact_resnet1001"),
           "CIFAR, pre-activation: preact_resnetN, N = 6n+2 (basic) or from 164 9n+2 "
           "(bottleneck: 164, 1001)"),
    Family(re.compile(r"^wrn_(\d+)_(\d+)$"),
           lambda n, m: _wrn(n, int(m[1]), int(m[2])),
           ("wrn_16_8", "wrn_28_10", "wrn_40_4"),
           "CIFAR, wide (Zagoruyko and Komodakis 2016): wrn_D_K, D = 6n+4, e.g. wrn_28_10"),
)


def resolve(name: str) -> ModelSpec:
    """Parse a model name into its spec, or raise a ValueError that lists what exists."""
    for family in FAMILIES:
        m = family.pattern.match(name)
        if m is not None and (spec := family.spec(name, m)) is not None:
            return spec
    raise ValueError(_unknown(name))


def _unknown(name: str) -> str:
    import difflib

    close = difflib.get_close_matches(name.lower(), list_models(), n=3, cutoff=0.6)
    hint = f" Did you mean {' or '.join(close)}?" if close else ""
    return (f"unknown model {name!r}.{hint} " + "; ".join(f.about for f in FAMILIES)
            + ". `deepres models` lists them.")


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


def list_models(filter: str | Sequence[str] | None = None, pretrained: bool = False,
                exclude_filters: str | Sequence[str] | None = None) -> list[str]:
    """The registered model names, family by family (ImageNet first, then CIFAR), as timm's
    ``list_models``: those matching ``filter`` (a shell-style pattern such as ``"resnet*"``,
    or a list of them: any may match) and none of ``exclude_filters``. With
    ``pretrained=True``, each published weights of a name as ``NAME.TAG`` (deepres's own,
    ``resnet20.cifar10``, then torchvision's, ``resnet50.tv_in1k``), which
    ``create_model(NAME.TAG, pretrained=True)`` loads; a pattern with a dot matches those."""
    import fnmatch

    def patterns(p: str | Sequence[str] | None) -> list[str]:
        return [] if not p else [p] if isinstance(p, str) else list(p)

    def matches(n: str, pats: list[str]) -> bool:
        return any(fnmatch.fnmatchcase(n, p) for p in pats)

    include, exclude = patterns(filter), patterns(exclude_filters)
    names = [n for family in FAMILIES for n in family.listed]
    if pretrained:
        from .published import pretrained_tags

        names = [f"{n}.{tag}" for n in names for tag in pretrained_tags(n)]
        # a pattern without a tag ("resnet5*") selects by the name, as timm's does
        include = [p if "." in p else p + ".*" for p in include]
        exclude = [p if "." in p else p + ".*" for p in exclude]
    if include:
        names = [n for n in names if matches(n, include)]
    return [n for n in names if not matches(n, exclude)]
