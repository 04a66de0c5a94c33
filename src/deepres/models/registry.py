"""Model registry: names to builders, ``create_model`` and ``list_models``.

ImageNet networks (Table 1): resnet18/34/50/101/152 and their plain twins plain18..plain152.
CIFAR networks (§4.2): resnetN / plainN for every depth N = 6n+2; the names ``cifar_resnetN`` and
``cifar_plainN`` always mean the CIFAR network (``resnet50`` and ``resnet152`` are the ImageNet
ones, though 50 and 152 are also of the form 6n+2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from torch import nn

from .blocks import BasicBlock, Bottleneck, PlainBasicBlock, PlainBottleneck
from .resnet import ResNet

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
_PLAIN = {BasicBlock: PlainBasicBlock, Bottleneck: PlainBottleneck}


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
# writes into its weights overrides it): ImageNet nets as torchvision's published weights
# (mean/std normalisation, 224 crops of the image resized to 256); CIFAR nets the usual
# CIFAR-10 channel statistics at 32x32.
DEFAULT_INPUT_SPEC = {
    "imagenet": {"input_size": 224, "test_resize": 256, "interpolation": "bilinear",
                 "input_mean": [0.485, 0.456, 0.406], "input_std": [0.229, 0.224, 0.225]},
    "cifar": {"input_size": 32, "test_resize": 32, "interpolation": "bilinear",
              "input_mean": [0.4914, 0.4822, 0.4465], "input_std": [0.2470, 0.2435, 0.2616]},
}


def list_models() -> list[str]:
    """The registered model names (ImageNet first, then CIFAR), each residual then plain."""
    names = [f"{k}{d}" for k in ("resnet", "plain") for d in IMAGENET_LAYERS]
    names += list(WIDER_BOTTLENECKS)
    names += [f"{k}{d}" for k in ("resnet", "plain") for d in CIFAR_LISTED_DEPTHS]
    return names


def create_model(
    name: str,
    *,
    num_classes: int | None = None,
    shortcut: str | None = None,
    stride_in_1x1: bool = False,
    zero_init_residual: bool = False,
    conv_init: str = "fan_out",
    pretrained: bool | str = False,
) -> nn.Module:
    """Build a registered model with He initialisation.

    Args:
        name: a name from :func:`list_models`, or any CIFAR depth ``resnetN``/``plainN``, N=6n+2.
        num_classes: classifier outputs; 1000 for ImageNet models, 10 for CIFAR ones by default.
        shortcut: "A" (zero-padded identity), "B" (projection where dimensions grow) or "C"
            (projection everywhere), §4.1. Default A for CIFAR models, B for ImageNet ones.
            Plain models have no shortcuts, so only their default is accepted.
        stride_in_1x1: bottleneck models only; put the downsampling stride in the first 1x1
            convolution as the paper's released models do (default: in the 3x3, as torchvision).
        zero_init_residual: start each residual branch's last BN at zero (as torchvision).
        conv_init: "fan_out" (torchvision's He initialisation) or "fan_in" (the paper's
            reference [13] counts a layer's k*k*c input connections); the paper's recipes
            use fan_in.
        pretrained: True for torchvision's published weights of this name (downloaded once
            into torch's hub cache, hash-checked), or a weights file (deepres, torchvision,
            timm). The classifier is kept when ``num_classes`` fits it, else new. The model's
            ``input_spec`` (size, resize, mean, std) then says how its inputs must look.
    """
    spec = resolve(name)
    if shortcut is None:
        shortcut = spec.default_shortcut
    if shortcut not in ("A", "B", "C"):
        raise ValueError(f"shortcut must be 'A', 'B' or 'C', got {shortcut!r}")
    if not spec.residual and shortcut != spec.default_shortcut:
        raise ValueError(f"{name} is a plain network with no shortcuts; drop shortcut={shortcut!r}")
    if num_classes is None:
        num_classes = spec.default_num_classes
    if not isinstance(num_classes, int) or num_classes < 0:
        raise ValueError(f"num_classes must be a positive integer (or 0: pooled features), "
                         f"got {num_classes!r}")
    if spec.family == "imagenet":
        block, layers = IMAGENET_LAYERS[spec.depth]
        widths, stem = IMAGENET_WIDTHS, "imagenet"
    else:
        block, n = BasicBlock, (spec.depth - 2) // 6
        layers, widths, stem = (n, n, n), CIFAR_WIDTHS, "cifar"
    if stride_in_1x1 and block is not Bottleneck:
        raise ValueError(
            f"stride_in_1x1 applies to bottleneck models (resnet50/101/152), not {name}"
        )
    if not spec.residual:
        block = _PLAIN[block]
    model = ResNet(
        block, layers, widths, stem=stem, num_classes=max(num_classes, 1), shortcut=shortcut,
        stride_in_1x1=stride_in_1x1, zero_init_residual=zero_init_residual, conv_init=conv_init,
        groups=spec.groups, width_per_group=spec.width_per_group,
    )
    # What built it, so that weights files and run directories can rebuild it.
    model.model_name = name
    model.model_options = {
        "num_classes": num_classes, "shortcut": shortcut, "stride_in_1x1": stride_in_1x1,
    }
    model.input_spec = dict(DEFAULT_INPUT_SPEC[spec.family])  # what its inputs should be
    if pretrained:
        _load_pretrained(model, name, pretrained)
    if num_classes == 0:
        model.reset_classifier(0)
    return model


def _load_pretrained(model: nn.Module, name: str, pretrained: bool | str) -> None:
    from .weights import WeightsError, init_from

    if pretrained is True:
        try:
            from torchvision.models import list_models as tv_models
        except ImportError as exc:  # pragma: no cover - torchvision is a dependency
            raise WeightsError("pretrained=True needs torchvision") from exc
        if name not in tv_models():
            raise WeightsError(f"{name}: torchvision publishes no weights for it; pass "
                               "pretrained='path/to/weights' instead")
        source = f"torchvision:{name}"
    else:
        source = str(pretrained)
    _, spec = init_from(model, source)
    model.input_spec.update({k: v for k, v in spec.items() if k != "class_names"})
    if spec.get("class_names") and model.fc.out_features == len(spec["class_names"]):
        model.class_names = list(spec["class_names"])
