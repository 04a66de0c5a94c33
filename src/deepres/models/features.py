"""A network as a backbone of feature maps (timm's ``features_only=True``): the stem's
activation and each stage's output, for a detection or segmentation neck such as an FPN (the
paper's §4.3 detection work uses ResNet stages this way)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import torch
from torch import nn

from .resnet import FeatureInfo, FeatureInfoList, ResNet

__all__ = ["FeatureInfoList", "FeatureMaps"]


class FeatureMaps(nn.Module):
    """``model`` without its head, returning the maps at ``out_indices`` as a list: 0 is the
    stem's activation before max pooling (stride 2 on ImageNet nets, 1 on CIFAR ones), 1 to
    4 (or 3 on CIFAR nets) the stages' outputs. Its children keep the network's names, so the
    network's weights load into it unchanged."""

    def __init__(self, model: ResNet, out_indices: Sequence[int] | None = None) -> None:
        super().__init__()
        imagenet = model.stem_kind == "imagenet"
        stem = model.feature_info[0]
        # the stem's activation comes before max pooling: half the stride after it
        maps = [FeatureInfo("act1", stem.channels, stem.stride // 2 if imagenet else 1, 0),
                *(replace(f, index=i) for i, f in enumerate(model.feature_info[1:], 1))]
        n = len(maps)
        indices = tuple(range(n)) if out_indices is None else tuple(out_indices)
        bad = [i for i in indices if not isinstance(i, int) or not -n <= i < n]
        if bad or not indices:
            raise ValueError(f"out_indices must be indices of the {n} feature maps of "
                             f"{getattr(model, 'model_name', 'this model')} (0 = the stem, "
                             f"1..{n - 1} = the stages; negative counts from the end), got "
                             f"{list(indices)}")
        self.out_indices = tuple(sorted({i % n for i in indices}))
        self.conv1, self.bn1, self.relu, self.maxpool = (model.conv1, model.bn1, model.relu,
                                                         model.maxpool)
        self.stage_names = list(model.stage_names[:max(self.out_indices)])
        for name in self.stage_names:
            self.add_module(name, getattr(model, name))
        self.feature_info = FeatureInfoList(maps[i] for i in self.out_indices)
        self.input_spec = getattr(model, "input_spec", None)
        self.pretrained_cfg = self.default_cfg = model.pretrained_cfg  # timm's, as built

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = self.relu(self.bn1(self.conv1(x)))
        maps = [out]
        out = self.maxpool(out)
        for name in self.stage_names:
            out = getattr(self, name)(out)
            maps.append(out)
        return [maps[i] for i in self.out_indices]
