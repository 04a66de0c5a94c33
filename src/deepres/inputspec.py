"""How a model's input must look: one frozen type that travels with the weights.

An :class:`InputSpec` holds the input size, the test-time resize, the interpolation, the mean
(per pixel, ``3 x H x W``, as the paper subtracts it, §3.4 and §4.2; or one per channel) and an
optional per-channel std (torchvision's published weights divide by one; the paper does not).
It is the only reader and writer of the ``input_*``/``test_resize`` metadata keys, and its
:meth:`~InputSpec.normalize` and :meth:`~InputSpec.test_view` are the one normaliser and the one
test transform. This module imports nothing of deepres: models, data, evaluate and export all
import it without importing each other.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F

INTERPOLATIONS = ("bilinear", "bicubic", "nearest")
CHANNELS = (1, 3)  # grayscale (luma) or RGB
LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601, as PIL's convert("L")
MAX_SIZE = 4096  # an input side beyond this is not believed from a file
METADATA_KEYS = ("input_size", "test_resize", "interpolation", "input_mean", "input_std")
MEAN_KEY = METADATA_KEYS[3]  # named here: only this module and models/card.py spell the keys


class InputSpecError(ValueError):
    """A malformed input specification: the message names the file (or value) and the field."""


def resize_shorter(img: torch.Tensor, size: int, mode: str = "bilinear") -> torch.Tensor:
    """Resize ``3 x H x W`` or ``N x 3 x H x W`` so the shorter side is ``size`` (antialiased
    when shrinking with bilinear/bicubic); uint8 stays uint8."""
    h, w = img.shape[-2:]
    scale = size / min(h, w)
    new = (max(size, round(h * scale)), max(size, round(w * scale)))
    if new == (h, w):
        return img
    batch = img if img.dim() == 4 else img[None]
    smooth = mode != "nearest"
    out = F.interpolate(batch.float(), size=new, mode=mode,
                        align_corners=False if smooth else None, antialias=smooth)
    out = out if img.dim() == 4 else out[0]
    return out.round_().clamp_(0, 255).to(img.dtype) if img.dtype == torch.uint8 else out


def center_crop(img: torch.Tensor, crop: int) -> torch.Tensor:
    h, w = img.shape[-2:]
    top, left = (h - crop) // 2, (w - crop) // 2
    return img[..., top:top + crop, left:left + crop]


def normalize(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor | None = None
              ) -> torch.Tensor:
    """uint8 pixels to float in [0, 1], minus the mean (``3 x H x W`` per pixel, §3.4 and
    §4.2, or ``3`` per channel), divided by ``std`` where there is one (the paper divides by
    nothing)."""
    out = x.float().div_(255.0)
    out = out - (mean if mean.dim() == 3 else mean[:, None, None]).to(out.device)
    if std is not None:
        out = out / std.to(out.device)[:, None, None]
    return out


@dataclass(frozen=True, eq=False)
class InputSpec:
    """What a model's inputs must be. ``mean``/``std`` are float32 tensors on [0, 1] pixels."""

    input_size: int  # the side of the square crop the model sees
    test_resize: int  # test time: the shorter side before the centre crop
    mean: torch.Tensor  # 3 per channel, or 3 x H x W per pixel
    std: torch.Tensor | None = None  # 3 per channel; None: mean subtraction only (the paper)
    interpolation: str = "bilinear"
    # The model's input channels: 3 (RGB), or 1: the luma of the normalised RGB (ITU-R BT.601
    # weights), for a grayscale network (`--in-chans 1`). Images are read as RGB either way.
    channels: int = 3

    def __post_init__(self) -> None:
        # Plain values become CPU tensors even inside a `with torch.device(...)` block.
        for key in ("mean", "std"):
            value = getattr(self, key)
            if value is not None:
                device = value.device if isinstance(value, torch.Tensor) else "cpu"
                object.__setattr__(self, key, torch.as_tensor(value, dtype=torch.float32,
                                                              device=device))
        problem = _problem(self)
        if problem:
            raise InputSpecError(f"input specification: {problem}")

    # -- what it is ------------------------------------------------------------------------

    @property
    def per_pixel(self) -> bool:
        return self.mean.dim() == 3

    @property
    def channel_mean(self) -> torch.Tensor:
        return self.mean.mean(dim=(1, 2)) if self.per_pixel else self.mean

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, InputSpec):
            return NotImplemented
        return self.to_metadata() == other.to_metadata()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:  # one line: a per-pixel mean is 3,072 numbers or more
        return f"InputSpec({self.describe()}, {self.interpolation})"

    def describe(self) -> str:
        """One line, e.g. "mean/std (0.485, 0.456, 0.406)/(0.229, 0.224, 0.225), 224 crops of
        the shorter side resized to 256"."""
        if self.per_pixel:
            norm = f"per-pixel mean ({'x'.join(map(str, self.mean.shape[1:]))})"
        else:
            norm = f"mean ({', '.join(f'{v:.3f}' for v in self.mean.tolist())})"
        if self.std is not None:
            norm += f", std ({', '.join(f'{v:.3f}' for v in self.std.tolist())})"
        size = (f"{self.input_size}x{self.input_size}" if self.test_resize == self.input_size
                else f"{self.input_size} crops of the shorter side resized to {self.test_resize}")
        gray = ", grayscale (the luma of the normalised RGB)" if self.channels == 1 else ""
        return f"{norm}, {size}{gray}"

    def data_config(self, channels: int | None = None) -> dict[str, Any]:
        """This specification in timm's data-config keys (``input_size``, ``interpolation``,
        ``mean``, ``std``, ``crop_pct``, ``crop_mode``), with what those cannot hold beside
        them: ``test_resize``, ``per_pixel_mean`` and the specification itself,
        ``input_spec`` (its per-pixel mean)."""
        channels = channels or self.channels
        return {"input_size": (channels, self.input_size, self.input_size),
                "interpolation": self.interpolation,
                "mean": tuple(round(v, 6) for v in self.channel_mean.tolist()),  # float32 noise
                "std": (tuple(round(v, 6) for v in self.std.tolist()) if self.std is not None
                        else (1.0, 1.0, 1.0)),
                "crop_pct": self.input_size / self.test_resize, "crop_mode": "center",
                "test_resize": self.test_resize, "per_pixel_mean": self.per_pixel,
                "input_spec": self}

    # -- what it does ----------------------------------------------------------------------

    def to(self, device: torch.device | str) -> InputSpec:
        return replace(self, mean=self.mean.to(device),
                       std=None if self.std is None else self.std.to(device))

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 ``N x 3 x H x W`` to model input: the per-pixel mean where the sizes match,
        else its channel means; one luma channel for a grayscale network."""
        if self.per_pixel and tuple(self.mean.shape[1:]) == tuple(x.shape[-2:]):
            return self.to_channels(normalize(x, self.mean, self.std))
        return self.to_channels(normalize(x, self.channel_mean, self.std))

    def to_channels(self, x: torch.Tensor) -> torch.Tensor:
        """A normalised RGB batch ``N x 3 x H x W`` as the model's channels: as it is, or its
        luma ``N x 1 x H x W`` (linear, so the same as normalising the gray image by the luma
        of the mean and std)."""
        if self.channels == 3:
            return x
        return (x * torch.tensor(LUMA, dtype=x.dtype, device=x.device)[:, None, None]).sum(
            -3, keepdim=True)

    def resize(self, img: torch.Tensor, size: int | None = None) -> torch.Tensor:
        """The shorter side to ``size`` (default the test resize), with this interpolation."""
        return resize_shorter(img, self.test_resize if size is None else size,
                              self.interpolation)

    def test_view(self, img: torch.Tensor) -> torch.Tensor:
        """The test transform of uint8 ``3 x H x W`` or ``N x 3 x H x W`` images: shorter side
        to ``test_resize``, the centre ``input_size`` crop."""
        return center_crop(self.resize(img), self.input_size).contiguous()

    # -- files -----------------------------------------------------------------------------

    def to_metadata(self) -> dict[str, str]:
        """The weights-file fields (JSON strings) that :meth:`from_metadata` reads back."""
        meta = {"input_size": json.dumps(self.input_size),
                "test_resize": json.dumps(self.test_resize),
                "interpolation": json.dumps(self.interpolation),
                "input_mean": json.dumps(self.mean.cpu().tolist())}
        if self.std is not None:
            meta["input_std"] = json.dumps(self.std.cpu().tolist())
        if self.channels != 3:  # RGB files stay as they always were
            meta["input_channels"] = json.dumps(self.channels)
        return meta

    def as_json(self) -> dict[str, Any]:
        """The fields as plain values (``deepres models --json``)."""
        return {k: json.loads(v) for k, v in self.to_metadata().items()}

    @classmethod
    def from_metadata(cls, meta: Mapping[str, Any], where: str,
                      defaults: InputSpec | None = None) -> InputSpec:
        """The spec a file's metadata gives (values as JSON strings or already decoded);
        absent sizes come from ``defaults`` (files that predate them). A malformed field is
        an :class:`InputSpecError` naming ``where`` and the field."""
        mean = _field(meta, "input_mean", where)
        if mean is None:
            if defaults is None:
                raise InputSpecError(f"{where}: has no input mean; it was not written by "
                                     "`deepres train`")
            mean = defaults.mean.tolist()
        if not _is_mean(mean):
            raise InputSpecError(f"{where}: metadata field 'input_mean' must be a list of 3 "
                                 "channel means or a 3 x H x W image of finite numbers")
        std = _field(meta, "input_std", where)
        if std is not None and not (isinstance(std, list) and len(std) == 3 and all(
                _is_number(c) and 0 < c < 1e3 for c in std)):
            raise InputSpecError(f"{where}: metadata field 'input_std' must be a list of 3 "
                                 f"positive numbers, not {_shown(meta['input_std'])}")
        size = _int_field(meta, "input_size", where, 1, MAX_SIZE,
                          defaults.input_size if defaults else None)
        resize = _int_field(meta, "test_resize", where, size, 2 * MAX_SIZE,
                            max(size, defaults.test_resize) if defaults else size)
        interp = _field(meta, "interpolation", where)
        if interp is None:
            interp = defaults.interpolation if defaults else "bilinear"
        if interp not in INTERPOLATIONS:
            raise InputSpecError(f"{where}: metadata field 'interpolation' must be one of "
                                 f"{', '.join(INTERPOLATIONS)}, not "
                                 f"{_shown(meta['interpolation'])}")
        channels = _int_field(meta, "input_channels", where, 1, 3, 3)
        if channels not in CHANNELS:
            raise InputSpecError(f"{where}: metadata field 'input_channels' must be 1 "
                                 f"(grayscale) or 3 (RGB), not {channels}")
        return cls(size, resize, mean, std, interp, channels)

    def with_size(self, input_size: int, test_resize: int | None = None) -> InputSpec:
        return replace(self, input_size=input_size,
                       test_resize=input_size if test_resize is None else test_resize)


def _problem(s: InputSpec) -> str | None:
    if s.channels not in CHANNELS:
        return f"channels must be 1 (grayscale) or 3 (RGB), not {s.channels!r}"
    if not (_is_int(s.input_size, 1, MAX_SIZE)
            and _is_int(s.test_resize, s.input_size, 2 * MAX_SIZE)):
        return (f"input size {s.input_size!r} and test resize {s.test_resize!r} must be "
                f"integers, 1 <= input size <= test resize")
    if not (s.mean.shape == (3,) or (s.mean.dim() == 3 and s.mean.shape[0] == 3)):
        return f"mean must have 3 channels, not shape {tuple(s.mean.shape)}"
    if s.std is not None and (s.std.shape != (3,) or bool((s.std <= 0).any())):
        return "std must be 3 positive numbers"
    if s.interpolation not in INTERPOLATIONS:
        return f"interpolation must be one of {', '.join(INTERPOLATIONS)}"
    return None


def _shown(raw: Any) -> str:
    text = raw if isinstance(raw, str) and raw.isprintable() else json.dumps(raw)  # one line
    return text if len(text) <= 60 else text[:57] + "..."


def _field(meta: Mapping[str, Any], key: str, where: str) -> Any:
    """A field's value, decoded from JSON where it is a string; None when absent."""
    if key not in meta:
        return None
    raw = meta[key]
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        if key == "interpolation":
            return raw
        raise InputSpecError(f"{where}: metadata field {key!r} is not valid JSON: "
                             f"{_shown(raw)}") from None


