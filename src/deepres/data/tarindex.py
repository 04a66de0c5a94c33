"""Files inside an uncompressed tar archive, read in place: an index of member offsets is made
once (one pass over the headers, cached), and each image is then one seek and one read, as a
loose file would be. A plain ``.tar`` of an image folder and WebDataset shards (data/shards.py)
are read this way, so nothing is extracted and no disk is needed beyond the archive itself.

Only regular members are indexed; links, devices and folders are never followed or opened,
and nothing is written, so a member named ``../x`` cannot reach outside anything.
"""

from __future__ import annotations

import hashlib
import json
import operator
import os
import tarfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..runtime.files import atomic_write_text
from . import remote
from .errors import DatasetError
from .members import Member

# A member's header can claim any size; an image larger than this is refused when read.
MAX_MEMBER_BYTES = 256 * 1024 * 1024
INDEX_VERSION = 3  # 2: shards' rows carry each image's size; 3: a key twice is refused


class TarMember(Member):
    """A file inside a tar archive, usable wherever a sample's path is: its text is
    ``ARCHIVE/NAME`` (so messages name it), and it knows where its bytes lie."""

    archive: str
    name: str
    offset: int
    size: int

    def __new__(cls, archive: str, name: str, offset: int, size: int) -> TarMember:
        self = super().__new__(cls, f"{archive}/{name}")
        self.archive, self.name, self.offset, self.size = archive, name, offset, size
        return self

    def __reduce__(self):  # to DataLoader workers with its location
        return (TarMember, (self.archive, self.name, self.offset, self.size))

    def identity(self) -> str:
        return f"{remote.identity(self.archive)}\0{self.offset}\0{self.size}"

    def read(self) -> bytes:
        """The member's bytes; OSError when the archive is shorter than its header said."""
        self.check_size()
        return self.whole(remote.read_range(self.archive, self.offset, self.size))

    def check_size(self) -> None:
        """OSError for a header that claims more than one image may be."""
        if self.size > MAX_MEMBER_BYTES:
            raise OSError(f"{self.size} bytes, over the limit of {MAX_MEMBER_BYTES} for one image")

    def whole(self, data: bytes) -> bytes:
        """``data`` if it is all of the member, else OSError (the archive ended early)."""
        if len(data) != self.size:
            raise OSError(f"the archive ends {self.size - len(data)} bytes early")
        return data


def read_remote(samples: Sequence[str], shards: Any = None) -> list[bytes | OSError | None]:
    """The bytes of every member of ``samples`` that lies in an object store, read at once
    (concurrent ranged requests, data/remote.py ``read_ranges``), or through ``shards`` (a
    data/streams.py ``ShardCache``: whole shards) where given; None for the others, which
    are read as they are decoded. A member that cannot be read is its OSError."""
    out: list[bytes | OSError | None] = [None] * len(samples)
    asked = []
    for i, m in enumerate(samples):
        if isinstance(m, TarMember) and remote.is_url(m.archive):
            out[i] = _attempt(m.check_size)
            if out[i] is None:
                asked.append(i)
    spans = [(samples[i].archive, samples[i].offset, samples[i].size) for i in asked]
    got = (remote.read_ranges(spans) if shards is None else
           [_attempt(shards.read, *span) for span in spans])
    for i, data in zip(asked, got, strict=True):
        out[i] = _attempt(samples[i].whole, data) if isinstance(data, bytes) else data
    return out


def _attempt(call: Callable[..., Any], *args: Any) -> Any:
    """``call(*args)``, or the OSError it raised."""
    try:
        return call(*args)
    except OSError as exc:
        return exc


