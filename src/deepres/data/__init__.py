"""Datasets (image folders, tar archives, WebDataset shards, CIFAR, the bundled sample),
augmentation and loaders."""

from .._lazy import exports

__getattr__, __dir__, __all__ = exports(__name__, {
    "ArrayDataset": ".cifar",
    "read_cifar": ".cifar",
    "DataSource": ".datasource",
    "resolve": ".datasource",
    "load_data": ".datasource",
    "DatasetError": ".errors",
    "FolderIndex": ".folder",
    "check_index": ".folder",
    "holdout_split": ".folder",
    "scan_dataset": ".folder",
    "scan_folder": ".folder",
    "BadImageError": ".images",
    "decode_image": ".images",
    "ArrayLoader": ".loaders",
    "FolderDataset": ".loaders",
    "Splits": ".sources",
    "sample_root": ".sources",
    # timm's names (timm.data.*), so that timm code runs with `timm.` replaced by `deepres.`
    "create_transform": ".usertransform",
    "data_config": ".usertransform",
    "resolve_data_config": ".usertransform",
    "resolve_model_data_config": ".usertransform",
})