def _int_field(meta: Mapping[str, Any], key: str, where: str, low: int, high: int,
               default: int | None) -> int:
    value = _field(meta, key, where)
    if value is None and default is not None:
        return default
    if not _is_int(value, low, high):
        raise InputSpecError(f"{where}: metadata field {key!r} must be an integer between "
                             f"{low} and {high}, not {_shown(meta.get(key, 'absent'))}")
    return value


def _is_int(v: object, low: int, high: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and low <= v <= high


def _is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _is_mean(v: object) -> bool:
    try:
        t = torch.tensor(v, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        return False
    ok_shape = t.shape == (3,) or (t.dim() == 3 and t.shape[0] == 3
                                   and 1 <= t.shape[1] <= MAX_SIZE and 1 <= t.shape[2] <= MAX_SIZE)
    return ok_shape and bool(torch.isfinite(t).all())


# torchvision's ImageNet weights: mean/std normalisation, 224 crops of the image resized to 256.
IMAGENET = InputSpec(224, 256, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
# CIFAR nets: the usual CIFAR-10 channel statistics at 32x32 (what a model made without a
# dataset assumes; `deepres train` writes the training set's own mean into its weights).
CIFAR = InputSpec(32, 32, [0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616])


def from_torchvision_transforms(t: Any) -> InputSpec:
    """The spec of a torchvision weights enum's ``transforms()`` (ImageClassification)."""
    interp = str(getattr(t, "interpolation", "bilinear")).split(".")[-1].lower()
    return InputSpec(int(t.crop_size[0]), int(t.resize_size[0]), list(t.mean), list(t.std),
                     interp if interp in INTERPOLATIONS else "bilinear")
