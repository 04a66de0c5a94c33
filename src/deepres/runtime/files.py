"""Writing files that must never be left half-written: one helper for every writer.

``atomic_write`` writes to a temporary file beside the target, fsyncs it, gives it the mode a
new file gets (0666 less the umask, like every other file of a run directory), renames it over
the target and fsyncs the folder. A kill at any moment leaves the previous file; a failure
removes the temporary file; a full disk becomes one :class:`OutOfSpaceError` naming the path
and the space needed, whichever library was writing (``torch.save`` reports it as a
``RuntimeError`` from its zip writer, not as an ``OSError``).
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock; builders there are not serialised
    fcntl = None  # type: ignore[assignment]

TMP_SUFFIX = ".tmp"


class OutOfSpaceError(OSError):
    """The disk (or quota) filled up while writing; nothing that existed was changed."""


def temporary_name(path: Path) -> Path:
    """Where ``path`` is written before the rename: hidden, per process."""
    return path.with_name(f".{path.name}.{os.getpid()}{TMP_SUFFIX}")


def stray_temporaries(folder: Path) -> list[Path]:
    """Temporary files that a killed writer left in ``folder``."""
    if not folder.is_dir():
        return []
    return [p for p in folder.iterdir()
            if p.name.startswith(".") and p.name.endswith(TMP_SUFFIX) and p.is_file()]


def _file_mode() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def is_out_of_space(exc: BaseException, folder: Path) -> bool:
    """ENOSPC/EDQUOT, or a library's own error for a failed write on a (nearly) full disk."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(exc)
    if "No space left" in text or "ENOSPC" in text:
        return True
    if isinstance(exc, RuntimeError) and ("write" in text or "inline_container" in text):
        try:
            return shutil.disk_usage(folder).free < 64 * 1024 * 1024
        except OSError:
            return False
    return False


def out_of_space(path: Path, written: int, exc: BaseException | None = None) -> OutOfSpaceError:
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        free = 0
    need = f"more than {human_bytes(written)}" if written else "more"
    return OutOfSpaceError(
        errno.ENOSPC, f"{path}: not written, the disk is full ({human_bytes(free)} free there; it "
        f"needs {need}). Nothing that existed was changed; free space or write elsewhere, "
        "then run again")


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` to write the file, then put it at ``path`` atomically."""
    path = Path(path)
    tmp = temporary_name(path)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
    except BaseException as exc:
        written = tmp.stat().st_size if tmp.exists() else 0
        tmp.unlink(missing_ok=True)
        if isinstance(exc, Exception) and is_out_of_space(exc, path.parent):
            raise out_of_space(path, written, exc) from exc
        raise
    fsync_dir(path.parent)
    return path


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def check_output_path(out: str) -> Path:
    """An output file path that can be written: its folder exists, it is not a folder."""
    path = Path(out)
    if path.is_dir():
        raise ValueError(f"{out}: is a folder; give a file name for the export, e.g. "
                         f"{path / 'model.onnx'}")
    parent = path.parent
    if not parent.exists():
        raise ValueError(f"{out}: the folder {parent} does not exist; create it first")
    if not parent.is_dir():
        raise ValueError(f"{out}: {parent} is a file, not a folder")
    return path


@contextmanager
def exclusive(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive OS lock (``flock``, waiting for it) on ``lock_file`` while the block
    runs: several processes building one cache entry (the ranks of a distributed run) take
    turns, and the later ones find the entry built. The lock file itself stays (it is empty)."""
    if fcntl is None:
        yield
        return
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor drops the lock


_DIGESTS: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The file's sha256 (hex), read in 1 MiB blocks; remembered per path, size and
    modification time, so a file loaded twice (a model and its server) is read once."""
    import hashlib

    st = os.stat(path)
    key = (os.path.realpath(path), st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _DIGESTS[key] = h.hexdigest()
    return _DIGESTS[key]
