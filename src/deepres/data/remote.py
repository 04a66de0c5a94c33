"""Files named by a URL (``s3://``, ``gs://``, any fsspec protocol) or a local path, behind one
small set of calls, so that shards and weights can live in an object store and be read in
place: a shard's headers once (its index is cached), then each image as one ranged read.

Credentials and endpoints come from where the storage library looks for them (for S3: the
``AWS_*`` variables, ``~/.aws``; ``AWS_ENDPOINT_URL`` for an S3-compatible server). A URL
that cannot be reached, a missing object and missing credentials are one
:class:`DatasetError` naming the URL.
"""

from __future__ import annotations

import functools
import os
import posixpath
from typing import IO, Any

from .errors import DatasetError

READ_AHEAD = 8 * 1024 * 1024


def is_url(location: str) -> bool:
    return "://" in location and not location.startswith("file://")


def _fs(url: str) -> tuple[Any, str]:
    try:
        import fsspec
    except ImportError as exc:  # pragma: no cover - fsspec comes with torch
        raise DatasetError(f"{url}: reading URLs needs fsspec (pip install fsspec)") from exc
    try:
        return fsspec.core.url_to_fs(url)  # an instance per process (fsspec renews it after fork)
    except (ImportError, ValueError) as exc:
        protocol = url.split("://")[0]
        extra = {"s3": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs"}.get(protocol, "")
        raise DatasetError(f"{url}: cannot read {protocol}:// URLs ({exc})"
                           + (f"; pip install {extra}" if extra else "")) from exc


def _failed(url: str, exc: BaseException, tries: int = 1) -> DatasetError:
    name = type(exc).__name__
    if _no_access(exc):
        why = (f"no access ({name}: {_text(exc)}); set credentials as the storage library "
               "reads them (for S3: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or ~/.aws)")
    elif isinstance(exc, FileNotFoundError):
        why = "no such object"
    elif isinstance(exc, TimeoutError) or "Timeout" in name:
        why = f"the server did not answer in time ({name}); is it up?"
    else:
        why = f"cannot be read ({name}: {_text(exc)})"
    return DatasetError(f"{url}: {why}" + (f" (after {tries} tries)" if tries > 1 else ""))


def _text(exc: BaseException) -> str:
    first = next((x.strip() for x in str(exc).splitlines() if x.strip()), "")
    return first[:300] or "no message"


def _no_access(exc: BaseException) -> bool:
    return type(exc).__name__ in ("NoCredentialsError", "PartialCredentialsError") or \
        isinstance(exc, PermissionError) or getattr(exc, "status", None) in (401, 403)


# A store's passing faults (a 500, a body cut mid-stream, a reset connection) are tried again
# after 0.5, 1, 2 s; a missing object, no access, a 4xx answer and a timeout (a stalled server
# already cost the client's whole timeout) are not.
RETRY_DELAYS_S = (0.5, 1.0, 2.0)


def _passing(exc: BaseException) -> bool:
    status = getattr(exc, "status", None)
    if isinstance(status, int) and 400 <= status < 500 and status not in (408, 429):
        return False
    return not (isinstance(exc, FileNotFoundError | IsADirectoryError | NotADirectoryError
                           | TimeoutError | ValueError) or _no_access(exc)
                or "Timeout" in type(exc).__name__)


def _guarded(url: str, call: Any, *args: Any) -> Any:
    """``call(*args)``, its storage library's errors one DatasetError naming ``url``, passing
    faults tried again (RETRY_DELAYS_S)."""
    import time

    for attempt, delay in enumerate((*RETRY_DELAYS_S, None)):
        try:
            return call(*args)
        except DatasetError:
            raise
        except Exception as exc:  # noqa: BLE001 - the storage library's own errors, named once
            if delay is None or not _passing(exc):
                raise _failed(url, exc, attempt + 1) from exc
            time.sleep(delay)
    raise AssertionError("unreachable")


def open_binary(location: str) -> IO[bytes]:
    if not is_url(location):
        return open(location, "rb")
    fs, path = _fs(location)
    return _GuardedFile(location, _guarded(location, fs.open, path, "rb"))  # type: ignore[return-value]


class _GuardedFile:
    """A remote file whose reads go through :func:`_guarded` (tried again, errors named): a
    reader such as ``tarfile`` reads through it without knowing the file is remote."""

    def __init__(self, location: str, f: Any) -> None:
        self.location, self.f = location, f

    def read(self, size: int = -1) -> bytes:
        return _guarded(self.location, self.f.read, size)

    def __getattr__(self, name: str) -> Any:  # seek, tell, close, ...
        return getattr(self.f, name)

    def __enter__(self) -> _GuardedFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.f.close()


def read_range(location: str, start: int, size: int) -> bytes:
    if not is_url(location):
        with open(location, "rb") as f:
            f.seek(start)
            return f.read(size)
    return _reader(location, os.getpid()).read(start, size)


def read_ranges(ranges: list[tuple[str, int, int]]) -> list[bytes | OSError]:
    """Many ``(location, start, size)`` reads at once: local ones one by one, URLs as
    concurrent ranged requests (one call of the storage library), so a shuffled batch from an
    object store waits for its slowest image, not for the sum of them. A read that fails is
    its OSError, in its place."""
    out: list[bytes | OSError | None] = [None] * len(ranges)
    remote_at = [i for i, (loc, _, _) in enumerate(ranges) if is_url(loc)]
    for i, (loc, start, size) in enumerate(ranges):
        if not is_url(loc):
            try:
                out[i] = read_range(loc, start, size)
            except OSError as exc:
                out[i] = exc
    if remote_at:
        fs, _ = _fs(ranges[remote_at[0]][0])
        paths = [_fs(ranges[i][0])[1] for i in remote_at]
        starts = [ranges[i][1] for i in remote_at]
        ends = [ranges[i][1] + ranges[i][2] for i in remote_at]
        got = _guarded(ranges[remote_at[0]][0], lambda: fs.cat_ranges(
            paths, starts, ends, on_error="return"))
        for i, data in zip(remote_at, got, strict=True):
            out[i] = data if isinstance(data, bytes) else OSError(f"{ranges[i][0]}: {data}")
    return out


class _Reader:
    """One remote file in one process: reads that follow the last one (a split decoded in
    order, a header scan) go through a handle that reads ahead in 8 MB blocks, one request a
    block; a read elsewhere (a shuffled training batch) is one ranged request for exactly its
    bytes, so it neither fetches 8 MB it will not use nor drops the block a sequential reader
    is in."""

    def __init__(self, location: str) -> None:
        self.location = location
        self.fs, self.path = _fs(location)
        self.handle: IO[bytes] | None = None
        self.next = 0  # where the last read ended

    def read(self, start: int, size: int) -> bytes:
        follows = self.next <= start < self.next + READ_AHEAD
        self.next = start + size
        if not follows:
            return _guarded(self.location, lambda: self.fs.cat_file(self.path, start=start,
                                                                end=start + size))
        if self.handle is None:
            self.handle = _guarded(self.location, lambda: self.fs.open(
                self.path, "rb", block_size=READ_AHEAD, cache_type="readahead"))

        def ranged() -> bytes:
            self.handle.seek(start)
            return self.handle.read(size)

        return _guarded(self.location, ranged)


@functools.lru_cache(maxsize=8)
def _reader(location: str, pid: int) -> _Reader:
    """The reader of ``location`` in this process (``pid`` keys it: a forked DataLoader worker
    makes its own)."""
    del pid
    return _Reader(location)


@functools.lru_cache(maxsize=4096)
def identity(location: str) -> str:
    """What changes when the file changes: size and time (an ETag where the store has one)."""
    if not is_url(location):
        st = os.stat(location)
        return f"{os.path.abspath(location)}\0{st.st_size}\0{st.st_mtime_ns}"
    fs, path = _fs(location)
    info = _guarded(location, fs.info, path)
    return "\0".join(str(info.get(k, "")) for k in ("name", "size", "ETag", "LastModified",
                                                      "mtime"))


def is_file(location: str) -> bool:
    if not is_url(location):
        return os.path.isfile(location)
    fs, path = _fs(location)

    def info() -> bool:  # fs.isfile says False for any failure: no access, a server down
        try:
            return fs.info(path).get("type") == "file"
        except FileNotFoundError:
            return False

    return bool(_guarded(location, info))


def listing(folder: str, pattern: str) -> list[str]:
    """The files in ``folder`` that match ``pattern`` (sorted), as locations."""
    if not is_url(folder):
        import glob

        return sorted(glob.glob(os.path.join(folder, pattern)))
    fs, path = _fs(folder)
    protocol = folder.split("://")[0]
    found = _guarded(folder, fs.glob, posixpath.join(path.rstrip("/"), pattern))
    return sorted(f"{protocol}://{p}" for p in found)


def upload(local: str | os.PathLike[str], location: str) -> None:
    """Copy the local file to ``location`` (a URL), its errors one line naming the URL."""
    fs, path = _fs(location)
    _guarded(location, fs.put_file, os.fspath(local), path)


def read_bytes(location: str) -> bytes:
    with open_binary(location) as f:
        return f.read()


def parent(location: str) -> str:
    return posixpath.dirname(location.rstrip("/")) if is_url(location) else os.path.dirname(
        location)


def basename(location: str) -> str:
    return posixpath.basename(location.rstrip("/"))
