"""Building blocks of residual and plain networks (He et al. 2015, §3).

Parameter names follow torchvision's ``models/resnet.py`` (``conv1``, ``bn1``, ...,
``downsample.0`` / ``downsample.1``) so that its weights load without renaming.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

Shortcut = Literal["A", "B", "C"]
SHORTCUT_OPTIONS: tuple[str, ...] = ("A", "B", "C")


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution with padding 1; no bias because BN follows every convolution (§3.4)."""
    return nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution, used by bottlenecks and projection shortcuts."""
    return nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False)


class ZeroPadShortcut(nn.Module):
    """Option A (§4.1): identity with extra channels zero-padded; no parameters.

    Where the feature map shrinks, the identity is taken with stride 2 ("performed with a
    stride of 2", §3.3), i.e. by keeping every other pixel.
    """

    def __init__(self, in_planes: int, out_planes: int, stride: int) -> None:
        super().__init__()
        if out_planes < in_planes:
            raise ValueError(
                f"option A cannot shrink channels ({in_planes} -> {out_planes}); use shortcut='B'"
            )
        self.in_planes, self.out_planes, self.stride = in_planes, out_planes, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        extra = self.out_planes - self.in_planes
        if extra:
            x = F.pad(x, (0, 0, 0, 0, 0, extra))
        return x

    def extra_repr(self) -> str:
        return f"{self.in_planes}->{self.out_planes}, stride={self.stride}"


def make_shortcut(
    option: str, in_planes: int, out_planes: int, stride: int, avg_down: bool = False
) -> nn.Module | None:
    """The shortcut of one block, by the paper's option (§4.1, Table 3).

    Returns ``None`` for a plain identity (no module, so no state-dict keys), a
    :class:`ZeroPadShortcut` for option A where dimensions grow, or a projection
    ``Sequential(conv1x1, BN)`` named like torchvision's ``downsample``. ``avg_down``
    (ResNet-D, He et al. 2019): a downsampling projection averages 2x2 windows first and
    convolves with stride 1, so no input pixel is skipped.
    """
    if option not in SHORTCUT_OPTIONS:
        raise ValueError(f"shortcut must be one of {SHORTCUT_OPTIONS}, got {option!r}")
    grows = stride != 1 or in_planes != out_planes
    if option == "C" or (option == "B" and grows):
        if avg_down and stride > 1:
            return nn.Sequential(nn.AvgPool2d(stride, stride, ceil_mode=True,
                                              count_include_pad=False),
                                 conv1x1(in_planes, out_planes), nn.BatchNorm2d(out_planes))
        return nn.Sequential(conv1x1(in_planes, out_planes, stride), nn.BatchNorm2d(out_planes))
    if option == "A" and grows:
        return ZeroPadShortcut(in_planes, out_planes, stride)
    return None


class DropPath(nn.Module):
    """Stochastic depth (Huang et al. 2016), per image: in training a residual branch is kept
    with probability ``1 - p`` and scaled by ``1 / (1 - p)``, so that its expectation is
    unchanged; in evaluation it is the identity."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask.div_(keep)

    def extra_repr(self) -> str:
        return f"p={self.p:g}"


class ResidualBlockBase(nn.Module):
    """What every block shares: ``y = relu(F(x) + shortcut(x))``, or ``relu(F(x))`` when plain.

    Subclasses define ``residual_branch`` (F), ``downsample`` (the shortcut; None for the
    identity) and ``relu``.
    """

    expansion = 1
    residual = True
    downsample: nn.Module | None
    relu: nn.Module

    def residual_branch(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.residual_branch(x)
        if self.residual:
            drop = self._modules.get("drop_path")  # set by ResNet(drop_path_rate=...)
            if drop is not None:
                out = drop(out)
            # y = F(x) + x, then ReLU after the addition (§3.2, Fig. 2).
            out = out + (x if self.downsample is None else self.downsample(x))
        return self.relu(out)


class BasicBlock(ResidualBlockBase):
    """Two 3x3 convolutions with a shortcut around them (Fig. 2 / Fig. 5 left)."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1, shortcut: str = "B",
                 stride_in_1x1: bool = False, groups: int = 1, base_width: int = 64,
                 avg_down: bool = False) -> None:
        super().__init__()
        del stride_in_1x1  # only meaningful for bottlenecks
        if groups != 1 or base_width != 64:
            raise ValueError("grouped or widened 3x3 convolutions (ResNeXt, wide ResNets) are "
                             "built on bottleneck blocks, not basic blocks")
        out_planes = planes * self.expansion
        self.conv1 = conv3x3(in_planes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = (
            make_shortcut(shortcut, in_planes, out_planes, stride, avg_down) if self.residual
            else None
        )
        self.stride = stride

    def residual_branch(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        return self.bn2(self.conv2(out))

    @property
    def last_bn(self) -> nn.BatchNorm2d:
        """The BN whose output is added to the shortcut (zero-initialised on request)."""
        return self.bn2


class Bottleneck(ResidualBlockBase):
    """1x1 reduce, 3x3, 1x1 restore, with a shortcut around them (Fig. 5 right, §4.1).

    ``stride_in_1x1=True`` puts a downsampling block's stride in the first 1x1 convolution,
    as the paper's released models do (Table 1's FLOPs); the default puts it in the 3x3
    ("ResNet v1.5", torchvision's choice).

    ``groups`` and ``base_width`` widen and split the 3x3 as the paper's successors do, with
    torchvision's arithmetic: the inner width is ``planes * base_width / 64 * groups``.
    ResNeXt (Xie et al. 2017) uses 32 groups of 4 or 8 channels; wide ResNets (Zagoruyko and
    Komodakis 2016, torchvision's ``wide_resnet50_2``) double the inner width (base 128).
    """

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1, shortcut: str = "B",
                 stride_in_1x1: bool = False, groups: int = 1, base_width: int = 64,
                 avg_down: bool = False) -> None:
        super().__init__()
        out_planes = planes * self.expansion
        width = int(planes * (base_width / 64.0)) * groups
        s1, s3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = conv1x1(in_planes, width, s1)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=s3, padding=1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, out_planes)
        self.bn3 = nn.BatchNorm2d(out_planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = (
            make_shortcut(shortcut, in_planes, out_planes, stride, avg_down) if self.residual
            else None
        )
        self.stride = stride

    def residual_branch(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.bn3(self.conv3(out))

    @property
    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn3


class PlainBasicBlock(BasicBlock):
    """A basic block with no shortcut at all: the paper's plain networks (§4.1, Fig. 3 middle)."""

    residual = False


class PlainBottleneck(Bottleneck):
    """A bottleneck block with no shortcut at all (plain twin of ResNet-50/101/152)."""

    residual = False


Block = type[BasicBlock] | type[Bottleneck]
