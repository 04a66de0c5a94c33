"""The paper's testing protocols as functions from images to class probabilities.

- single crop: the test transform (CIFAR: the 32x32 image; ImageNet: shorter side 256, centre 224);
- 10-crop (Table 3's protocol): four corners and centre crop, and their flips, softmax averaged;
- fully-convolutional multi-scale (§3.4, as VGG): the image at several shorter sides; at each,
  the class scores of every position of the last feature map are averaged, then the softmax;
  the softmax is then averaged over scales (and flips);
- ensembles: softmax averaged over models (Table 5).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

# The loaded model these protocols take, and its single-crop prediction (deepres/loaded).
from ..loaded.predictor import Predictor, _softmax, load_predictor, probs_single

__all__ = ["Predictor", "ensemble", "load_predictor", "probs_dense", "probs_multiscale",
           "probs_single", "probs_ten_crop", "ten_crops"]



def ten_crops(x: torch.Tensor, crop: int) -> torch.Tensor:
    """``N x 3 x H x W`` to ``N x 10 x 3 x crop x crop``: corners, centre and their flips."""
    h, w = x.shape[-2:]
    if h < crop or w < crop:
        raise ValueError(f"image {h}x{w} is smaller than the {crop} crop")
    corners = [(0, 0), (0, w - crop), (h - crop, 0), (h - crop, w - crop),
               ((h - crop) // 2, (w - crop) // 2)]
    crops = [x[..., t:t + crop, left:left + crop] for t, left in corners]
    crops += [c.flip(-1) for c in crops]
    return torch.stack(crops, dim=1)


@torch.no_grad()
def probs_ten_crop(p: Predictor, x: torch.Tensor) -> torch.Tensor:
    """10-crop probabilities of uint8 images at their test resolution.

    CIFAR-sized models: the crops come from the image padded by 4 pixels (as in training,
    §4.2), so the centre crop is the image itself. Larger: from the image as given (shorter
    side 256 in the paper's protocol).
    """
    crop = p.spec.input_size
    if x.shape[-1] == crop and x.shape[-2] == crop:
        x = F.pad(x, (4, 4, 4, 4))
    crops = ten_crops(x, crop)
    n = crops.shape[0]
    probs = _softmax(p, p.normalize(crops.flatten(0, 1)))
    return probs.view(n, 10, -1).mean(1)


@torch.no_grad()
def probs_dense(p: Predictor, x: torch.Tensor) -> torch.Tensor:
    """Fully-convolutional testing at one scale (§3.4, the method of VGG that the paper cites):
    the classifier at every position of the last feature map, the class scores averaged over
    positions, then the softmax. Averaging the scores over positions equals global average
    pooling followed by the fc layer, so this is the network's forward pass on the whole image
    at its own size. ``x``: uint8 at any size."""
    return _softmax(p, p.normalize(x))


@torch.no_grad()
def probs_multiscale(p: Predictor, x: torch.Tensor, scales: Sequence[int],
                     flips: bool = True) -> torch.Tensor:
    """uint8 ``N x 3 x H x W`` images (one size) at each shorter side in ``scales`` and
    their flips, dense scores averaged over positions, scales and flips."""
    total = None
    for s in scales:
        xs = p.spec.resize(x, s)
        for v in ([xs, xs.flip(-1)] if flips else [xs]):
            pr = probs_dense(p, v)
            total = pr if total is None else total + pr
    return total / (len(scales) * (2 if flips else 1))


def ensemble(prob_list: Sequence[torch.Tensor]) -> torch.Tensor:
    """Average of the models' softmax scores (Table 5's ensembles)."""
    return torch.stack(list(prob_list)).mean(0)
