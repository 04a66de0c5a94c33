"""One description of a model: its registered name and the options that build it.

:class:`ModelArgs` is what :func:`~deepres.models.registry.create_model` takes whole, what a
deepres weights file saves (``model`` and ``model_options`` in its metadata) and restores, and
what a training run's ``--model`` options become. Each option and its check is declared here
once: a new model option is a field of this class and its use in the builder.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from ..runtime.options import number, option
from .choices import CONV_INITS, SHORTCUTS
from .metakeys import MODEL_OPTIONS

if typing.TYPE_CHECKING:  # torch-free at import time: the command line's flags come from here
    from .names import ModelSpec

# The options a weights file's ``model_options`` may carry (the rest only initialise weights).
SAVED = ("num_classes", "shortcut", "stride_in_1x1", "zero_init_residual", "resnet_d",
         "dropout", "in_chans")


def _in_chans(text: str) -> int:
    """``--in-chans``: deepres reads images as RGB, so a run trains on 3 channels or their
    luma (the Python API takes any count)."""
    import argparse

    if text not in ("1", "3"):
        raise argparse.ArgumentTypeError(f"must be 3 (RGB) or 1 (grayscale), not {text!r}: "
                                         "images are read as RGB; other channel counts are "
                                         "for one's own tensors (create_model(in_chans=N))")
    return int(text)


@dataclass(frozen=True)
class ModelArgs:
    """A model's name and options; None means the family's default (:meth:`settled` fills
    it in).

    Attributes:
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
        resnet_d: ImageNet nets: ResNet-D (He et al. 2019, "Bag of Tricks"): a deep stem of
            three 3x3 convolutions and average pooling before each downsampling projection.
        dropout: wide and pre-activation basic blocks: dropout between the two convolutions
            (Wide ResNets use 0.3).
        drop_path_rate: stochastic depth (Huang et al. 2016) of the residual branches, rising
            linearly from 0 at the first block to this at the last; off in evaluation.
        in_chans: input channels (1: grayscale; more: multispectral). Pretrained RGB weights
            are adapted as timm does: the first convolution's filters summed over RGB for one
            channel, repeated and scaled by 3/in_chans for more. Inputs are then the user's own
            tensors: deepres's data pipeline, eval and serve read RGB images.
    """

    # Each option's command-line flag (``deepres train``: a run's ``model`` section embeds
    # this class, train/config.py ModelConfig) is declared with it; num_classes is the data's.
    name: str = option(help="a name from `deepres models` (default resnet20)", flag="model")
    num_classes: int | None = None
    shortcut: str | None = option(None, choices=SHORTCUTS, help="A (zero-padded identity), B "
                                  "(projection where the shape changes) or C (all projection), "
                                  "§4.1 (default: A for CIFAR nets, B for ImageNet ones)")
    stride_in_1x1: bool = option(False, switch="on", help="bottleneck nets: the downsampling "
                                 "stride in the first 1x1 conv, as the paper's models "
                                 "(default: in the 3x3, as torchvision)")
    zero_init_residual: bool = option(False, switch="both", help="start each residual "
                                      "branch's last BN at zero (torchvision's)")
    # Runs saved before conv_init existed used fan_out, which is why it is the default.
    conv_init: str = option("fan_out", choices=CONV_INITS, help="He initialisation of the "
                            "convolutions: fan_in (the paper's reference [13]; the paper's "
                            "recipes) or fan_out (torchvision's; other recipes)")
    resnet_d: bool = option(False, switch="on", help="ImageNet nets: ResNet-D's deep stem and "
                            "average-pool shortcuts (He et al. 2019)")
    dropout: float = option(0.0, parse=number(float, 0.0, 0.9), help="wide and pre-activation "
                            "basic blocks: dropout between the convolutions (WRN: 0.3)")
    drop_path_rate: float = option(0.0, parse=number(float, 0.0, 0.99), help="stochastic depth: "
                                   "the chance of dropping a residual branch, rising linearly "
                                   "to this at the last block (timm's; 0.05-0.1 is common)")
    # The command line's --in-chans: 1 trains a grayscale network on the luma of the (RGB-read)
    # images; other counts need one's own tensors (create_model(in_chans=N)).
    in_chans: int = option(3, parse=_in_chans, help="input channels: 3 (RGB) or 1 (grayscale: "
                           "the network reads the luma of each image; --init RGB weights are "
                           "summed over their colours, as timm)")

    @property
    def spec(self) -> ModelSpec:
        from .names import resolve

        return resolve(self.name)

    def settled(self) -> ModelArgs:
        """These options checked against the model family, with its defaults filled in; a
        bad option raises ValueError naming it and what to do."""
        spec = self.spec
        shortcut = spec.default_shortcut if self.shortcut is None else self.shortcut
        if shortcut not in SHORTCUTS:
            raise ValueError(f"shortcut must be 'A', 'B' or 'C', got {shortcut!r}")
        if not spec.residual and shortcut != spec.default_shortcut:
            raise ValueError(f"{self.name} is a plain network with no shortcuts; drop "
                             f"shortcut={shortcut!r}")
        n = spec.default_num_classes if self.num_classes is None else self.num_classes
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise ValueError(f"num_classes must be a positive integer (or 0: pooled "
                             f"features), got {n!r}")
        if self.conv_init not in CONV_INITS:
            raise ValueError(f"conv_init must be one of {', '.join(CONV_INITS)}, got "
                             f"{self.conv_init!r}")
        if self.stride_in_1x1 and not spec.bottleneck:
            raise ValueError(f"stride_in_1x1 applies to bottleneck models "
                             f"(resnet50/101/152), not {self.name}")
        if self.resnet_d and (spec.family != "imagenet" or spec.arch != "original"):
            raise ValueError(f"resnet_d (a deep stem and average-pool shortcuts, He et al. "
                             f"2019) applies to the paper's ImageNet nets, not {self.name}")
        if self.dropout and not (spec.arch == "preact" and not spec.bottleneck):
            raise ValueError(f"dropout between the convolutions is the wide/pre-activation "
                             f"basic block's (wrn_D_K, preact_resnetN), not {self.name}'s")
        if not isinstance(self.in_chans, int) or isinstance(self.in_chans, bool) or \
                self.in_chans < 1:
            raise ValueError(f"in_chans must be a positive integer, got {self.in_chans!r}")
        if not 0.0 <= self.drop_path_rate < 1.0:
            raise ValueError(f"drop_path_rate must be at least 0 and below 1, got "
                             f"{self.drop_path_rate!r}")
        if self.drop_path_rate and not spec.residual:
            raise ValueError(f"drop_path_rate drops residual branches (stochastic depth); "
                             f"{self.name} is a plain network with none")
        return replace(self, shortcut=shortcut, num_classes=n)

    def saved_options(self) -> dict[str, Any]:
        """The ``model_options`` a weights file keeps: what rebuilds the same tensors (the
        flags that are off by default only when on, as files have always had them)."""
        return {"num_classes": self.num_classes, "shortcut": self.shortcut,
                "stride_in_1x1": self.stride_in_1x1,
                **({"resnet_d": True} if self.resnet_d else {}),
                **({"dropout": self.dropout} if self.dropout else {}),
                **({"in_chans": self.in_chans} if self.in_chans != 3 else {})}

    @classmethod
    def from_saved(cls, name: str, options: Mapping[str, Any]) -> ModelArgs:
        """The description a weights file's metadata holds; an unknown option or a value of
        the wrong type raises ValueError naming the option."""
        if not isinstance(options, Mapping):
            raise ValueError(f"'{MODEL_OPTIONS}' must be a JSON object")
        types = _field_types()
        for key, value in options.items():
            if key not in SAVED:
                raise ValueError(f"'{MODEL_OPTIONS}' has an unknown option {key!r}; known: "
                                 f"{', '.join(SAVED)}")
            want = types[key]
            if not isinstance(value, want) or (int in want and isinstance(value, bool)):
                raise ValueError(f"'model_options.{key}' must be a {want[0].__name__}, not "
                                 f"{value!r}")
        if options.get("shortcut") not in (None, *SHORTCUTS):
            raise ValueError(f"'model_options.shortcut' must be A, B or C, not "
                             f"{options['shortcut']!r}")
        n = options.get("num_classes")
        if n is not None and n < 1:
            raise ValueError(f"'model_options.num_classes' must be at least 1, not {n}")
        return cls(name=name, **dict(options))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _field_types() -> dict[str, tuple[type, ...]]:
    """Each option's accepted Python types, from the field annotations (a float takes an int)."""
    hints = typing.get_type_hints(ModelArgs)
    out = {}
    for f in fields(ModelArgs):
        args = typing.get_args(hints[f.name]) or (hints[f.name],)
        kinds = tuple(a for a in args if a is not type(None))
        out[f.name] = (*kinds, int) if float in kinds else kinds
    return out
