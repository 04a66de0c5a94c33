"""Hugging Face ``datasets`` from local files, with no hub access: ``--data hf:PATH`` or a folder
that ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk`` wrote (``dataset_dict.json`` or
``dataset_info.json`` beside ``.arrow`` files), or a folder of parquet files named by split
(``train-00000-of-00004.parquet``, also under ``data/``, as the hub lays them out).

The image column is the first of the ``Image`` type (else one named ``image`` or ``img``), the
label column the first ``ClassLabel`` (whose names become the classes; else one named
``label``, ``labels``, ``fine_label`` or ``class``); name them with
``hf:PATH?image=COLUMN&label=COLUMN``. Splits ``train``, ``validation`` (our ``val``) and
``test`` are used. Each row becomes a sample whose image bytes are read from the memory-mapped
arrow file when needed (:class:`HFRow`), so a split is a :class:`FolderIndex` like a folder's:
the same shuffling, resume, bad-sample policy and input specification. Parquet files are
converted once into arrow files in deepres's cache (the ``datasets`` library's own way).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from ..runtime.terminal import safe
from .errors import MAX_CLASSES, DatasetError, check_label
from .folder import FolderIndex
from .members import Member

SPLITS = {"train": "train", "validation": "val", "val": "val", "test": "test"}
IMAGE_NAMES = ("image", "img")
LABEL_NAMES = ("label", "labels", "fine_label", "class")


def is_hf_folder(path: Path) -> bool:
    return path.is_dir() and any((path / f).is_file() for f in (
        "dataset_dict.json", "dataset_info.json")) or bool(_parquet_files(path))


def _parquet_files(path: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for folder in (path, path / "data"):
        if folder.is_dir():
            for f in sorted(folder.glob("*.parquet")):
                split = SPLITS.get(f.name.split("-")[0].split(".")[0])
                if split:
                    found.setdefault(split, []).append(os.fspath(f))
    return found


def _datasets() -> Any:
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")  # local files only, never the hub
    try:
        import datasets
    except ImportError as exc:
        raise DatasetError("reading a Hugging Face dataset needs the datasets library: "
                           "pip install 'deepres[hf]' (or pip install datasets)") from exc
    datasets.disable_progress_bars()
    return datasets


def parse_spec(spec: str) -> tuple[Path, dict[str, str]]:
    """``hf:PATH?image=a&label=b`` as the folder and the named columns."""
    text = spec[3:] if spec.startswith("hf:") else spec
    path, _, query = text.partition("?")
    columns = {k: v[-1] for k, v in parse_qs(query).items()}
    unknown = set(columns) - {"image", "label"}
    if unknown:
        raise DatasetError(f"{safe(spec)}: unknown option(s) {', '.join(sorted(unknown))}; "
                           "hf:PATH takes ?image=COLUMN&label=COLUMN")
    return Path(path), columns


@functools.lru_cache(maxsize=16)
def _open(path: str, cache: str) -> dict[str, Any]:
    """Each split of the dataset at ``path`` (one per process, memory-mapped)."""
    ds = _datasets()
    folder = Path(path)
    parquet = _parquet_files(folder)
    try:
        if parquet and not (folder / "dataset_dict.json").exists():
            loaded = {s: ds.Dataset.from_parquet(files, cache_dir=cache)
                      for s, files in parquet.items()}
        else:
            opened = ds.load_from_disk(path)
            loaded = ({SPLITS[k]: v for k, v in opened.items() if k in SPLITS}
                      if isinstance(opened, ds.DatasetDict) else {"train": opened})
    except (FileNotFoundError, ValueError, OSError) as exc:
        raise DatasetError(f"{safe(path)}: not a dataset the datasets library can read "
                           f"({exc}); save one with Dataset.save_to_disk") from exc
    if not loaded:
        raise DatasetError(f"{safe(path)}: has no train, validation or test split")
    return loaded


def _columns(path: str, split: Any, named: dict[str, str]) -> tuple[str, str]:
    ds = _datasets()
    features = split.features
    image = named.get("image") or next(
        (k for k, f in features.items() if isinstance(f, ds.Image)), None) or next(
        (k for k in IMAGE_NAMES if k in features), None)
    label = named.get("label") or next(
        (k for k, f in features.items() if isinstance(f, ds.ClassLabel)), None) or next(
        (k for k in LABEL_NAMES if k in features), None)
    for role, column in (("image", image), ("label", label)):
        if column is None or column not in features:
            raise DatasetError(f"{safe(path)}: no {role} column found among "
                               f"{', '.join(features)}; name it with "
                               f"hf:{safe(path)}?{role}=COLUMN")
    if not isinstance(features[image], ds.Image):
        raise DatasetError(f"{safe(path)}: column {safe(image)} holds {features[image]}, not "
                           "images (a column of the datasets Image type)")
    return image, label


class HFRow(Member):
    """One row's image: its text is ``PATH[split][row]``; its bytes come from the arrow file."""

    path: str
    split: str
    row: int
    column: str
    cache: str

    def __new__(cls, path: str, split: str, row: int, column: str, cache: str) -> HFRow:
        self = super().__new__(cls, f"{path}[{split}][{row}]")
        self.path, self.split, self.row, self.column, self.cache = path, split, row, column, cache
        return self

    def __reduce__(self):  # to DataLoader workers: they open the dataset themselves
        return (HFRow, (self.path, self.split, self.row, self.column, self.cache))

    def _table(self) -> Any:
        return _raw(self.path, self.cache, self.split, self.column)

    def identity(self) -> str:
        return f"{self._table()._fingerprint}\0{self.row}"

    def read(self) -> bytes:
        cell = self._table()[self.row][self.column]
        if isinstance(cell, dict) and cell.get("bytes"):
            return cell["bytes"]
        if isinstance(cell, dict) and cell.get("path"):  # stored as a path: read the file
            with open(cell["path"], "rb") as f:
                return f.read()
        raise OSError(f"column {self.column} holds no image bytes in row {self.row}")


