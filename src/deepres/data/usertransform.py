"""A model's input as a transform for one's own loader (timm's ``resolve_data_config`` and
``create_transform``): ``data_config(model)`` says what the model expects, and
``create_transform(config)`` is a torchvision v2 transform of one image (PIL, or a uint8 or
float tensor) into the model's input.

At test time the transform is the one ``deepres eval`` and ``predict`` apply (the same resize
code, so the same pixels): shorter side to the test resize, centre crop, the weights' mean
(per pixel where the paper subtracts one, §3.4 and §4.2) and std. With ``training=True`` it is
the paper's augmentation, per image: CIFAR nets pad 4 pixels, crop and flip (§4.2); ImageNet
nets resize the shorter side to a random size in [256, 480], crop and flip (§3.4). deepres's own
training applies the same policy to whole batches on the device (data/transforms.py), so the
random draws differ from this one's.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..inputspec import InputSpec, center_crop


def data_config(model: Any) -> dict[str, Any]:
    """What ``model`` (a deepres model, a :class:`~deepres.loaded.Predictor`, or an
    :class:`InputSpec`) expects, in timm's keys, with the specification itself under
    ``input_spec`` (it holds the per-pixel mean that the lists cannot)."""
    spec = model if isinstance(model, InputSpec) else getattr(model, "input_spec", None) \
        or getattr(model, "spec", None)
    if not isinstance(spec, InputSpec):
        raise ValueError(f"{type(model).__name__} has no input specification; pass a deepres "
                         "model, a Predictor or an InputSpec")
    return {"input_size": (3, spec.input_size, spec.input_size),
            "interpolation": spec.interpolation,
            "mean": tuple(spec.channel_mean.tolist()),
            "std": tuple(spec.std.tolist()) if spec.std is not None else (1.0, 1.0, 1.0),
            "crop_pct": spec.input_size / spec.test_resize, "crop_mode": "center",
            "test_resize": spec.test_resize, "per_pixel_mean": spec.per_pixel,
            "input_spec": spec}


def _spec_of(config: dict[str, Any]) -> InputSpec:
    spec = config.get("input_spec")
    if isinstance(spec, InputSpec):
        return spec
    try:
        size = int(config["input_size"][-1])
        resize = int(config.get("test_resize") or round(size / float(config["crop_pct"])))
        return InputSpec(size, resize, torch.tensor(config["mean"], dtype=torch.float32),
                         torch.tensor(config["std"], dtype=torch.float32),
                         config.get("interpolation", "bilinear"))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"a data config needs input_size, crop_pct (or test_resize), mean "
                         f"and std, as data_config() gives: {exc}") from exc


class _ToUint8(nn.Module):
    """PIL images and tensors (uint8, or float in [0, 1]) to a uint8 ``3 x H x W`` tensor."""

    def forward(self, img: Any) -> torch.Tensor:
        if not isinstance(img, torch.Tensor):
            from ..data.images import pil_to_array

            img = torch.from_numpy(pil_to_array(img)).permute(2, 0, 1).contiguous()
        if img.is_floating_point():
            img = img.mul(255).round_().clamp_(0, 255).to(torch.uint8)
        if img.dim() != 3 or img.shape[0] != 3 or img.dtype != torch.uint8:
            raise ValueError(f"an image must be RGB (3 x H x W), not {img.dtype} "
                             f"{tuple(img.shape)}")
        return img


class _TestView(nn.Module):
    def __init__(self, spec: InputSpec) -> None:
        super().__init__()
        self.spec = spec

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return self.spec.test_view(img)


class _ScaleAugment(nn.Module):
    """§3.4: the shorter side resized to a random size in [lo, hi], a random ``size`` crop."""

    def __init__(self, spec: InputSpec, lo: int, hi: int) -> None:
        super().__init__()
        self.spec, self.lo, self.hi = spec, lo, hi

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        side = int(torch.randint(self.lo, self.hi + 1, ()))
        img = self.spec.resize(img, side)
        size = self.spec.input_size
        top = int(torch.randint(0, img.shape[-2] - size + 1, ()))
        left = int(torch.randint(0, img.shape[-1] - size + 1, ()))
        return img[..., top:top + size, left:left + size]


class _Normalize(nn.Module):
    def __init__(self, spec: InputSpec) -> None:
        super().__init__()
        self.spec = spec

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return self.spec.normalize(img[None])[0]


def create_transform(config: dict[str, Any], training: bool = False) -> nn.Module:
    """The transform of one image into the model's input (see the module's docstring)."""
    from torchvision.transforms import v2

    spec = _spec_of(config)
    if not training:
        steps: list[nn.Module] = [_ToUint8(), _TestView(spec)]
    elif spec.input_size <= 64:  # CIFAR-sized: §4.2's pad-4 crops and flips
        steps = [_ToUint8(), v2.Lambda(lambda x: center_crop(spec.resize(x, spec.input_size),
                                                             spec.input_size)),
                 v2.RandomCrop(spec.input_size, padding=4), v2.RandomHorizontalFlip()]
    else:  # §3.4's scale augmentation, with 224 in [256, 480] scaled to the input size
        lo, hi = round(spec.input_size * 256 / 224), round(spec.input_size * 480 / 224)
        steps = [_ToUint8(), _ScaleAugment(spec, lo, hi), v2.RandomHorizontalFlip()]
    return v2.Compose([*steps, _Normalize(spec)])
