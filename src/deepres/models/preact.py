"""Pre-activation blocks (He et al. 2016, *Identity Mappings in Deep Residual Networks*): BN
and ReLU come before each convolution and nothing follows the addition, so the shortcut path
is a pure identity from block to block. Wide ResNets (Zagoruyko and Komodakis 2016) are
pre-activation basic blocks with wider stages and optional dropout between the convolutions.

A shortcut that changes shape is a 1x1 projection applied to the pre-activated input (as the
follow-up paper's and the WRN authors' code do), with no BN after it.
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import conv1x1, conv3x3


def _projection(option: str, in_planes: int, out_planes: int, stride: int) -> nn.Module | None:
    if option not in ("B", "C"):
        raise ValueError(f"pre-activation nets use projection shortcuts (B or C), not {option!r}")
    if option == "C" or stride != 1 or in_planes != out_planes:
        return conv1x1(in_planes, out_planes, stride)
    return None


class PreActBlockBase(nn.Module):
    """``y = x + F(x)`` with F starting from BN-ReLU; a projection sees the activated input."""

    expansion = 1
    residual = True
    preact = True
    downsample: nn.Module | None

    def branch(self, pre: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.relu(self.bn1(x))
        shortcut = x if self.downsample is None else self.downsample(pre)
        out = self.branch(pre)
        drop = self._modules.get("drop_path")  # set by ResNet(drop_path_rate=...)
        return (out if drop is None else drop(out)) + shortcut


class PreActBasicBlock(PreActBlockBase):
    """BN-ReLU-conv3x3, BN-ReLU-(dropout)-conv3x3, plus the shortcut (Fig. 4e of the paper)."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1, shortcut: str = "B",
                 stride_in_1x1: bool = False, groups: int = 1, base_width: int = 64,
                 dropout: float = 0.0) -> None:
        super().__init__()
        del stride_in_1x1, groups, base_width  # no bottleneck, no groups
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.relu = nn.ReLU(inplace=False)  # its input is also the projection's
        self.conv1 = conv3x3(in_planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()
        self.conv2 = conv3x3(planes, planes)
        self.downsample = _projection(shortcut, in_planes, planes, stride)
        self.stride = stride

    def branch(self, pre: torch.Tensor) -> torch.Tensor:
        out = self.conv1(pre)
        return self.conv2(self.dropout(self.relu(self.bn2(out))))

    @property
    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn2


class PreActBottleneck(PreActBlockBase):
    """BN-ReLU-conv1x1, BN-ReLU-conv3x3 (the stride), BN-ReLU-conv1x1 (4x), plus the shortcut."""

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1, shortcut: str = "B",
                 stride_in_1x1: bool = False, groups: int = 1, base_width: int = 64,
                 dropout: float = 0.0) -> None:
        super().__init__()
        del dropout
        width = int(planes * (base_width / 64.0)) * groups
        s1, s3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.relu = nn.ReLU(inplace=False)
        self.conv1 = conv1x1(in_planes, width, s1)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=s3, padding=1, groups=groups, bias=False)
        self.bn3 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.downsample = _projection(shortcut, in_planes, planes * self.expansion, stride)
        self.stride = stride

    def branch(self, pre: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.relu(self.bn2(self.conv1(pre))))
        return self.conv3(self.relu(self.bn3(out)))

    @property
    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn3
