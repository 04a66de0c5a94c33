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
import os
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

from ..runtime.files import atomic_write_text
from . import remote
from .errors import DatasetError
from .members import Member

# A member's header can claim any size; an image larger than this is refused when read.
MAX_MEMBER_BYTES = 256 * 1024 * 1024
INDEX_VERSION = 1


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
        if self.size > MAX_MEMBER_BYTES:
            raise OSError(f"{self.size} bytes, over the limit of {MAX_MEMBER_BYTES} for one image")
        data = remote.read_range(self.archive, self.offset, self.size)
        if len(data) != self.size:
            raise OSError(f"the archive ends {self.size - len(data)} bytes early")
        return data


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


def member_table(path: Path, cache: Path) -> list[TarMember]:
    """Every regular file of the archive at ``path`` with its offset (indexed once, kept in
    ``cache``)."""
    rows = cached_index(path, "members",
                        lambda p: [[i.name, i.offset_data, i.size] for _, i in iter_members(p)],
                        cache)
    archive = os.fspath(path)
    return [TarMember(archive, name, offset, size) for name, offset, size in rows]
