"""What data to train on and how to split it: a typed, frozen config (saved with each run).
Each field declares its ``deepres train`` flag (runtime/options.py)."""

from __future__ import annotations

from dataclasses import dataclass

from ..runtime.options import NONNEG_INT, holdout, number, option

INPUT_SPECS = ("auto", "imagenet", "dataset")
AUTO_AUGMENTS = ("randaugment", "trivialaugment")


# What --data takes: one entry per reader of data/datasource.py's READERS (the same keys; a
# test checks). Every --data flag's help and the errors' "--data takes ..." are made from it.
DATA_FORMATS: dict[str, str] = {
    "folder": "an image folder (train/, val/, test/ of class folders)",
    "tar": "a tar archive of one (.tar read in place; .tar.gz, .tar.xz, .tar.bz2 extracted once)",
    "shards": "WebDataset shards: a folder of them, a pattern such as "
              "'shards/train-{000000..000009}.tar', or the same in an object store "
              "(s3://bucket/shards/, gs://, http(s)://)",
    "hf": "a Hugging Face dataset saved to disk (hf:PATH)",
    "cifar": "'cifar10' or 'cifar100' (downloaded once, MD5-checked), or their batches",
}


def data_help(what: str) -> str:
    """The help of a --data flag: ``what`` it is for, then every format deepres reads."""
    return f"{what}: {'; '.join(DATA_FORMATS.values())}; or 'sample' (bundled)"


@dataclass(frozen=True)
class DataConfig:
    data: str = option("sample", help=data_help("the training data (default 'sample')"))
    # Held out of the training split for validation: a fraction (< 1) or a number of images
    # (>= 1); 0 for none. The paper chose its CIFAR schedule on a 45k/5k split (5000) and
    # reported models trained on all 50k (§4.2); ImageNet needs a validation error for its
    # plateau schedule (§3.4). A count is capped at a tenth of a small training set.
    holdout: float = option(0.0, parse=holdout, help="held out of train for validation: a "
                            "fraction (0.1) or a number of images (5000); 0 for none")
    # Take the dataset's own val/ folder as the validation split instead of holding out.
    # None: yes when the dataset has one beside test/ (said at the start).
    val_split: bool | None = option(None, switch="on", help="validate on the dataset's own "
                                    "val/ folder (the default when it has one beside test/)")
    holdout_seed: int = option(0, parse=NONNEG_INT, help="seed of the held-out split")
    skip_bad: bool = option(False, switch="on", help="train without the dataset's bad files "
                            "(counted in the log)")
    augment: bool = option(True, switch="both", help="the paper's augmentation (default on)")
    # Large (streamed) images: the training crop (§3.4: 224; the test resize keeps 256/224 of
    # it) and the DataLoader worker processes that decode them. Small images held in memory
    # (CIFAR) are not cropped this way: their runs record None.
    crop: int | None = option(224, parse=number(int, 8, 4096), help="large images: the "
                              "training crop (224; the test resize keeps 256/224 of it)")
    # Large images: subtract the training set's per-pixel mean image at the crop size (§3.4,
    # the imagenet-paper recipe) instead of one mean per channel.
    pixel_mean: bool = option(False, switch="both", help="large images: subtract the "
                              "per-pixel mean image at the crop size (§3.4; the imagenet-paper "
                              "recipe) instead of a per-channel mean")
    workers: int = option(2, parse=NONNEG_INT, help="large images: decoding processes (2)")
    # The model's input side. None: the images' own size when they are held in memory (32 for
    # CIFAR), the crop when streamed. Held images are resized to it in batches (fine-tuning
    # weights at the resolution they were trained at, 224 for ImageNet's), streamed ones are
    # cropped at it.
    input_size: int | None = option(None, parse=number(int, 8, 4096), help="the model's input "
                                    "side: held (small) images are resized to it in batches, "
                                    "e.g. 224 to fine-tune ImageNet weights at their "
                                    "resolution; streamed ones are cropped at it (default: the "
                                    "images' own size, or --crop)")
    # Whose normalisation: "auto", the source of --init weights where it has a specification
    # (deepres files carry theirs; torchvision's and other ImageNet-family state dicts get
    # torchvision's mean/std), else the data's own mean; "imagenet": torchvision's mean/std;
    # "dataset": the training data's own mean, whatever the weights were trained on.
    # Beyond the paper (torchvision.transforms.v2, seeded per image from (seed, epoch, batch) so
    # that a resumed run sees the same images): an automatic augmentation policy, random
    # erasing of the normalised image, a class-balanced sampler (with replacement).
    auto_augment: str | None = option(None, choices=AUTO_AUGMENTS, help="randaugment or "
                                      "trivialaugment (torchvision's) on the training images")
    random_erasing: float = option(0.0, parse=number(float, 0.0, 1.0), help="probability of "
                                   "erasing a random rectangle of each training image (0)")
    balanced_sampler: bool = option(False, switch="on", help="draw training images with "
                                    "probability inverse to their class's size (imbalanced "
                                    "classes)")
    # Beyond the paper, for shards in an object store (data/streams.py): each process and each
    # DataLoader worker reads its own shards whole, shuffled through a seeded buffer of this
    # many samples; 0 shuffles over the whole set (the default, as for a folder).
    shuffle_buffer: int = option(0, parse=NONNEG_INT, help="shards of large images: stream "
                                 "them, each process and DataLoader worker reading its own "
                                 "shards whole, shuffled through a seeded buffer of N samples "
                                 "(for an object store); 0: shuffle the whole set (default)")
    input_spec: str = option("auto", choices=INPUT_SPECS, help="whose normalisation: auto "
                             "(the --init weights' own: a deepres file's, torchvision's "
                             "mean/std for torchvision and other ImageNet-family weights; else "
                             "the data's mean), imagenet (torchvision's mean/std), dataset (the "
                             "training data's own mean)")
