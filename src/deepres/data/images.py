"""Decoding one image file into RGB uint8 pixels, strictly: every bad file gets a reason."""

from __future__ import annotations

import io
import os
import stat
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .members import Member

# Formats we decode; anything else PIL could open (TIFF, GIF, PSD, ...) is refused.
ALLOWED_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "BMP"})
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp"})
# Above this many pixels a file is treated as a decompression bomb (about 89 MP, PIL's own limit).
MAX_PIXELS = 89_478_485
# A progressive JPEG is decoded once per scan, so its cost is scans x pixels, not pixels: one
# tiny scan repeated 1,000 times in a 99 KB 4096x4096 file took 19.6 s to decode on a Zen 3.
# Real encoders write 10 scans (libjpeg's progressive script) to about 20 (mozjpeg), so we
# refuse a file beyond MAX_JPEG_SCANS scans, or beyond MAX_JPEG_SCANS_PIXELS scans x pixels
# (12 full-size scans of the largest image we accept), counted from its markers before decoding.
MAX_JPEG_SCANS = 100
MAX_JPEG_SCAN_PIXELS = 12 * MAX_PIXELS


class BadImageError(ValueError):
    """A file that cannot be used as a training or test image; ``reason`` says why."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


def is_image_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def refused_images(paths: list[str]) -> list[str]:
    """One line per image extension that Pillow reads and deepres refuses (``.tif``, ``.gif``,
    ...), with how many files, one of them, and why: such files are skipped by a folder scan,
    and a user should not have to guess why their TIFFs were not used."""
    known = Image.registered_extensions()  # ".tif" -> "TIFF", ...
    found: dict[str, list[str]] = {}
    for p in paths:
        ext = os.path.splitext(p)[1].lower()
        if ext in known and ext not in IMAGE_EXTENSIONS:
            found.setdefault(ext, []).append(p)
    accepted = ", ".join(sorted(ALLOWED_FORMATS))
    return [f"{len(v)} {ext} file(s) ignored (e.g. {v[0]}): {known[ext]} images are not "
            f"accepted (deepres reads {accepted}); convert them, e.g. to PNG"
            for ext, v in sorted(found.items())]


def _to_rgb(img: Image.Image) -> Image.Image:
    """Any mode to 8-bit RGB; 16-bit and 32-bit integer images are scaled, not clipped."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img, dtype=np.int64)
        # 16-bit data (mode I;16 or I holding 0..65535) scaled to 0..255.
        top = 65535 if arr.max(initial=0) > 255 or img.mode.startswith("I;16") else 255
        arr8 = np.clip(np.round(arr * (255.0 / top)), 0, 255).astype(np.uint8)
        return Image.fromarray(arr8, mode="L").convert("RGB")
    if img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        arr8 = np.clip(np.round(arr * 255.0 if arr.max(initial=0) <= 1 else arr), 0, 255)
        return Image.fromarray(arr8.astype(np.uint8), mode="L").convert("RGB")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        # Transparent pixels over white, as a viewer shows them.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def pil_to_array(img: Image.Image) -> np.ndarray:
    """A decoded PIL image as ``H x W x 3`` uint8 RGB, as :func:`decode_image` gives a file:
    EXIF orientation applied; grayscale, palette, alpha, CMYK and 16-bit made RGB."""
    img = ImageOps.exif_transpose(img) or img
    return np.asarray(_to_rgb(img), dtype=np.uint8).copy()


