"""Augmentation: the paper's, and the policies that came after it.

The paper's (§3.4, §4.2) are pure functions on batched tensors with an explicit generator.
Every random draw comes from the ``torch.Generator`` passed in, so the same seed gives the same
batches; the draws are made on the CPU and applied on the data's device, so CPU and GPU agree.
Images are ``N x 3 x H x W``: uint8 in, float32 out of :func:`normalize`.

Beyond the paper, from torchvision.transforms.v2 (no copies of our own): RandAugment,
TrivialAugmentWide, random erasing, mixup and cutmix. torchvision's transforms draw from torch's
global generator; here each image (or batch) gets its own seed drawn from the explicit generator
of its ``(seed, epoch, batch)``, and the draws run inside ``torch.random.fork_rng``, so the
global stream is untouched and a resumed run sees exactly the images an uninterrupted one sees.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

# The test-time operations belong to the input specification; augmentation reuses them.
from ..inputspec import center_crop, normalize, resize_shorter  # noqa: F401

# PCA lighting (Krizhevsky et al. 2012) for ImageNet pixels in [0, 1] (§3.4, PAPER.md).
IMAGENET_EIGVAL = torch.tensor([0.2175, 0.0188, 0.0045])
IMAGENET_EIGVEC = torch.tensor([[-0.5675, 0.7192, 0.4009],
                                [-0.5808, -0.0045, -0.8140],
                                [-0.5836, -0.6948, 0.4203]])


def to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A CPU draw moved to where the batch is. To a GPU the copy is from page-locked memory and
    does not block the host (a plain copy from pageable memory waits for the device)."""
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def _rand(n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    return to_device(torch.rand(n, generator=generator), device)


def random_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Flip each image horizontally with probability 1/2."""
    flip = _rand(x.shape[0], generator, x.device) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def pad_crop(x: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Zero-pad ``pad`` pixels on each side and take a random crop of the original size (§4.2)."""
    n, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = to_device(torch.randint(0, 2 * pad + 1, (n,), generator=generator), x.device)
    dx = to_device(torch.randint(0, 2 * pad + 1, (n,), generator=generator), x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chan = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, chan, rows, cols]


def cifar_train_augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """§4.2: 4-pixel padding, random 32x32 crop, horizontal flip (uint8 in, uint8 out)."""
    return random_flip(pad_crop(x, generator, 4), generator)


def pca_lighting(x: torch.Tensor, generator: torch.Generator, std: float = 0.1,
                 eigval: torch.Tensor = IMAGENET_EIGVAL,
                 eigvec: torch.Tensor = IMAGENET_EIGVEC) -> torch.Tensor:
    """Add ``sum_i alpha_i lambda_i p_i`` to every pixel, alpha ~ N(0, std) per image (§3.4).

    ``x`` is float with pixels on the [0, 1] scale (before or after mean subtraction).
    """
    alpha = torch.randn(x.shape[0], 3, generator=generator) * std
    rgb = (alpha * eigval) @ eigvec.T  # N x 3: p_i weighted by alpha_i lambda_i
    return x + to_device(rgb.to(x.dtype), x.device)[:, :, None, None]


def scale_augment(img: torch.Tensor, generator: torch.Generator, crop: int = 224,
                  scale: tuple[int, int] = (256, 480)) -> torch.Tensor:
    """§3.4: shorter side resized to a random length in [256, 480], a random 224 crop."""
    side = int(torch.randint(scale[0], scale[1] + 1, (1,), generator=generator))
    img = resize_shorter(img, side)
    h, w = img.shape[-2:]
    top = int(torch.randint(0, h - crop + 1, (1,), generator=generator))
    left = int(torch.randint(0, w - crop + 1, (1,), generator=generator))
    return img[:, top:top + crop, left:left + crop]


def imagenet_train_batch(x: torch.Tensor, generator: torch.Generator, mean: torch.Tensor,
                         std: torch.Tensor | None = None) -> torch.Tensor:
    """The batched part of §3.4's augmentation after per-image scale augmentation:
    flip, per-pixel mean subtraction (and division by ``std`` for weights trained so) and
    PCA colour augmentation."""
    return pca_lighting(normalize(random_flip(x, generator), mean, std), generator)


def channel_mean(images_nhwc_uint8: torch.Tensor) -> torch.Tensor:
    """Per-channel mean of uint8 images in [0, 1]."""
    return images_nhwc_uint8.float().mean(dim=(0, 1, 2)) / 255.0


def mean_image(images_nhwc_uint8: torch.Tensor, chunk: int = 8192) -> torch.Tensor:
    """The per-pixel mean image ``3 x H x W`` in [0, 1] (§4.2), in float64 chunks."""
    total = torch.zeros(images_nhwc_uint8.shape[1:], dtype=torch.float64)
    for i in range(0, images_nhwc_uint8.shape[0], chunk):
        total += images_nhwc_uint8[i:i + chunk].to(torch.float64).sum(0)
    return (total / max(1, images_nhwc_uint8.shape[0]) / 255.0).permute(2, 0, 1).float()


# -- Beyond the paper: torchvision.transforms.v2 policies, seeded per image or batch --


def _seeds(n: int, g: torch.Generator) -> list[int]:
    return torch.randint(0, 2**62, (n,), generator=g).tolist()


def _seeded(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, seed: int
            ) -> torch.Tensor:
    with torch.random.fork_rng(devices=[]):
        torch.random.manual_seed(seed)
        return fn(x)


def auto_augment(name: str) -> Callable[[torch.Tensor, torch.Generator], torch.Tensor]:
    """``randaugment`` or ``trivialaugment`` for uint8 ``N x 3 x H x W`` batches (or one
    ``3 x H x W`` image), each image with its own draw."""
    from torchvision.transforms import v2

    policy = {"randaugment": v2.RandAugment, "trivialaugment": v2.TrivialAugmentWide}[name]()

    def apply(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        if x.dim() == 3:
            return _seeded(policy, x, _seeds(1, g)[0])
        out = [_seeded(policy, img, s) for img, s in zip(x.cpu(), _seeds(len(x), g),
                                                          strict=True)]
        return torch.stack(out).to(x.device)

    return apply


def random_erasing(p: float) -> Callable[[torch.Tensor, torch.Generator], torch.Tensor]:
    """Erase a random rectangle of each normalised float image with probability ``p`` (it is
    set to 0: the mean after normalisation)."""
    from torchvision.transforms import v2

    erase = v2.RandomErasing(p=p, value=0)

    def apply(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        out = [_seeded(erase, img, s) for img, s in zip(x, _seeds(len(x), g), strict=True)]
        return torch.stack(out)

    return apply


def mixing(num_classes: int, mixup: float, cutmix: float
           ) -> Callable[[torch.Tensor, torch.Tensor, torch.Generator],
                         tuple[torch.Tensor, torch.Tensor]] | None:
    """Mixup and/or cutmix of a normalised batch and its labels (one of the two per batch
    when both are on), giving soft targets; None when both are off."""
    if not mixup and not cutmix:
        return None
    from torchvision.transforms import v2

    choices = ([v2.MixUp(alpha=mixup, num_classes=num_classes)] if mixup else []) + (
        [v2.CutMix(alpha=cutmix, num_classes=num_classes)] if cutmix else [])
    mix = choices[0] if len(choices) == 1 else v2.RandomChoice(choices)

    def apply(x: torch.Tensor, y: torch.Tensor, g: torch.Generator
              ) -> tuple[torch.Tensor, torch.Tensor]:
        seed = _seeds(1, g)[0]
        with torch.random.fork_rng(devices=[]):
            torch.random.manual_seed(seed)
            return mix(x, y)

    return apply


def balanced_weights(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Per-image sampling weights inverse to the image's class size (sum 1 per class)."""
    counts = torch.bincount(labels.cpu(), minlength=num_classes).clamp(min=1).double()
    return (1.0 / counts)[labels.cpu()]


def class_loss_weights(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``n / (k * count_c)`` for each class c: a class's images weigh as much in total as any
    other class's (sklearn's "balanced")."""
    counts = torch.bincount(labels.cpu(), minlength=num_classes).clamp(min=1).float()
    return len(labels) / (num_classes * counts)
