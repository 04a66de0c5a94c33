"""CIFAR-10 and CIFAR-100 in their published formats (python pickle batches, binary batches).

Downloads are checked against the published MD5 before anything is extracted or unpickled,
archives are extracted with ``../`` paths and links refused, and the pickle batches are read
with an unpickler that only builds numpy arrays and plain containers.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import shutil
import sys
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..runtime.files import OutOfSpaceError, atomic_write, human_bytes
from .folder import DatasetError


@dataclass(frozen=True)
class Archive:
    url: str
    md5: str
    folder: str  # what the archive extracts to


HOME = "https://www.cs.toronto.edu/~kriz/"
ARCHIVES = {
    ("cifar10", "python"): Archive(HOME + "cifar-10-python.tar.gz",
                                   "c58f30108f718f92721af3b95e74349a", "cifar-10-batches-py"),
    ("cifar10", "binary"): Archive(HOME + "cifar-10-binary.tar.gz",
                                   "c32a1d4ab5d03f1284b67883e8d87530", "cifar-10-batches-bin"),
    ("cifar100", "python"): Archive(HOME + "cifar-100-python.tar.gz",
                                    "eb9058c3a382ffc7106e4002c42a8d85", "cifar-100-python"),
    ("cifar100", "binary"): Archive(HOME + "cifar-100-binary.tar.gz",
                                    "03b5dce01913d631647c71ecec9e9cb8", "cifar-100-binary"),
}
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck"]


@dataclass
class ArrayDataset:
    """A small dataset held as uint8 pixels ``N x H x W x 3`` and int64 labels."""

    images: np.ndarray
    labels: np.ndarray
    classes: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, idx: np.ndarray) -> ArrayDataset:
        return ArrayDataset(self.images[idx], self.labels[idx], self.classes)


def md5sum(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def safe_extract(archive: Path, dest: Path) -> None:
    """Extract a tar archive, refusing absolute and ``../`` paths, links and device files."""
    dest = dest.resolve()
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            for m in members:
                target = (dest / m.name).resolve()
                if m.name.startswith("/") or not target.is_relative_to(dest):
                    raise DatasetError(f"{archive}: refusing member {m.name!r}: it points "
                                       "outside the destination folder")
                if not (m.isfile() or m.isdir()):
                    raise DatasetError(f"{archive}: refusing member {m.name!r}: links and "
                                       "special files are not extracted")
            _fits(archive, dest, members)
            from .progress import progress

            tar.extractall(dest, members=progress(members, f"extracting {archive}",
                                                  len(members), "file"), filter="data")
    except tarfile.TarError as exc:
        raise DatasetError(f"{archive}: not a readable tar archive ({exc})") from exc


def _fits(archive: Path, dest: Path, members: list[tarfile.TarInfo]) -> None:
    """Say how much disk the extraction needs before it starts; refuse it (one line) where
    the disk has less free."""
    block = 4096  # a file takes whole blocks of the filesystem
    need = sum(-(-m.size // block) * block + block for m in members)
    free = shutil.disk_usage(dest).free
    where = dest.parent
    if need > free:
        raise DatasetError(f"{archive}: extracting it needs {human_bytes(need)} in {where}, "
                           f"which has {human_bytes(free)} free; free space, set "
                           "DEEPRES_CACHE to a larger disk, or give an uncompressed .tar "
                           "(read in place, nothing extracted)")
    print(f"extracting {archive}: {len(members)} files, {human_bytes(need)} into {where} "
          f"({human_bytes(free)} free)", file=sys.stderr, flush=True)


def download(archive: Archive, root: Path) -> Path:
    """Fetch ``archive`` into ``root`` (if not already there) and verify its MD5."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / archive.url.rsplit("/", 1)[1]
    if not path.exists():

        def fetch(tmp: Path) -> None:
            with urllib.request.urlopen(archive.url, timeout=60) as r, open(tmp, "wb") as f:
                shutil.copyfileobj(r, f)

        try:  # written beside the target, fsynced and renamed: never a half-downloaded file
            atomic_write(path, fetch)
        except OutOfSpaceError:
            raise
        except OSError as exc:
            raise DatasetError(
                f"could not download {archive.url} ({exc}); download it by hand into {root} "
                "and run again"
            ) from exc
    got = md5sum(path)
    if got != archive.md5:
        raise DatasetError(f"{path}: MD5 {got} does not match the published {archive.md5}; "
                           "delete the file and download it again")
    return path


MAX_ARRAY_BYTES = 1 << 31  # no CIFAR batch array comes near 2 GiB


def _bounded_reconstruct(limit: int):
    """numpy's array constructor for pickles (protocol <= 4), refusing absurd shapes before
    any memory is asked for."""
    def reconstruct(subtype, shape, dtype):
        _check_size(shape, np.dtype(dtype), limit)
        return np.ndarray.__new__(subtype, shape, dtype)

    return reconstruct


def _check_size(shape, dtype: np.dtype, limit: int) -> None:
    dims = tuple(shape) if isinstance(shape, tuple | list) else (shape,)
    if not all(isinstance(d, int | np.integer) and d >= 0 for d in dims):
        raise pickle.UnpicklingError(f"array shape {shape!r} is not a shape")
    if int(np.prod(dims, dtype=object)) * dtype.itemsize > limit:
        raise pickle.UnpicklingError(f"an array of shape {tuple(dims)} ({dtype}) is larger "
                                     "than a CIFAR batch can be")


