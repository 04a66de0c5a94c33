"""Where data comes from: ``--data PATH|cifar10|cifar100|sample``, the bundled sample, the cache.

Small (CIFAR-sized) datasets are decoded once into uint8 arrays and cached under
``$DEEPRES_CACHE`` (default ``~/.cache/deepres``), keyed by every file's path, size and
modification time, so a changed folder is read again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from .cifar import ArrayDataset, prepare_cifar, read_cifar, safe_extract
from .folder import DatasetError, FolderIndex, scan_dataset
from .images import BadImageError, decode_image

SAMPLE_ARCHIVE = "cifar10-sample.tar.xz"
SMALL_MAX_SIDE = 64  # images this size or smaller are held in memory as uint8 arrays
CACHE_VERSION = 2


def cache_dir() -> Path:
    return Path(os.environ.get("DEEPRES_CACHE") or Path.home() / ".cache" / "deepres")


@dataclass
class Splits:
    """A dataset's splits as arrays (small images) or folder indexes (streamed), and its classes."""

    name: str
    classes: list[str]
    train: ArrayDataset | FolderIndex
    test: ArrayDataset | FolderIndex | None
    bad: list[BadImageError] = field(default_factory=list)

    @property
    def in_memory(self) -> bool:
        return isinstance(self.train, ArrayDataset)


COMPLETE = ".complete"


def _cached_dir(dest: Path, fill: Callable[[Path], None]) -> Path:
    """``dest``, built once: ``fill`` writes into a temporary folder beside it, which is then
    marked complete and renamed into place, so an interrupted build is never taken as done."""
    if (dest / COMPLETE).exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent))
    fill(tmp)
    (tmp / COMPLETE).touch()
    if dest.exists():  # a half-finished or unreadable earlier entry
        shutil.rmtree(dest)
    os.replace(tmp, dest)
    return dest


def _single_folder(root: Path) -> Path:
    entries = [e for e in root.iterdir() if not e.name.startswith(".")]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else root


def sample_root() -> Path:
    """The bundled CIFAR-10 sample (500 train, 100 test images per class), extracted once."""
    with resources.as_file(resources.files("deepres.data") / "sample" / SAMPLE_ARCHIVE) as tar:
        return _single_folder(_cached_dir(cache_dir() / "sample-v2",
                                          lambda tmp: safe_extract(tar, tmp)))


ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.xz", ".tar.bz2")


def extract_folder_archive(archive: Path) -> Path:
    """A tar archive of an image folder, extracted once (safely) into the cache.

    The cache entry is keyed by the archive's path, size and modification time; the folder
    returned is the archive's single top-level folder, or the extraction root.
    """
    st = archive.stat()
    key = hashlib.sha256(f"{archive.resolve()}\0{st.st_size}\0{st.st_mtime_ns}".encode())
    dest = cache_dir() / "extracted" / key.hexdigest()[:24]
    return _single_folder(_cached_dir(dest, lambda tmp: safe_extract(archive, tmp)))


