"""The ResNet family: ImageNet networks (Table 1) and CIFAR networks (§4.2), residual and plain."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .blocks import Block, conv3x3
from .choices import CONV_INITS

if TYPE_CHECKING:
    from ..inputspec import InputSpec
    from .card import ModelCard
    from .description import ModelArgs


# timm's keys for a feature map -> the FeatureInfo field that answers them
_TIMM_KEYS = {"module": "name", "num_chs": "channels", "reduction": "stride", "index": "index"}


@dataclass(frozen=True)
class FeatureInfo(Mapping):
    """One backbone output: its name, channels and stride relative to the input; also read as
    timm's dict (``info["num_chs"]``, ``["reduction"]``, ``["module"]``, and ``["index"]`` of
    the maps a ``features_only`` model returns)."""

    name: str
    channels: int
    stride: int
    index: int | None = None  # its place among all the maps (features_only), else None

    def __getitem__(self, key: str) -> Any:
        if key not in _TIMM_KEYS or (key == "index" and self.index is None):
            raise KeyError(key)
        return getattr(self, _TIMM_KEYS[key])

    def __iter__(self) -> Iterator[str]:
        return (k for k in _TIMM_KEYS if k != "index" or self.index is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)



class FeatureInfoList(list):
    """A network's feature maps in order, as timm's ``feature_info`` answers:
    ``channels()``, ``reduction()``, ``module_name()``, ``get_dicts()``; each entry is a
    :class:`FeatureInfo` (also readable as timm's dict)."""

    def channels(self) -> list[int]:
        return [f.channels for f in self]

    def reduction(self) -> list[int]:
        return [f.stride for f in self]

    def module_name(self) -> list[str]:
        return [f.name for f in self]

    def get_dicts(self) -> list[dict[str, Any]]:
        return [dict(f) for f in self]


class ResNet(nn.Module):
    """A stem, a stack of stages of blocks, global average pooling and a linear classifier.

    ``stem="imagenet"``: 7x7/2 convolution with 64 filters and 3x3/2 max pooling (Table 1).
    ``stem="cifar"``: one 3x3 convolution with ``widths[0]`` filters (§4.2).
    Each stage after the first halves the feature map with a stride-2 first block.
    """

    # What it is (models/card.py): the description that built it, its input specification,
    # class names, tag and origin. create_model sets it; loading weights replaces it with the
    # file's. ``model_args``, ``input_spec`` and ``class_names`` are views of it.
    _card: ModelCard | None = None

    def __init__(
        self,
        block: Block,
        layers: Sequence[int],
        widths: Sequence[int],
        *,
        stem: str = "imagenet",
        num_classes: int = 1000,
        shortcut: str = "B",
        stride_in_1x1: bool = False,
        zero_init_residual: bool = False,
        conv_init: str = "fan_out",
        groups: int = 1,
        width_per_group: int = 64,
        resnet_d: bool = False,
        dropout: float = 0.0,
        drop_path_rate: float = 0.0,
        in_chans: int = 3,
    ) -> None:
        super().__init__()
        if conv_init not in CONV_INITS:
            raise ValueError(f"conv_init must be one of {', '.join(CONV_INITS)}, got {conv_init!r}")
        if len(layers) != len(widths):
            raise ValueError(f"layers {list(layers)} and widths {list(widths)} differ in length")
        if stem not in ("imagenet", "cifar"):
            raise ValueError(f"stem must be 'imagenet' or 'cifar', got {stem!r}")
        self.stem_kind = stem
        # Children are registered in execution order (conv1, bn1, relu, maxpool, layer1, ...),
        # as torchvision does: IntermediateLayerGetter-style wrappers run them in that order.
        imagenet = stem == "imagenet"
        # Pre-activation nets (He et al. 2016) end with BN-ReLU; on CIFAR the stem is the bare
        # convolution (the first block's BN-ReLU follows it), with 16 filters for wide nets.
        self.preact = getattr(block, "preact", False)
        self.inplanes = 64 if imagenet else (16 if self.preact else widths[0])
        self._make_stem(imagenet, resnet_d, in_chans)
        self.block_options = ({"dropout": dropout} if self.preact else {"avg_down": resnet_d})
        stem_stride = 4 if imagenet else 1

        self.feature_info = FeatureInfoList([FeatureInfo("stem", self.inplanes, stem_stride)])
        stride = stem_stride
        self.stage_names: list[str] = []
        for i, (count, width) in enumerate(zip(layers, widths, strict=True)):
            first_stride = 1 if i == 0 else 2
            stride *= first_stride
            name = f"layer{i + 1}"
            stage = self._make_stage(block, width, count, first_stride, shortcut, stride_in_1x1,
                                     groups, width_per_group)
            self.add_module(name, stage)
            self.stage_names.append(name)
            self.feature_info.append(FeatureInfo(name, self.inplanes, stride))

        self.final_bn: nn.Module | None = nn.BatchNorm2d(self.inplanes) if self.preact else None
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(self.inplanes, num_classes)
        self.num_features = self.inplanes
        self._init_weights(zero_init_residual, conv_init)
        if drop_path_rate:
            self._set_drop_path(drop_path_rate)

    def _set_drop_path(self, rate: float) -> None:
        """Stochastic depth (Huang et al. 2016) with the linear rule: the k-th of n residual
        blocks drops its branch with probability rate * k / (n - 1), from 0 at the first to
        ``rate`` at the last (timm's ``drop_path_rate``)."""
        from .blocks import DropPath

        blocks = [b for name in self.stage_names for b in getattr(self, name)
                  if getattr(b, "residual", False)]
        for k, b in enumerate(blocks):
            p = rate * k / max(len(blocks) - 1, 1)
            if p > 0:
                b.drop_path = DropPath(p)

    def _make_stem(self, imagenet: bool, resnet_d: bool, in_chans: int) -> None:
        """conv1, bn1, relu and maxpool, registered in that order (torchvision's); the first
        convolution takes ``in_chans`` channels (3: RGB)."""
        if imagenet and resnet_d:  # ResNet-D's deep stem: 3x3/2 to 32, 3x3 to 32, 3x3 to 64
            self.conv1: nn.Module = nn.Sequential(
                conv3x3(in_chans, 32, 2), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
                conv3x3(32, 32), nn.BatchNorm2d(32), nn.ReLU(inplace=True), conv3x3(32, 64))
        elif imagenet:
            self.conv1 = nn.Conv2d(in_chans, 64, kernel_size=7, stride=2, padding=3, bias=False)
        else:
            self.conv1 = conv3x3(in_chans, self.inplanes)
        bare = self.preact and not imagenet
        self.bn1: nn.Module = nn.Identity() if bare else nn.BatchNorm2d(self.inplanes)
        self.relu: nn.Module = nn.Identity() if bare else nn.ReLU(inplace=True)
        self.maxpool: nn.Module = (
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1) if imagenet else nn.Identity()
        )

    def _make_stage(self, block: Block, planes: int, count: int, stride: int, shortcut: str,
                    stride_in_1x1: bool, groups: int, width_per_group: int) -> nn.Sequential:
        blocks = []
        for j in range(count):
            blocks.append(block(self.inplanes, planes, stride if j == 0 else 1, shortcut,
                                stride_in_1x1, groups=groups, base_width=width_per_group,
                                **self.block_options))
            self.inplanes = planes * block.expansion
        return nn.Sequential(*blocks)

    def _init_weights(self, zero_init_residual: bool, conv_init: str) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                # He (MSRA) initialisation (§3.4, "as in [13]"): std sqrt(2 / n). [13] derives it
                # for n = k*k*c input connections ("fan_in", Caffe's MSRA filler default);
                # torchvision and fb.resnet.torch count outputs ("fan_out").
                nn.init.kaiming_normal_(m.weight, mode=conv_init, nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d | nn.GroupNorm):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
        if zero_init_residual:
            # Each residual branch then starts as zero, so each block starts as the identity
            # (Goyal et al. 2017); only meaningful where a shortcut exists.
            for m in self.modules():
                if getattr(m, "residual", False) and hasattr(m, "last_bn"):
                    nn.init.constant_(m.last_bn.weight, 0)

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.maxpool(self.relu(self.bn1(self.conv1(x))))

    def feature_maps(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The stem's and every stage's output, keyed as in :attr:`feature_info`.

        For ImageNet models the strides are 4 (stem, after max pooling), 4, 8, 16, 32
        (``layer1`` .. ``layer4``), the inputs a detection or segmentation neck expects.
        """
        feats = {"stem": self.stem(x)}
        out = feats["stem"]
        for name in self.stage_names:
            out = getattr(self, name)(out)
            feats[name] = out
        return feats

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last stage's feature map (timm's meaning): ``N x C x H/32 x W/32`` for
        ImageNet models. :meth:`feature_maps` gives every stage's."""
        out = self.stem(x)
        for name in self.stage_names:
            out = getattr(self, name)(out)
        if self.final_bn is not None:  # pre-activation: the last BN-ReLU before pooling
            out = torch.relu(self.final_bn(out))
        return out

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Global average pooling and the classifier on a feature map; ``pre_logits`` stops
        before the classifier (the pooled ``N x C`` features)."""
        pooled = torch.flatten(self.avgpool(x), 1)
        return pooled if pre_logits else self.fc(pooled)

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        """A new, freshly initialised classifier for ``num_classes`` (fine-tuning); 0 removes
        it, so that the model returns its pooled features (``N x num_features``), as timm's."""
        if not isinstance(num_classes, int) or num_classes < 0:
            raise ValueError(f"num_classes must be a positive integer (or 0: pooled "
                             f"features), got {num_classes!r}")
        ref = next(self.parameters())
        self.fc = (nn.Identity() if num_classes == 0 else
                   nn.Linear(self.num_features, num_classes, device=ref.device, dtype=ref.dtype))
        if self.model_args is not None:
            self.model_args = replace(self.model_args, num_classes=num_classes)
        if self.class_names is not None and len(self.class_names) != num_classes:
            self.class_names = None  # the new head's classes are not the old ones

    @property
    def card(self) -> ModelCard:
        """What this network is: description, input, classes, tag, origin (models/card.py)."""
        if self._card is None:
            from .card import ModelCard

            return ModelCard(None, None)
        return self._card

    @card.setter
    def card(self, card: ModelCard) -> None:
        self._card = card

    @property
    def model_args(self) -> ModelArgs | None:
        return self.card.args

    @model_args.setter
    def model_args(self, args: ModelArgs | None) -> None:
        self._card = replace(self.card, args=args)

    @property
    def input_spec(self) -> InputSpec | None:
        return self.card.input_spec

    @input_spec.setter
    def input_spec(self, spec: InputSpec | None) -> None:
        self._card = self.card.with_spec(spec)

    @property
    def class_names(self) -> list[str] | None:
        names = self.card.class_names
        return None if names is None else list(names)

    @class_names.setter
    def class_names(self, names: Sequence[str] | None) -> None:
        self._card = self.card.with_classes(names)

    @property
    def num_classes(self) -> int:
        """The classifier's outputs (0 once :meth:`reset_classifier` removed it), as timm's."""
        return self.fc.out_features if isinstance(self.fc, nn.Linear) else 0

    @property
    def pretrained_cfg(self) -> dict[str, Any]:
        """timm's description of a model and its weights, from :attr:`card`: ``architecture``
        and ``tag`` (``name.tag`` is what ``create_model(..., pretrained=True)`` loads),
        ``num_classes`` (this model's classifier: timm's gives the published weights' own,
        1000 under a new head), ``first_conv``, ``classifier`` and the data config's keys
        (:meth:`~deepres.inputspec.InputSpec.data_config`), so that timm's own
        ``resolve_data_config(model=...)`` reads it too. A fresh dict each time."""
        card = self.card
        in_chans = card.args.in_chans if card.args is not None else 3
        cfg: dict[str, Any] = {"architecture": card.name, "tag": card.tag,
                               "origin": card.origin or None, "num_classes": self.num_classes,
                               "first_conv": "conv1", "classifier": "fc"}
        if card.input_spec is not None:
            cfg.update(card.input_spec.data_config(in_chans))
        return cfg

    default_cfg = pretrained_cfg  # timm's older name

    @property
    def model_name(self) -> str:
        """The registered name that built this network (create_model); AttributeError when it
        was built directly."""
        if self.model_args is None:
            raise AttributeError("model_name: this ResNet was not built by create_model")
        return self.model_args.name

    @property
    def model_options(self) -> dict[str, Any]:
        """The options a weights file saves with the name, to rebuild the same tensors."""
        if self.model_args is None:
            raise AttributeError("model_options: this ResNet was not built by create_model")
        return self.model_args.saved_options()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))
