"""What data to train on and how to split it: a typed, frozen config (saved with each run)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DataConfig:
    data: str = "sample"  # a folder path, "sample", "cifar10" or "cifar100"
    # Held out of the training split for validation: a fraction (< 1) or a number of images
    # (>= 1); 0 for none. The paper chose its CIFAR schedule on a 45k/5k split (5000) and
    # reported models trained on all 50k (§4.2); ImageNet needs a validation error for its
    # plateau schedule (§3.4). A count is capped at a tenth of a small training set.
    holdout: float = 0.0
    # Take the dataset's own val/ folder as the validation split instead of holding out.
    # None: yes when the dataset has one and nothing is held out (said at the start).
    val_split: bool | None = None
    holdout_seed: int = 0
    skip_bad: bool = False
    augment: bool = True
    # Large (streamed) images: the training crop (§3.4: 224; the test resize keeps 256/224 of
    # it) and the DataLoader worker processes that decode them. Small images held in memory
    # (CIFAR) are not cropped this way: their runs record None.
    crop: int | None = 224
    # Large images: subtract the training set's per-pixel mean image at the crop size (§3.4,
    # the imagenet-paper recipe) instead of one mean per channel.
    pixel_mean: bool = False
    workers: int = 2
    # The model's input side. None: the images' own size when they are held in memory (32 for
    # CIFAR), the crop when streamed. Held images are resized to it in batches (fine-tuning
    # weights at the resolution they were trained at, 224 for ImageNet's), streamed ones are
    # cropped at it.
    input_size: int | None = None
    # Whose normalisation: "auto", the source of --init weights where it has a specification
    # (deepres files carry theirs; torchvision's and other ImageNet-family state dicts get
    # torchvision's mean/std), else the data's own mean; "imagenet": torchvision's mean/std;
    # "dataset": the training data's own mean, whatever the weights were trained on.
    input_spec: str = "auto"


INPUT_SPECS = ("auto", "imagenet", "dataset")