@functools.lru_cache(maxsize=64)
def _raw(path: str, cache: str, split: str, column: str) -> Any:
    """A split with its image column not decoded (bytes as stored)."""
    ds = _datasets()
    return _open(path, cache)[split].cast_column(column, ds.Image(decode=False))


def hf_indexes(spec: str, cache: Path) -> dict[str, FolderIndex]:
    """Each split of the dataset as samples of :class:`HFRow` and its class names."""
    path, named = parse_spec(spec)
    if not path.is_dir():
        raise DatasetError(f"{safe(spec)}: no such folder; hf:PATH names a folder written by "
                           "save_to_disk or holding parquet files")
    where = os.fspath(path.resolve())
    splits = _open(where, os.fspath(cache / "hf"))
    indexes = {}
    for name in ("train", "val", "test"):
        if name not in splits:
            continue
        image, label = _columns(where, splits[name], named)
        classes, labels = _labels(splits[name], label)
        if labels and max(labels) < 0:  # -1 throughout: an unlabelled split (a test set
            continue                    # whose labels are withheld) cannot be scored
        for i, y in enumerate(labels):
            check_label(y, f"{safe(spec)}: split {name}, row {i}, column {label!r}")
        rows = [(HFRow(where, name, i, image, os.fspath(cache / "hf")), y)
                for i, y in enumerate(labels)]
        indexes[name] = FolderIndex(f"{where}/{name}", classes, rows)
    firsts = {tuple(ix.classes) for ix in indexes.values()}
    if len(firsts) > 1:
        raise DatasetError(f"{safe(spec)}: its splits have different classes")
    return indexes


def _labels(split: Any, column: str) -> tuple[list[str], list[int]]:
    ds = _datasets()
    feature = split.features[column]
    values = split[column]
    if isinstance(feature, ds.ClassLabel):
        return list(feature.names), [int(v) for v in values]
    if all(isinstance(v, int) for v in values):  # bounded by hf_indexes' check_label
        top = max(values, default=-1)
        return [str(i) for i in range(min(top, MAX_CLASSES - 1) + 1)], list(values)
    if all(isinstance(v, str) for v in values):  # class names as text: sorted, numbered
        names = sorted(set(values))
        number = {n: i for i, n in enumerate(names)}
        return names, [number[v] for v in values]
    raise DatasetError(f"label column {column!r} holds neither class numbers nor names")
