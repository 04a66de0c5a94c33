"""What ``--data`` names, resolved once into one :class:`DataSource`, which training, eval,
predict's evaluation, int8 calibration, ``data check`` and the dataset mean all read.

A data format is one reader module and one row of :data:`READERS`: how to list its splits
(as :class:`FolderIndex` es, or None for CIFAR's own batches) and how to load them. The
resolution order is :func:`resolve`'s, and its errors name the value and what ``--data``
takes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

from ..runtime.terminal import safe
from . import remote, splits
from .cifar import prepare_cifar
from .config import DATA_FORMATS
from .errors import DatasetError
from .folder import FolderIndex, index_members, scan_dataset
from .hfdata import hf_indexes, is_hf_folder, parse_spec
from .shards import is_shard_folder, is_shard_pattern, shard_indexes, shards_of
from .splits import ARCHIVE_SUFFIXES, Splits, cache_dir, is_cifar_folder, load_indexes
from .tarindex import is_plain_tar, member_table

ACCEPTS = "; ".join(DATA_FORMATS.values()) + "; or 'sample'"
CIFAR_MEMBERS = ("batches.meta", "data_batch_1", "meta", "batches.meta.txt")


@dataclass(frozen=True)
class DataSource:
    """One resolved ``--data``: its kind (a row of :data:`READERS`), the value as given, a
    name for reports, and where it lies (a folder, an archive, or shard files)."""

    kind: str
    spec: str
    name: str
    paths: tuple[Path | str, ...]  # str: a URL

    @property
    def path(self) -> Path:
        return self.paths[0]

    def indexes(self, splits: Collection[str] | None = None) -> dict[str, FolderIndex] | None:
        """Every split's images (or those of ``splits``, where the format can leave the others
        unread: shards), or None where the data is CIFAR's own batches."""
        return READERS[self.kind].indexes(self, splits)

    def load(self, splits: Collection[str] | None = None) -> Splits:
        """The splits, decoded or indexed for streaming; with ``splits`` (``("test",)``) only
        those are read and decoded (``test`` falls back on ``val`` as always), so that eval
        never reads or downloads the training images. The others are then None."""
        reader = READERS[self.kind]
        if reader.load is not None:
            return reader.load(self, splits)
        return load_indexes(_wanted(reader.indexes(self, splits), splits, self.name),
                            self.name)


def _wanted(indexes: dict[str, FolderIndex], splits: Collection[str] | None, name: str
            ) -> dict[str, FolderIndex]:
    """``indexes`` restricted to ``splits`` (None: all), ``val`` kept for a ``test`` that the
    data lacks; none of them is a DatasetError naming the splits there are."""
    if splits is None:
        return indexes
    want = set(splits) | ({"val"} if "test" in splits and "test" not in indexes else set())
    kept = {s: idx for s, idx in indexes.items() if s in want}
    if not kept:
        raise DatasetError(f"{safe(name)}: has no {' or '.join(sorted(splits))} split; it has "
                           f"{', '.join(indexes) or 'no splits'} (a split without labels is "
                           "left out)")
    return kept


@dataclass(frozen=True)
class Reader:
    # (source, the splits wanted or None) -> indexes; a reader may return more than asked
    indexes: Callable[[DataSource, Collection[str] | None], dict[str, FolderIndex] | None]
    # default: load_indexes of the wanted indexes
    load: Callable[[DataSource, Collection[str] | None], Splits] | None = None


def _tar_indexes(src: DataSource, _splits: Collection[str] | None = None
                 ) -> dict[str, FolderIndex]:
    table = member_table(src.path, cache_dir())
    names = table.names_list()
    for name in names:  # refused as extraction refuses them, though nothing is written here
        if name.startswith("/") or ".." in name.split("/"):
            raise DatasetError(f"{safe(src.path)}: refusing member {safe(name)!r}: it points "
                               "outside the archive's folder")
    return index_members(os.fspath(src.path), table, names)


