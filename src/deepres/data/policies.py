"""Augmentations beyond the paper, from torchvision.transforms.v2 (no copies of our own):
RandAugment, TrivialAugmentWide, random erasing, mixup and cutmix.

torchvision's transforms draw from torch's global generator; here each image (or batch) gets its
own seed drawn from the explicit generator of its ``(seed, epoch, batch)``, and the draws run
inside ``torch.random.fork_rng``, so the global stream is untouched and a resumed run sees
exactly the images an uninterrupted one sees.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


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
