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
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TypeAlias

import numpy as np

from ..runtime import files
from ..runtime.files import (
    OutOfSpaceError,
    atomic_write_text,
    fsync_dir,
    human_bytes,
    is_out_of_space,
    out_of_space,
)
from ..runtime.terminal import safe
from .cifar import ArrayDataset, read_cifar, safe_extract
from .folder import DatasetError, FolderIndex, scan_dataset
from .images import BadImageError, decode_image, image_size, refused_images
from .members import Member
from .progress import progress

SAMPLE_ARCHIVE = "cifar10-sample.tar.xz"
SMALL_MAX_SIDE = 64  # images this size or smaller are held in memory as uint8 arrays
CACHE_VERSION = 2


# One split of a dataset, whichever way it is read: held in memory as arrays (small images,
# CIFAR batches) or streamed from files (an index over folders, tars, shards, Hugging Face rows).
# Both give ``labels``, ``classes`` and ``len()``; only data/ tells them apart (pipeline.py: the
# training loader; testtime.py: the test batches; Splits.in_memory), never a caller.
Split: TypeAlias = ArrayDataset | FolderIndex


def cache_dir() -> Path:
    return Path(os.environ.get("DEEPRES_CACHE") or Path.home() / ".cache" / "deepres")


@dataclass
class Splits:
    """A dataset's splits as arrays (small images) or folder indexes (streamed), and its classes."""

    name: str
    classes: list[str]
    train: Split | None  # None: a folder with only test/ or val/
    test: Split | None
    bad: list[BadImageError] = field(default_factory=list)
    layout: str = ""  # in memory or streamed, and why
    val: Split | None = None  # the dataset's own val/ folder, if any

    @property
    def in_memory(self) -> bool:
        return any(isinstance(x, ArrayDataset) for x in (self.train, self.test, self.val))

    def split(self, which: str) -> Split:
        """The ``train``, ``val`` or ``test`` split; a missing one is a DatasetError that
        says which splits there are."""
        found = {"train": self.train, "val": self.val, "test": self.test}
        if which not in found:
            raise DatasetError(f"unknown split {which!r}; give train, val or test")
        if found[which] is None:
            have = [k for k, v in found.items() if v is not None]
            folder = {"train": "train/", "val": "val/", "test": "test/ (or val/)"}[which]
            raise DatasetError(f"{self.name}: has no {which} split (no {folder} folder); it "
                               f"has {', '.join(have) or 'no splits'} (a split without labels "
                               "is left out)")
        return found[which]


COMPLETE = ".complete"


def _cached_dir(dest: Path, fill: Callable[[Path], None]) -> Path:
    """``dest``, built once: ``fill`` writes into a temporary folder beside it, which is then
    marked complete and renamed into place, so an interrupted build is never taken as done.
    Processes that want one entry at once (the ranks of a distributed run on a fresh cache)
    take turns under a lock; the later ones find it built."""
    if (dest / COMPLETE).exists():
        return dest
    with files.exclusive(dest.parent / f".{dest.name}.lock"):
        if (dest / COMPLETE).exists():  # built by another process while this one waited
            return dest
        return _build_dir(dest, fill)


def _build_dir(dest: Path, fill: Callable[[Path], None]) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent))
    try:
        fill(tmp)
    except BaseException as exc:  # a refused archive or an interrupted decode: nothing stays
        written = sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file())
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, Exception) and is_out_of_space(exc, dest.parent):
            raise out_of_space(dest, written, exc) from exc
        raise
    (tmp / COMPLETE).touch()
    if dest.exists():  # a half-finished or unreadable earlier entry
        shutil.rmtree(dest)
    os.replace(tmp, dest)  # a folder: renamed whole, then the rename made durable
    fsync_dir(dest.parent)
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
        if isinstance(path, Member):  # its archive's size and time, and where it lies
            what = path.identity()
        else:
            st = os.stat(path)
            what = f"{st.st_size}\0{st.st_mtime_ns}"
        rel = os.fsencode(os.path.relpath(path, index.root))  # any bytes, UTF-8 or not
        h.update(rel + f"\0{label}\0{what}\n".encode())
    return h.hexdigest()[:24]


