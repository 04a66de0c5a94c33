"""Datasets (image folders, CIFAR, the bundled sample), augmentation and loaders."""

from .cifar import ArrayDataset, read_cifar
from .folder import DatasetError, FolderIndex, check_index, holdout_split, scan_dataset, scan_folder
from .images import BadImageError, decode_image
from .loaders import ArrayLoader, FolderDataset
from .sources import Splits, load_data, sample_root

__all__ = [
    "ArrayDataset", "ArrayLoader", "BadImageError", "DatasetError", "FolderDataset",
    "FolderIndex", "Splits", "check_index", "decode_image", "holdout_split", "load_data",
    "read_cifar", "sample_root", "scan_dataset", "scan_folder",
]