def decode_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Fully decode ``path`` into an ``H x W x 3`` uint8 array, or raise :class:`BadImageError`.

    Catches: empty files, non-images and formats off the allowlist, truncated data (by a full
    decode: PIL's ``verify()`` does not check JPEG data), decompression bombs. Applies the EXIF
    orientation. Grayscale, palette, RGBA, CMYK and 16-bit images all become 3-channel RGB.
    """
    if isinstance(path, Member):  # in an archive or a dataset file (data/members.py)
        try:
            data = path.read()
        except OSError as exc:
            raise BadImageError(path, f"cannot read ({exc})") from exc
        return decode_image_bytes(data, path)
    path = Path(path)
    try:
        st = path.stat()
    except OSError as exc:
        raise BadImageError(path, f"cannot read ({exc.strerror})") from exc
    if not stat.S_ISREG(st.st_mode):  # a FIFO or a device would block or never end on open
        raise BadImageError(path, f"not a regular file ({_file_kind(st.st_mode)}); not opened")
    size = st.st_size
    if size == 0:
        raise BadImageError(path, "empty file (0 bytes)")
    return _decode(path, path)


def decode_image_bytes(data: bytes, name: str = "upload") -> np.ndarray:
    """:func:`decode_image` for bytes held in memory (an HTTP request's body): the same checks,
    and nothing reaches the filesystem. Errors name ``name``."""
    if not data:
        raise BadImageError(name, "empty (0 bytes)")
    return _decode(io.BytesIO(data), name)


def jpeg_scans(data: bytes, stop_after: int = MAX_JPEG_SCANS) -> int:
    """How many scans (SOS markers) the JPEG stream ``data`` holds, found by walking its
    segments (a marker inside an EXIF thumbnail or an ICC profile is not counted); counting
    stops at ``stop_after + 1``. 0 for data that is not a JPEG."""
    if data[:2] != b"\xff\xd8":
        return 0
    at, scans, end = 2, 0, len(data)
    while at + 1 < end and scans <= stop_after:
        if data[at] != 0xFF:  # not at a marker: damaged data, which decoding reports
            break
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte before a marker
            at += 1
            continue
        if marker == 0xD9:  # end of image
            break
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            at += 2
            continue
        if at + 4 > end:
            break
        at += 2 + int.from_bytes(data[at + 2:at + 4], "big")
        if marker == 0xDA:  # start of scan: entropy-coded data runs to the next real marker
            scans += 1
            at = _next_marker(data, at)
    return scans


def _next_marker(data: bytes, at: int) -> int:
    """The offset of the first marker at or after ``at`` in entropy-coded data, where 0xFF is
    followed by 0x00 (a stuffed byte) or a restart marker inside a scan."""
    while True:
        at = data.find(b"\xff", at)
        if at < 0 or at + 1 >= len(data):
            return len(data)
        following = data[at + 1]
        if following != 0x00 and not 0xD0 <= following <= 0xD7 and following != 0xFF:
            return at
        at += 1 if following == 0xFF else 2


def _check_scans(data: bytes, size: tuple[int, int], name: str | os.PathLike[str]) -> None:
    w, h = size
    cap = min(MAX_JPEG_SCANS, MAX_JPEG_SCAN_PIXELS // max(1, w * h))
    if data.count(b"\xff\xda") <= cap:  # every scan starts so: no walk needed
        return
    scans = jpeg_scans(data, stop_after=cap)
    if scans > cap:
        raise BadImageError(name, f"a JPEG with more than {cap} scans at {w}x{h}: each scan "
                                  "decodes the whole image again, and deepres accepts at most "
                                  f"{MAX_JPEG_SCANS} scans and {MAX_JPEG_SCAN_PIXELS:,} scans "
                                  "x pixels (encoders write 10 to 20 scans); refused before "
                                  "decoding, re-encode it")


def _decode(source: Path | io.BytesIO, name: str | os.PathLike[str]) -> np.ndarray:
    if isinstance(source, Path):  # read once: the scan count needs the bytes
        try:
            source = io.BytesIO(source.read_bytes())
        except OSError as exc:
            raise BadImageError(name, f"cannot read ({exc.strerror})") from exc
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as img:
                if img.format not in ALLOWED_FORMATS:
                    raise BadImageError(
                        name, f"format {img.format} is not accepted (allowed: "
                              f"{', '.join(sorted(ALLOWED_FORMATS))})")
                w, h = img.size
                if w * h > MAX_PIXELS:
                    raise BadImageError(name, f"decompression bomb: {w}x{h} pixels is over the "
                                              f"limit of {MAX_PIXELS}")
                if img.format == "JPEG":
                    _check_scans(source.getvalue(), (w, h), name)
                img.load()  # full decode: truncated data fails here
                return pil_to_array(img)
    except BadImageError:
        raise
    except UnidentifiedImageError as exc:
        raise BadImageError(name, "not an image (unrecognised data)") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise BadImageError(name, f"decompression bomb: {exc}") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise BadImageError(name, f"corrupt or truncated image data ({exc})") from exc


def _file_kind(mode: int) -> str:
    kinds = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
             (stat.S_ISDIR, "a folder"))
    return next((name for test, name in kinds if test(mode)), "not a plain file")


def image_size(path: str | os.PathLike[str] | io.BytesIO) -> tuple[int, int] | None:
    """``(width, height)`` as decoded (EXIF rotation applied) from the header alone, without
    decoding the pixels (a file, or bytes in memory); None when it cannot be opened as an
    image, or is not a regular file (never opened: a FIFO would block)."""
    if isinstance(path, Member):
        try:
            path = io.BytesIO(path.read())
        except OSError:
            return None
    if not isinstance(path, io.BytesIO):
        try:
            if not stat.S_ISREG(os.stat(path).st_mode):
                return None
        except OSError:
            return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as img:
                w, h = img.size
                if img.format == "JPEG" and img.getexif().get(0x0112, 1) in (5, 6, 7, 8):
                    w, h = h, w  # rotated by 90 degrees when decoded
                return w, h
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError):
        return None