def fit_to(img: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """An ``H x W x 3`` uint8 image at ``shape`` (height, width), as the test view makes one:
    scaled (antialiased bilinear) until it covers the shape, then its centre cropped."""
    import torch
    import torch.nn.functional as F

    th, tw = shape
    h, w = img.shape[:2]
    s = max(th / h, tw / w)
    size = (max(th, round(h * s)), max(tw, round(w * s)))
    x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float()
    x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
    top, left = (size[0] - th) // 2, (size[1] - tw) // 2
    x = x[0, :, top:top + th, left:left + tw].round_().clamp_(0, 255).to(torch.uint8)
    return x.permute(1, 2, 0).numpy()


def decode_to_arrays(index: FolderIndex, shape: tuple[int, int] | None = None
                     ) -> tuple[ArrayDataset, list[BadImageError], int]:
    """Decode a split of small images into arrays; bad files are returned, not included, and
    the number of images resized.

    ``shape`` is the dataset's ``(height, width)`` (from :func:`scan_sizes`); an image of
    another size is fitted to it (:func:`fit_to`: the test view's shorter-side resize and
    centre crop), as torchvision's Resize + CenterCrop would. Pixels are written into one
    preallocated array, so decoding costs no more memory than the pixels themselves.
    """
    labels, bad, resized = [], [], 0
    images: np.ndarray | None = None
    for path, label in progress(index.samples, f"decoding {index.root}"):
        try:
            img = decode_image(path)
        except BadImageError as exc:
            bad.append(exc)
            continue
        if images is None:
            shape = shape or img.shape[:2]
            images = np.empty((len(index.samples), *shape, 3), dtype=np.uint8)
        if img.shape != images.shape[1:]:
            img = fit_to(img, images.shape[1:3])
            resized += 1
        images[len(labels)] = img
        labels.append(label)
    arr = images[:len(labels)] if images is not None else np.zeros((0, 32, 32, 3), np.uint8)
    return ArrayDataset(arr, np.asarray(labels, dtype=np.int64), index.classes), bad, resized


def load_cached_arrays(index: FolderIndex, shape: tuple[int, int] | None = None,
                       fingerprint: str | None = None
                       ) -> tuple[ArrayDataset, list[BadImageError], int]:
    """:func:`decode_to_arrays` through the on-disk cache (plain ``.npy`` files, read straight
    into one array each: a cached reload costs no more memory than the pixels)."""
    # "-fit": entries made since odd sizes are resized rather than left out
    folder = cache_dir() / "arrays" / f"{fingerprint or _fingerprint(index)}-fit"
    if (folder / COMPLETE).exists():
        try:
            images = np.load(folder / "images.npy", allow_pickle=False)
            labels = np.load(folder / "labels.npy", allow_pickle=False)
            saved = json.loads((folder / "bad.json").read_text())
            bad = [BadImageError(p, r) for p, r in saved["bad"]]
            return ArrayDataset(images, labels, index.classes), bad, int(saved["resized"])
        except (OSError, ValueError, KeyError, TypeError):
            (folder / COMPLETE).unlink(missing_ok=True)  # unreadable: decode again
    ds, bad, resized = decode_to_arrays(index, shape)

    def fill(tmp: Path) -> None:
        np.save(tmp / "images.npy", ds.images)
        np.save(tmp / "labels.npy", ds.labels)
        (tmp / "bad.json").write_text(json.dumps({"bad": [[b.path, b.reason] for b in bad],
                                                  "resized": resized}))

    need = ds.images.nbytes + ds.labels.nbytes + 65536
    folder.parent.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder.parent).free
    if need > free:  # a set larger than the cache's disk: held in memory only
        print(f"decoded images not cached: they need {human_bytes(need)}, {folder.parent} has "
              f"{human_bytes(free)} free (set DEEPRES_CACHE to a larger disk to cache them); "
              "held in memory only", file=sys.stderr, flush=True)
        return ds, bad, resized
    try:
        _cached_dir(folder, fill)
    except OutOfSpaceError as exc:  # filled up meanwhile: nothing kept, the run goes on
        print(f"decoded images not cached: {exc}", file=sys.stderr, flush=True)
    return ds, bad, resized


def scan_sizes(index: FolderIndex, fingerprint: str | None = None
               ) -> Counter[tuple[int, int]]:
    """How many images of each ``(width, height)``, read from the file headers (cached by the
    folder's fingerprint); unreadable files are counted under ``(0, 0)``."""
    return scan_headers(index, fingerprint)[0]


def scan_headers(index: FolderIndex, fingerprint: str | None = None
                 ) -> tuple[Counter[tuple[int, int]], list[str]]:
    """:func:`scan_sizes` and the files whose header cannot be read (one read of every header,
    cached by the folder's fingerprint)."""
    path = cache_dir() / "sizes" / f"{fingerprint or _fingerprint(index)}.json"
    try:
        saved = json.loads(path.read_text())
        return Counter({tuple(k): v for k, v in saved["sizes"]}), list(saved["unreadable"])
    except (OSError, ValueError, TypeError, KeyError):  # none yet, or the older format
        pass
    sizes, unreadable = _read_headers(index)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps({"sizes": [[list(k), v] for k, v in sizes.items()],
                                            "unreadable": unreadable}))
    except OSError:  # a full cache disk: scanned again next time, the run goes on
        pass
    return sizes, unreadable