def _fingerprint(index: FolderIndex) -> str:
    h = hashlib.sha256(f"v{CACHE_VERSION}".encode())
    for path, label in index.samples:
        st = os.stat(path)
        rel = os.path.relpath(path, index.root)
        h.update(f"{rel}\0{label}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:24]


def decode_to_arrays(index: FolderIndex) -> tuple[ArrayDataset, list[BadImageError]]:
    """Decode a split of small images into arrays; bad files are returned, not included.

    Pixels are written into one preallocated array, so decoding costs no more memory than the
    pixels themselves.
    """
    labels, bad = [], []
    images: np.ndarray | None = None
    for path, label in index.samples:
        try:
            img = decode_image(path)
        except BadImageError as exc:
            bad.append(exc)
            continue
        if images is None:
            images = np.empty((len(index.samples), *img.shape), dtype=np.uint8)
        elif img.shape != images.shape[1:]:
            bad.append(BadImageError(path, f"size {img.shape[1]}x{img.shape[0]} differs from the "
                                           f"dataset's {images.shape[2]}x{images.shape[1]}"))
            continue
        images[len(labels)] = img
        labels.append(label)
    arr = images[:len(labels)] if images is not None else np.zeros((0, 32, 32, 3), np.uint8)
    return ArrayDataset(arr, np.asarray(labels, dtype=np.int64), index.classes), bad


def load_cached_arrays(index: FolderIndex) -> tuple[ArrayDataset, list[BadImageError]]:
    """:func:`decode_to_arrays` through the on-disk cache (plain ``.npy`` files, read straight
    into one array each: a cached reload costs no more memory than the pixels)."""
    folder = cache_dir() / "arrays" / _fingerprint(index)
    if (folder / COMPLETE).exists():
        try:
            images = np.load(folder / "images.npy", allow_pickle=False)
            labels = np.load(folder / "labels.npy", allow_pickle=False)
            bad = [BadImageError(p, r) for p, r in json.loads((folder / "bad.json").read_text())]
            return ArrayDataset(images, labels, index.classes), bad
        except (OSError, ValueError, KeyError):
            (folder / COMPLETE).unlink(missing_ok=True)  # unreadable: decode again
    ds, bad = decode_to_arrays(index)

    def fill(tmp: Path) -> None:
        np.save(tmp / "images.npy", ds.images)
        np.save(tmp / "labels.npy", ds.labels)
        (tmp / "bad.json").write_text(json.dumps([[b.path, b.reason] for b in bad]))

    _cached_dir(folder, fill)
    return ds, bad


def _is_small(index: FolderIndex) -> bool:
    for path, _ in index.samples[:8]:
        try:
            h, w = decode_image(path).shape[:2]
        except BadImageError:
            continue
        return max(h, w) <= SMALL_MAX_SIDE
    return True


def load_folder(root: str | os.PathLike[str], name: str | None = None) -> Splits:
    """An image-folder dataset; small images are decoded into (cached) arrays."""
    indexes = scan_dataset(root)
    train = indexes["train"]
    test = indexes.get("test") or indexes.get("val")
    name = name or Path(root).name
    if not _is_small(train):
        return Splits(name, train.classes, train, test)
    train_arr, bad = load_cached_arrays(train)
    test_arr = None
    if test is not None:
        test_arr, bad_test = load_cached_arrays(test)
        bad += bad_test
    return Splits(name, train.classes, train_arr, test_arr, bad)


def load_data(spec: str, root: str | os.PathLike[str] | None = None) -> Splits:
    """Resolve ``--data``: ``sample``, ``cifar10``, ``cifar100``, a folder, or a tar archive of
    a folder (extracted once into the cache).

    ``cifar10``/``cifar100`` are downloaded into ``root`` (default: the cache) unless already
    there, and checked against the published MD5.
    """
    if spec == "sample":
        return load_folder(sample_root(), "sample")
    if spec in ("cifar10", "cifar100"):
        folder = prepare_cifar(spec, Path(root) if root else cache_dir() / "datasets")
        train, test = read_cifar(folder, "train"), read_cifar(folder, "test")
        return Splits(spec, train.classes, train, test)
    path = Path(spec)
    if path.is_file() and spec.endswith(ARCHIVE_SUFFIXES):
        return load_folder(extract_folder_archive(path), path.name.split(".")[0])
    if not path.exists():
        raise DatasetError(f"{spec}: no such folder; --data takes a folder path, 'sample', "
                           "'cifar10' or 'cifar100'")
    if (path / "batches.meta").exists() or (path / "batches.meta.txt").exists() or (
            path / "fine_label_names.txt").exists() or (path / "meta").is_file():
        train, test = read_cifar(path, "train"), read_cifar(path, "test")
        return Splits(path.name, train.classes, train, test)
    return load_folder(path)
