"""A model's input as a transform for one's own loader (timm's ``resolve_data_config`` and
``create_transform``): ``data_config(model)`` says what the model expects, and
``create_transform(config)`` is a torchvision v2 transform of one image (PIL, or a uint8 or
float tensor) into the model's input.

At test time the transform is the one ``deepres eval`` and ``predict`` apply (the same resize
code, so the same pixels): shorter side to the test resize, centre crop, the weights' mean
(per pixel where the paper subtracts one, §3.4 and §4.2) and std. With ``training=True`` it is
the paper's augmentation, per image: CIFAR nets pad 4 pixels, crop and flip (§4.2); ImageNet
nets resize the shorter side to a random size in [256, 480], crop and flip (§3.4). deepres's own
training applies the same policy to whole batches on the device (data/augment.py), so the
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
    return spec.data_config()


# timm's data-config keys that an ``args`` dict may override (``img_size``: a side)
_OVERRIDES = ("input_size", "img_size", "interpolation", "mean", "std", "crop_pct", "crop_mode")
_OURS = ("test_resize", "per_pixel_mean", "input_spec")  # what timm's keys cannot hold


def resolve_data_config(args: dict[str, Any] | None = None, pretrained_cfg: Any = None,
                        model: Any = None, use_test_size: bool = False, verbose: bool = False,
                        default_cfg: Any = None) -> dict[str, Any]:
    """timm's ``resolve_data_config``: the data config of ``model`` (or of a
    ``pretrained_cfg``), with the non-None values of ``args`` put over it. A config whose
    mean, std, size or crop an override changes no longer carries the model's
    ``input_spec`` (its per-pixel mean becomes the channel means). ``use_test_size`` changes
    nothing (deepres models test at their training size); ``verbose`` prints the result."""
    source = model if model is not None else (pretrained_cfg or default_cfg)
    if source is None:
        raise ValueError("resolve_data_config needs model= (a deepres model or Predictor) or "
                         "pretrained_cfg=")
    if isinstance(source, dict):
        cfg = {k: v for k, v in source.items() if k in (*_OVERRIDES, *_OURS)}
    else:
        cfg = data_config(source)
    changed = {k: v for k, v in (args or {}).items() if k in _OVERRIDES and v is not None}
    if "img_size" in changed:
        side = changed.pop("img_size")
        side = side[-1] if isinstance(side, list | tuple) else side
        changed.setdefault("input_size", (cfg.get("input_size", (3,))[0], int(side), int(side)))
    for key, value in changed.items():
        value = tuple(value) if isinstance(value, list) else value
        if cfg.get(key) != value:
            cfg[key] = value
            if key not in ("interpolation", "crop_mode"):
                cfg.pop("input_spec", None)
                cfg.pop("test_resize", None)
                cfg["per_pixel_mean"] = False
    if verbose:
        print("data config:", {k: v for k, v in cfg.items() if k != "input_spec"})
    return cfg


def resolve_model_data_config(model: Any, args: dict[str, Any] | None = None,
                              pretrained_cfg: Any = None, use_test_size: bool = False,
                              verbose: bool = False) -> dict[str, Any]:
    """timm's ``resolve_model_data_config``: :func:`resolve_data_config` for ``model``."""
    return resolve_data_config(args, pretrained_cfg, model, use_test_size, verbose)


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


def create_transform(config: Any = None, training: bool = False, *,
                     is_training: bool | None = None, **keys: Any) -> nn.Module:
    """The transform of one image into the model's input (see the module's docstring).

    ``config`` is a data config (:func:`data_config`, :func:`resolve_data_config`); timm's
    forms work too: ``create_transform(**config)``, or ``create_transform(input_size, ...)``,
    with ``is_training`` for ``training``. timm's augmentation options (``auto_augment``,
    ``re_prob``, ...) are refused: deepres trains with the paper's augmentation."""
    from torchvision.transforms import v2

    if isinstance(config, dict):
        keys = {**config, **keys}
    elif config is not None:  # timm's first positional argument: input_size
        keys = {**keys, "input_size": config}
    unknown = sorted(k for k in keys if k not in (*_OVERRIDES, *_OURS))
    if unknown:
        raise ValueError(f"create_transform does not take {', '.join(unknown)}: deepres "
                         "applies the paper's augmentation (training=True) or its test view; "
                         "give a data config's keys")
    if keys.get("crop_mode", "center") != "center":
        raise ValueError(f"crop_mode {keys['crop_mode']!r}: deepres's test view is a centre "
                         "crop ('center')")
    if isinstance(keys.get("input_size"), int):
        keys["input_size"] = (3, keys["input_size"], keys["input_size"])
    training = training if is_training is None else is_training
    spec = _spec_of(keys)
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