def _bounded_frombuffer(limit: int):
    """numpy's protocol-5 array constructor (an array over an in-band buffer), checked."""
    def frombuffer(buf, dtype, shape, order):
        dtype = np.dtype(dtype)
        _check_size(shape, dtype, limit)
        arr = np.frombuffer(buf, dtype=dtype)
        if arr.size != int(np.prod(shape, dtype=object)):
            raise pickle.UnpicklingError(f"buffer of {arr.size} items does not fill shape "
                                         f"{tuple(shape)}")
        return arr.reshape(shape, order=order).copy()

    return frombuffer


def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError(f"refusing codec {encoding!r} in a CIFAR batch")
    return text.encode("latin1")


class _ArrayUnpickler(pickle.Unpickler):
    """Builds only what CIFAR batches contain: dicts, lists, bytes and numpy arrays, pickled
    with any protocol (5 included); array sizes are bounded before memory is allocated."""

    ALLOWED = {
        ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
    }
    RECONSTRUCT = {("numpy.core.multiarray", "_reconstruct"),
                   ("numpy._core.multiarray", "_reconstruct")}
    FROMBUFFER = {("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer")}

    def __init__(self, file, *, limit: int = MAX_ARRAY_BYTES, **kw) -> None:
        super().__init__(file, **kw)
        self.limit = limit

    def find_class(self, module: str, name: str):  # type: ignore[override]
        if (module, name) in self.RECONSTRUCT:
            return _bounded_reconstruct(self.limit)
        if (module, name) in self.FROMBUFFER:
            return _bounded_frombuffer(self.limit)
        if (module, name) == ("_codecs", "encode"):  # bytes pickled by Python 3, protocol < 3
            return _latin1_encode
        if (module, name) in self.ALLOWED or module.startswith("numpy.dtypes"):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR batch")


def _load_pickle_batch(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            data = f.read()
        obj = _ArrayUnpickler(io.BytesIO(data), encoding="bytes",
                              limit=min(MAX_ARRAY_BYTES, 4 * len(data) + (1 << 20))).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, OSError,
            MemoryError) as exc:
        raise DatasetError(f"{path}: not a readable CIFAR batch ({exc})") from exc
    if not isinstance(obj, dict):
        raise DatasetError(f"{path}: not a CIFAR batch (a {type(obj).__name__})")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _pixels(data: np.ndarray, path: Path) -> np.ndarray:
    data = np.asarray(data, dtype=np.uint8)
    if data.ndim != 2 or data.shape[1] != 3072:
        raise DatasetError(f"{path}: expected rows of 3072 pixels, got shape {data.shape}")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy()


def _read_python(folder: Path, which: str, split: str) -> ArrayDataset:
    if which == "cifar10":
        files = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
        meta, names_key, label_key = "batches.meta", "label_names", "labels"
    else:
        files, meta, names_key, label_key = [split], "meta", "fine_label_names", "fine_labels"
    images, labels = [], []
    for name in files:
        batch = _load_pickle_batch(folder / name)
        images.append(_pixels(batch["data"], folder / name))
        labels.append(np.asarray(batch[label_key], dtype=np.int64))
    classes = [c.decode() if isinstance(c, bytes) else str(c)
               for c in _load_pickle_batch(folder / meta)[names_key]]
    return ArrayDataset(np.concatenate(images), np.concatenate(labels), classes)


def _read_binary(folder: Path, which: str, split: str) -> ArrayDataset:
    if which == "cifar10":
        files = ([f"data_batch_{i}.bin" for i in range(1, 6)] if split == "train"
                 else ["test_batch.bin"])
        label_bytes, meta = 1, "batches.meta.txt"
    else:
        files, label_bytes, meta = [f"{split}.bin"], 2, "fine_label_names.txt"
    record = label_bytes + 3072
    images, labels = [], []
    for name in files:
        raw = np.fromfile(folder / name, dtype=np.uint8)
        if raw.size % record:
            raise DatasetError(f"{folder / name}: size {raw.size} is not a whole number of "
                               f"{record}-byte records; the file is truncated")
        rows = raw.reshape(-1, record)
        labels.append(rows[:, label_bytes - 1].astype(np.int64))  # CIFAR-100: the fine label
        images.append(_pixels(rows[:, label_bytes:], folder / name))
    classes = [line.strip() for line in (folder / meta).read_text().splitlines() if line.strip()]
    return ArrayDataset(np.concatenate(images), np.concatenate(labels), classes)


def read_cifar(folder: str | os.PathLike[str], split: str = "train") -> ArrayDataset:
    """Read an extracted CIFAR-10/100 folder (python or binary version) into arrays."""
    folder = Path(folder)
    if split not in ("train", "test"):
        raise DatasetError(f"CIFAR splits are 'train' and 'test', not {split!r}")
    if (folder / "batches.meta").exists():
        ds = _read_python(folder, "cifar10", split)
    elif (folder / "batches.meta.txt").exists():
        ds = _read_binary(folder, "cifar10", split)
    elif (folder / "meta").exists():
        ds = _read_python(folder, "cifar100", split)
    elif (folder / "fine_label_names.txt").exists():
        ds = _read_binary(folder, "cifar100", split)
    else:
        raise DatasetError(f"{folder}: not an extracted CIFAR folder (no batches.meta, "
                           "batches.meta.txt, meta or fine_label_names.txt)")
    if ds.labels.size and (ds.labels.min() < 0 or ds.labels.max() >= len(ds.classes)):
        raise DatasetError(f"{folder}: labels outside 0..{len(ds.classes) - 1}")
    return ds


def prepare_cifar(which: str, root: Path, fmt: str = "python") -> Path:
    """Download (if needed), verify and extract CIFAR; return the extracted folder."""
    archive = ARCHIVES[(which, fmt)]
    folder = root / archive.folder
    if not folder.is_dir():
        tarball = download(archive, root)
        safe_extract(tarball, root)
    return folder