def _read_headers(index: FolderIndex) -> tuple[Counter[tuple[int, int]], list[str]]:
    """Every image's size from its header (``(0, 0)``: unreadable), and the unreadable ones.
    Shards' indexes hold the sizes already (read as the index was made, data/shards.py), so
    an object store is not read a second time for them."""
    held = getattr(index.samples, "sizes", None)
    known = held() if held is not None else None
    if known is not None:
        width, height = known
        sizes = Counter(zip(width.tolist(), height.tolist(), strict=True))
        bad = np.flatnonzero((width == 0) & (height == 0)).tolist()
        return sizes, [index.samples[i][0] for i in bad]
    sizes, unreadable = Counter(), []
    for p, _ in progress(index.samples, f"scanning {index.root}"):
        size = image_size(p)
        sizes[size or (0, 0)] += 1
        if size is None:
            unreadable.append(p)
    return sizes, unreadable


def choose_layout(sizes: Counter[tuple[int, int]]) -> tuple[tuple[int, int] | None, str]:
    """In memory at the dominant size when that size is small, else streamed; and why."""
    readable = Counter({k: v for k, v in sizes.items() if k != (0, 0)})
    total = sum(readable.values())
    if not total:
        return (32, 32), "no readable image headers"
    (w, h), n = readable.most_common(1)[0]
    others = total - n
    mixed = f"; {others} image(s) of other sizes" if others else ""
    if max(w, h) <= SMALL_MAX_SIDE:
        note = (f"held in memory: {n} of {total} images are {w}x{h} (small){mixed}"
                + (f" resized to {w}x{h} (scaled to cover it, centre crop)" if others else ""))
        return (h, w), note
    biggest = max(readable, key=lambda k: k[0] * k[1])
    return None, (f"streamed from disk: the most common size is {w}x{h} (over "
                  f"{SMALL_MAX_SIDE} pixels), largest {biggest[0]}x{biggest[1]}{mixed}")


def load_folder(root: str | os.PathLike[str], name: str | None = None) -> Splits:
    """An image-folder dataset (:func:`load_indexes` of its splits)."""
    return load_indexes(scan_dataset(root), name or Path(root).name)


def load_indexes(indexes: dict[str, FolderIndex], name: str) -> Splits:
    """The splits of a folder, a tar read in place or shards; small images are decoded into
    (cached) arrays. The choice follows a scan of every image's size, and ``Splits.layout``
    says which and why. Only test/ (or only val/) is no training split: it can be evaluated
    on."""
    train, val = indexes.get("train"), indexes.get("val")
    test = indexes.get("test") or val  # with no test/ folder, val/ is what is tested on
    first = next(iter(indexes.values()))
    key = _fingerprint(first)  # one stat of every file, for both caches
    shape, note = choose_layout(scan_sizes(first, key))
    refused = refused_images([p for idx in indexes.values() for p in idx.ignored])
    if refused:  # said where the run says how it holds the data
        note += "; " + "; ".join(refused)
    if shape is None:
        # Streamed: no split is decoded ahead, so every split's headers are read now (cached)
        # and a file that cannot be opened as an image is a bad file before the first step,
        # not a crash in a DataLoader worker at the end of an epoch.
        unreadable = {id(idx): set(scan_headers(idx, key if idx is first else None)[1])
                      for idx in indexes.values()}
        bad = [BadImageError(p, _unreadable_reason(p)) for found in unreadable.values()
               for p in sorted(found)]
        if bad:  # the splits without them (training refuses them unless --skip-bad)
            kept = {id(idx): idx.without(unreadable[id(idx)]) for idx in indexes.values()}
            train, val = (kept[id(x)] if x is not None else None for x in (train, val))
            test = kept[id(test)] if test is not None else None
        return Splits(name, first.classes, train, test, bad, layout=note, val=val)
    arrays, bad = {}, []
    for split in {id(x): x for x in (train, test, val) if x is not None}.values():
        arrays[id(split)], bad_split, _ = load_cached_arrays(split, shape,
                                                             key if split is first else None)
        bad += bad_split
    return Splits(name, first.classes, arrays.get(id(train)), arrays.get(id(test)), bad,
                  layout=note, val=arrays.get(id(val)))


def _unreadable_reason(path: str) -> str:
    """Why a file's header could not be read, as a full decode says it."""
    try:
        decode_image(path)
    except BadImageError as exc:
        return exc.reason
    return "unreadable image header"


def is_cifar_folder(path: Path) -> bool:
    return any((path / marker).exists() for marker in (
        "batches.meta", "batches.meta.txt", "fine_label_names.txt")) or (path / "meta").is_file()


def cifar_splits(path: Path, name: str, splits: Collection[str] | None = None) -> Splits:
    """CIFAR's own batches: the training and test files (only those of ``splits``, given)."""
    train = read_cifar(path, "train") if splits is None or "train" in splits else None
    test = read_cifar(path, "test") if splits is None or {"test", "val"} & set(splits) else None
    if train is None and test is None:
        raise DatasetError(f"{safe(name)}: CIFAR has a train and a test split, not "
                           f"{', '.join(sorted(splits or ()))}")
    classes = (train or test).classes  # type: ignore[union-attr]
    return Splits(name, classes, train, test, layout="held in memory: CIFAR batches")
