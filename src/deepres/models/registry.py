"""Model registry: names to builders, ``create_model`` and ``list_models``.

ImageNet networks (Table 1): resnet18/34/50/101/152 and their plain twins plain18..plain152.
CIFAR networks (§4.2): resnetN / plainN for every depth N = 6n+2; the names ``cifar_resnetN`` and
``cifar_plainN`` always mean the CIFAR network (``resnet50`` and ``resnet152`` are the ImageNet
ones, though 50 and 152 are also of the form 6n+2).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields, replace
from typing import Any

from torch import nn

from .blocks import BasicBlock, Bottleneck, PlainBasicBlock, PlainBottleneck
from .card import ModelCard, origin_of
from .description import ModelArgs
from .names import CIFAR_WIDTHS, DEFAULT_INPUT_SPEC, IMAGENET_WIDTHS, resolve
from .preact import PreActBasicBlock, PreActBottleneck
from .resnet import ResNet

# (arch, bottleneck, residual) -> the block class
BLOCKS = {("original", False, True): BasicBlock, ("original", True, True): Bottleneck,
          ("original", False, False): PlainBasicBlock, ("original", True, False): PlainBottleneck,
          ("preact", False, True): PreActBasicBlock, ("preact", True, True): PreActBottleneck}


def create_model(
    name: str | ModelArgs,
    *,
    pretrained: bool | str = False,
    features_only: bool = False,
    out_indices: Sequence[int] | None = None,
    **options: Any,
) -> nn.Module:
    """Build a registered model with He initialisation.

    Args:
        name: a name from :func:`list_models`, or any CIFAR depth ``resnetN``/``plainN``,
            N=6n+2; or a whole :class:`~deepres.models.description.ModelArgs` (then the
            options are not given again).
        options: the model's options by name (``num_classes``, ``shortcut``,
            ``stride_in_1x1``, ``zero_init_residual``, ``conv_init``, ``resnet_d``,
            ``dropout``, ``drop_path_rate``, ``in_chans``), each described and checked once,
            on :class:`~deepres.models.description.ModelArgs`.
        pretrained: True for published weights of this name: deepres's own where it ships
            some (its CIFAR-10 nets, ``deepres models`` lists them; sha256-checked), else
            torchvision's (downloaded once into torch's hub cache, hash-checked); or a source:
            ``deepres:NAME[.TAG]``, ``torchvision:NAME[.WEIGHTS]`` or a weights file (deepres,
            torchvision, timm). The classifier is kept when ``num_classes`` fits it, else
            new. The model's ``input_spec`` (an :class:`~deepres.inputspec.InputSpec`) says
            how its inputs must look.
        features_only: a backbone (timm's meaning, models/features.py): the model returns
            the feature maps at ``out_indices`` as a list (0: the stem's activation, 1..: the
            stages' outputs; default all), described by its ``feature_info``.
    """
    tag = None
    if isinstance(name, str) and "." in name:  # timm's NAME.TAG: published weights by tag
        name, tag, pretrained = _tagged(name, pretrained)
    args = _described(name, options)
    if args.num_classes is None and isinstance(pretrained, str):
        # Weights with a classifier of their own size (a 3-class fine-tune) keep it, with their
        # class names, rather than getting a fresh head of the family's default size.
        args = replace(args, num_classes=_file_classes(pretrained))
    model = build(args.settled())
    if pretrained:
        _load_pretrained(model, args.name, pretrained)
        if tag is not None:
            model.card = replace(model.card, tag=tag)
    if model.model_args.num_classes == 0:
        model.reset_classifier(0)
    if features_only:
        from .features import FeatureMaps

        return FeatureMaps(model, out_indices)
    if out_indices is not None:
        raise ValueError("out_indices selects feature maps; it needs features_only=True")
    return model


def _tagged(name: str, pretrained: bool | str) -> tuple[str, str, bool | str]:
    """``NAME.TAG`` as (name, tag, what to load): with ``pretrained=True`` the weights so
    tagged (models/published.py ``pretrained_tags``); an unknown tag is an error listing the
    name's tags."""
    from .published import pretrained_tags

    base, _, tag = name.partition(".")
    resolve(base)  # an unknown name is named as such, with suggestions
    tags = pretrained_tags(base)
    if tag not in tags:
        known = ", ".join(f"{base}.{t}" for t in tags) or "none"
        raise ValueError(f"{name}: no published weights tagged {tag!r} for {base}; published: "
                         f"{known} (deepres.list_models({base!r}, pretrained=True))")
    if isinstance(pretrained, str) and pretrained:
        raise ValueError(f"create_model({name!r}, pretrained={pretrained!r}): give the weights "
                         "by the tag or by pretrained=SOURCE, not both")
    return base, tag, tags[tag] if pretrained else False


def _described(name: str | ModelArgs, options: dict[str, Any]) -> ModelArgs:
    if isinstance(name, ModelArgs):
        if options:
            raise ValueError(f"create_model takes a ModelArgs whole: give {', '.join(options)} "
                             "on it (dataclasses.replace), not beside it")
        return name
    known = [f.name for f in fields(ModelArgs) if f.name != "name"]
    unknown = [k for k in options if k not in known]
    if unknown:
        raise ValueError(f"create_model: unknown option(s) {', '.join(unknown)}; known: "
                         f"{', '.join(known)}, pretrained, features_only, out_indices")
    return ModelArgs(name, **options)


def build(args: ModelArgs) -> nn.Module:
    """The freshly initialised network of settled ``args`` (:meth:`ModelArgs.settled`), which
    it keeps as ``model_args`` (and ``model_name``/``model_options``, what a weights file
    saves) so that weights files and run directories can rebuild it."""
    spec = args.spec
    block = BLOCKS[(spec.arch, spec.bottleneck, spec.residual)]
    base = IMAGENET_WIDTHS if spec.family == "imagenet" else CIFAR_WIDTHS
    # every option but the name and the class count reaches the network by its own name
    options = {f.name: getattr(args, f.name) for f in fields(ModelArgs)
               if f.name not in ("name", "num_classes")}
    model = ResNet(block, spec.layers, [w * spec.widen for w in base], stem=spec.family,
                   num_classes=max(args.num_classes, 1), groups=spec.groups,
                   width_per_group=spec.width_per_group, **options)
    # what it is, and what its inputs should be (its family's until weights say otherwise)
    model.card = ModelCard(args, DEFAULT_INPUT_SPEC[spec.family], origin=args.name)
    return model


def _file_classes(source: str) -> int | None:
    """The classifier size of a weights file or ``deepres:`` name (None: no file, or no fc)."""
    if source.startswith("torchvision:"):
        return None
    from .published import local_path
    from .source import read_source

    path = local_path(source)
    shapes = _header_shapes(path) if str(path).endswith(".safetensors") else None
    if shapes is None:
        return read_source(source).classifier_rows
    fc = next((v for k, v in shapes.items() if k.endswith("fc.weight") and len(v) == 2), None)
    return int(fc[0]) if fc is not None else None


def _header_shapes(path: object) -> dict[str, tuple[int, ...]] | None:
    """A .safetensors file's tensor shapes from its header alone (no tensor is read twice);
    None when it cannot be read (read_weights then names what is wrong)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), "pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except (OSError, SafetensorError):
        return None


def _load_pretrained(model: nn.Module, name: str, pretrained: bool | str) -> None:
    from .errors import WeightsError
    from .transfer import init_from

    if pretrained is True:
        # deepres's own weights where it publishes some (its CIFAR nets), else torchvision's
        from .published import PREFIX, weights_for

        if weights_for(name):
            source = PREFIX + name
        else:
            try:
                from torchvision.models import list_models as tv_models
            except ImportError as exc:  # pragma: no cover - torchvision is a dependency
                raise WeightsError("pretrained=True needs torchvision") from exc
            if name not in tv_models():
                raise WeightsError(f"{name}: neither deepres nor torchvision publishes weights "
                                   "for it (deepres models lists those that have some); pass "
                                   "pretrained='path/to/weights' instead")
            source = f"torchvision:{name}"
    else:
        source = str(pretrained)
    init = init_from(model, source)
    model.card = replace(model.card, input_spec=init.spec, origin=origin_of(source),
                         class_names=tuple(init.class_names) if init.class_names and
                         model.fc.out_features == len(init.class_names) else None)