class MemberRows(Sequence):
    """``(TarMember, label)`` samples of many archives held as columns (numpy arrays and one
    blob of names): about 50 bytes a sample where a list of small objects took 700, and
    nothing for forked DataLoader workers to copy by touching reference counts. A sample's
    :class:`TarMember` is made when it is asked for."""

    def __init__(self, archives: list[str], columns: dict[str, np.ndarray], names: bytes
                 ) -> None:
        self.archives, self.columns, self.names = archives, columns, names
        self._archive, self._offset = columns["archive"], columns["offset"]
        self._size, self._label, self._end = columns["size"], columns["label"], columns["end"]

    @classmethod
    def of_archive(cls, archive: str, rows: Sequence[Sequence]) -> MemberRows:
        """One archive's ``[[name, offset, size, label], ...]``, each row with the image's
        width and height after them where they are known (``0, 0``: unreadable)."""
        names = [r[0].encode("utf-8", "surrogateescape") for r in rows]
        known = (("width", 4), ("height", 5)) if rows and all(len(r) >= 6 for r in rows) else ()
        cols = {k: np.fromiter((r[j] for r in rows), np.int64, len(rows))
                for k, j in (("offset", 1), ("size", 2), ("label", 3), *known)}
        cols["archive"] = np.zeros(len(rows), np.int32)
        cols["end"] = np.cumsum(np.fromiter(map(len, names), np.int64, len(names)))
        return cls([archive], cols, b"".join(names))

    @classmethod
    def concat(cls, parts: Sequence[MemberRows]) -> MemberRows:
        """The samples of ``parts``, one after another."""
        archives, ids, ends, shift = [], [], [], 0
        for part in parts:
            ids.append(part._archive + len(archives))
            ends.append(part._end + shift)
            archives += part.archives
            shift += len(part.names)
        sized = ("width", "height") if parts and all("width" in p.columns for p in parts) else ()
        cols = {k: np.concatenate([p.columns[k] for p in parts] or [np.zeros(0, np.int64)])
                for k in ("offset", "size", "label", *sized)}
        cols["archive"] = np.concatenate(ids or [np.zeros(0, np.int32)])
        cols["end"] = np.concatenate(ends or [np.zeros(0, np.int64)])
        return cls(archives, cols, b"".join(p.names for p in parts))

    def __len__(self) -> int:
        return len(self._offset)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        i = operator.index(i)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"sample {i} of {len(self)}")
        start = int(self._end[i - 1]) if i else 0
        name = self.names[start:int(self._end[i])].decode("utf-8", "surrogateescape")
        member = TarMember(self.archives[self._archive[i]], name, int(self._offset[i]),
                           int(self._size[i]))
        return member, int(self._label[i])

    def __iter__(self) -> Iterator[tuple[TarMember, int]]:
        return (self[i] for i in range(len(self)))

    @property
    def labels(self) -> np.ndarray:
        return self._label

    def sizes(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Each image's width and height where the index holds them (``0, 0``: unreadable)."""
        if "width" not in self.columns:
            return None
        return self.columns["width"], self.columns["height"]

    def _starts(self) -> np.ndarray:
        """Where each name begins in the blob (each ends where the next begins)."""
        return np.concatenate([np.zeros(1, np.int64), self._end])[:len(self._end)]

    def names_list(self) -> list[str]:
        """Every member's name, in order."""
        return [self.names[s:e].decode("utf-8", "surrogateescape")
                for s, e in zip(self._starts().tolist(), self._end.tolist(), strict=True)]

    def take(self, indices: Sequence[int] | np.ndarray,
             labels: Sequence[int] | np.ndarray | None = None) -> MemberRows:
        """The samples at ``indices``, in that order, as columns again (with ``labels``
        instead of their own where given)."""
        idx = np.asarray(indices, dtype=np.int64)
        starts, ends = self._starts()[idx], self._end[idx]
        blob = b"".join(self.names[s:e] for s, e in zip(starts.tolist(), ends.tolist(),
                                                          strict=True))
        cols = {k: self.columns[k][idx] for k in ("archive", "offset", "size", "label",
                                                  "width", "height") if k in self.columns}
        cols["end"] = np.cumsum(ends - starts)
        if labels is not None:
            cols["label"] = np.asarray(labels, dtype=np.int64).reshape(len(idx))
        return MemberRows(self.archives, cols, blob)


def is_plain_tar(path: Path) -> bool:
    """An uncompressed tar (read in place); compressed archives are extracted instead."""
    if path.suffix != ".tar" or not path.is_file():
        return False
    try:
        with tarfile.open(path, mode="r:") as tf:
            tf.next()
        return True
    except (tarfile.TarError, OSError):
        return False


def iter_members(path: str | Path) -> Iterator[tuple[tarfile.TarFile, tarfile.TarInfo]]:
    """The archive's regular members in order, with the open archive (to read small ones);
    ``path`` may be a URL (data/remote.py)."""
    try:
        with remote.open_binary(os.fspath(path)) as f, tarfile.open(fileobj=f, mode="r:") as tf:
            while (info := tf.next()) is not None:
                tf.members.clear()  # one header at a time: a million members stay small
                if info.isreg():
                    yield tf, info
    except tarfile.ReadError as exc:
        raise DatasetError(f"{path}: not an uncompressed tar archive ({exc}); give a .tar, "
                           "or a compressed archive (.tar.gz, .tar.xz) to be extracted") from exc


def _cache_file(path: str | Path, kind: str, cache: Path) -> Path:
    key = hashlib.sha256(f"v{INDEX_VERSION}\0{kind}\0{remote.identity(os.fspath(path))}"
                         .encode()).hexdigest()[:24]
    return cache / "tarindex" / f"{key}.json"


def cached_index(path: str | Path, kind: str, build: Callable[[str | Path], list],
                 cache: Path) -> list:
    """``build(path)`` (a JSON-able list), kept in the cache by the archive's path, size and
    modification time (or a URL's ETag), so a second run reads no headers."""
    saved = _cache_file(path, kind, cache)
    try:
        return json.loads(saved.read_text())
    except (OSError, ValueError):
        pass
    entries = build(path)
    try:
        saved.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(saved, json.dumps(entries))
    except OSError:  # a full cache disk: indexed again next time, the run goes on
        pass
    return entries


def member_table(path: Path, cache: Path) -> MemberRows:
    """Every regular file of the archive at ``path`` with its offset (indexed once, kept in
    ``cache``), as columns (labels 0 until a layout gives them)."""
    rows = cached_index(path, "members",
                        lambda p: [[i.name, i.offset_data, i.size] for _, i in iter_members(p)],
                        cache)
    return MemberRows.of_archive(os.fspath(path), [[*r, 0] for r in rows])