# Folders, tars and HF datasets list every split (a listing, or one table: cheap) and decode
# only the wanted ones; shards index only the wanted splits' shards (each indexed shard is
# read through, a download from a store); CIFAR reads only the wanted batch files.
READERS: dict[str, Reader] = {
    "folder": Reader(lambda s, _: scan_dataset(s.path)),  # an image folder
    "tar": Reader(_tar_indexes),  # a tar of an image folder, read in place
    "shards": Reader(lambda s, splits: shard_indexes([str(p) for p in s.paths], cache_dir(),
                                                     splits)),
    "hf": Reader(lambda s, _: hf_indexes(s.spec if s.spec.startswith("hf:")
                                         else f"hf:{s.path}", cache_dir())),  # local files
    "cifar": Reader(lambda s, _: None,
                    lambda s, wanted: splits.cifar_splits(s.path, s.name, wanted)),
}


def _archive_name(path: Path) -> str:
    return path.name.split(".")[0]


def _from_file(spec: str, path: Path) -> DataSource:
    if is_plain_tar(path):
        names = member_table(path, cache_dir()).names_list()
        if not any(n.rsplit("/", 1)[-1] in CIFAR_MEMBERS for n in names):
            if any(n.endswith(".cls") for n in names):
                return DataSource("shards", spec, _archive_name(path), (path,))
            return DataSource("tar", spec, _archive_name(path), (path,))
    if not spec.endswith(ARCHIVE_SUFFIXES):
        raise DatasetError(f"{safe(spec)}: is a file, not a dataset; --data takes {ACCEPTS}")
    folder = splits.extract_folder_archive(path)  # compressed, or CIFAR batches: extracted once
    kind = "cifar" if is_cifar_folder(folder) else "folder"
    return DataSource(kind, spec, _archive_name(path), (folder,))


def resolve(spec: str, root: str | os.PathLike[str] | None = None) -> DataSource:
    """The one place ``--data`` is read. ``cifar10``/``cifar100`` are downloaded into ``root``
    (default: the cache) unless already there, and checked against the published MD5."""
    if spec == "sample":
        return DataSource("folder", spec, "sample", (splits.sample_root(),))
    if spec in ("cifar10", "cifar100"):
        folder = prepare_cifar(spec, Path(root) if root else cache_dir() / "datasets")
        return DataSource("cifar", spec, spec, (folder,))
    if spec.startswith("hf:"):
        folder = parse_spec(spec)[0]
        return DataSource("hf", spec, folder.name or "hf", (folder,))
    if is_shard_pattern(spec):
        paths = tuple(Path(p) if not remote.is_url(p) else p for p in shards_of(spec))
        return DataSource("shards", spec, remote.basename(remote.parent(str(paths[0])))
                          or "shards", paths)
    if remote.is_url(spec):  # a shard, or a folder of them (ending in /), in an object store
        if not spec.endswith(("/", ".tar")):
            raise DatasetError(f"{safe(spec)}: a URL as --data names WebDataset shards: one "
                               "shard (.tar), a pattern of them, or a folder ending in /")
        paths = tuple(shards_of(spec))
        return DataSource("shards", spec, remote.basename(remote.parent(paths[0])) or "shards",
                          paths)
    path = Path(spec)
    if path.is_file():
        return _from_file(spec, path)
    if not path.exists():
        raise DatasetError(f"{safe(spec)}: no such folder or file; --data takes {ACCEPTS}")
    if not path.is_dir():
        raise DatasetError(f"{safe(spec)}: not a folder or a regular file")
    if is_cifar_folder(path):
        return DataSource("cifar", spec, path.name, (path,))
    if is_hf_folder(path):
        return DataSource("hf", spec, path.name, (path,))
    if is_shard_folder(path):
        return DataSource("shards", spec, path.name, tuple(Path(p) for p in shards_of(spec)))
    return DataSource("folder", spec, path.name, (path,))


def load_data(spec: str, root: str | os.PathLike[str] | None = None,
              splits: Collection[str] | None = None) -> Splits:
    """Resolve ``--data`` and load its splits (see :func:`resolve`); only ``splits`` where
    given (:meth:`DataSource.load`)."""
    return resolve(spec, root).load(splits)
