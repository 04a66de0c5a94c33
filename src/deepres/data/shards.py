"""WebDataset shards: tar files whose members ``KEY.jpg`` (or ``.png``, ...) and ``KEY.cls``
(the label as a decimal number) make one sample each.

``--data`` takes a brace pattern (``shards/train-{000000..000127}.tar``, the notation
WebDataset and its users write), a list of them (``shards/{train,test}-{000000..000003}.tar``)
or a folder of shards. A shard's split is the prefix of its file name (``train-``, ``val-``,
``test-``) or the name of the folder it is in; other shards are training shards. Class names
come from ``classes.json`` beside the shards (``deepres data shard`` writes it), else the
labels are their own names ("0", "1", ...).

Shards are read in place (data/tarindex.py): one pass over each shard's headers and labels,
cached, then each image is one seek and one read. A split of shards is therefore a
:class:`FolderIndex` like any folder: the same shuffling, bit-identical resume, every test
image counted once across torchrun ranks, and the same choice of held-in-memory or streamed.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import random
import re
import tarfile
from collections.abc import Callable, Collection, Iterator
from pathlib import Path

from ..runtime.files import atomic_write, atomic_write_text
from ..runtime.terminal import safe
from . import remote
from .errors import DatasetError, check_label
from .folder import SPLIT_NAMES, FolderIndex
from .images import image_size, is_image_name
from .members import Member
from .progress import progress
from .tarindex import MAX_MEMBER_BYTES, MemberRows, cached_index, iter_members

CLASSES_FILE = "classes.json"
_RANGE = re.compile(r"\{(\d+)\.\.(\d+)\}")
_LIST = re.compile(r"\{([^{}]*,[^{}]*)\}")


# A pattern naming more shards than this is a typo ({0..99999999} ran out of memory after two
# minutes), not a dataset: a million shards of 1,000 images would be a billion images.
MAX_SHARDS = 1_000_000


def expand_braces(pattern: str) -> list[str]:
    """``a-{000..002}.tar`` gives ``a-000.tar a-001.tar a-002.tar`` (zero padding kept);
    ``{train,test}-0.tar`` gives both; the two combine. At most MAX_SHARDS names."""
    names = list(itertools.islice(_expand(pattern), MAX_SHARDS + 1))
    if len(names) > MAX_SHARDS:
        raise DatasetError(f"{safe(pattern)}: names more than {MAX_SHARDS:,} shards; check "
                           "its {low..high} ranges")
    return names


def _expand(pattern: str) -> Iterator[str]:
    m = _LIST.search(pattern)
    if m:
        for alt in m.group(1).split(","):
            yield from _expand(pattern[:m.start()] + alt + pattern[m.end():])
        return
    m = _RANGE.search(pattern)
    if not m:
        yield pattern
        return
    lo, hi = int(m.group(1)), int(m.group(2))
    if hi < lo:
        raise DatasetError(f"{safe(pattern)}: the range {m.group(0)} counts down; write "
                           "{low..high}")
    width = len(m.group(1))
    for i in range(lo, hi + 1):
        yield from _expand(pattern[:m.start()] + f"{i:0{width}d}" + pattern[m.end():])


def is_shard_pattern(spec: str) -> bool:
    return ".tar" in spec and bool(_RANGE.search(spec) or _LIST.search(spec))


def is_shard_folder(path: Path) -> bool:
    """A folder of ``*.tar`` shards (with ``classes.json``, or with no class folders)."""
    if not path.is_dir():
        return False
    if (path / CLASSES_FILE).is_file():
        return True
    entries = [e for e in path.iterdir() if not e.name.startswith(".")]
    return bool(entries) and all(e.is_file() and e.suffix == ".tar" for e in entries)


def shards_of(spec: str) -> list[str]:
    """The shard files ``--data spec`` names (paths or URLs), each checked to exist."""
    folder = not is_shard_pattern(spec) and (spec.endswith("/") if remote.is_url(spec)
                                              else Path(spec).is_dir())
    if folder:
        found = remote.listing(spec, "*.tar") + remote.listing(spec, "*/*.tar")
        if not found:
            raise DatasetError(f"{safe(spec)}: a folder of shards with no .tar files in it")
        return found
    paths = expand_braces(spec)
    missing = [p for p in paths if not remote.is_file(p)]
    if missing:
        raise DatasetError(f"{safe(missing[0])}: no such shard ({len(missing)} of the "
                           f"{len(paths)} files that {safe(spec)} names are missing)")
    return paths


def _split_of(shard: str) -> str:
    for name in (remote.basename(shard).split("-")[0], remote.basename(remote.parent(shard))):
        if name in SPLIT_NAMES:
            return name
    return "train"


def _shard_samples(shard: str | Path) -> list[list]:
    """``[key, image member name, offset, size, label, width, height]`` for every sample of
    one shard (the size from the image's header, read as the shard goes by: ``0, 0`` when it
    cannot be read); a sample with an image and no label, or a label that is not a number, is
    an error naming it. Members other than images and labels (``.json`` and the like) are
    left alone."""
    images: dict[str, tuple[str, int, int, int, int]] = {}
    labels: dict[str, int] = {}
    for tf, info in iter_members(shard):
        folder, _, base = info.name.rpartition("/")
        stem, _, ext = base.partition(".")
        key = f"{folder}/{stem}" if folder else stem
        if ext == "cls":
            text = tf.extractfile(info).read(64).decode("ascii", "replace").strip()
            if not text.isdecimal() or not text.isascii():
                raise DatasetError(f"{safe(shard)}: sample {safe(key)} has the label "
                                   f"{safe(text)!r}; a .cls member holds a class number")
            _once(labels, key, shard, "label")
            labels[key] = check_label(int(text), f"{safe(shard)}: sample {safe(key)}")
        elif is_image_name(info.name):
            if key in images and images[key][0] != info.name:
                continue  # a second image of one sample (KEY.jpg, KEY.seg.png): the first
            _once(images, key, shard, "image")
            images[key] = (info.name, info.offset_data, info.size, *_header_size(tf, info))
    unlabelled = [k for k in images if k not in labels]
    if unlabelled:
        raise DatasetError(f"{safe(shard)}: sample {safe(unlabelled[0])} has an image and no "
                           f".cls label ({len(unlabelled)} such); every sample needs KEY.cls")
    return [[k, name, off, size, labels[k], w, h] for k, (name, off, size, w, h)
            in images.items()]


def _once(seen: dict[str, object], key: str, shard: str, what: str) -> None:
    """A key's image or label may come once in a shard: a second one would silently relabel a
    sample (the second image dropped, the first taking its label)."""
    if key in seen:
        raise DatasetError(f"{safe(shard)}: the key {safe(key)} has a second {what} member; "
                           "each sample's key comes once in a shard (rename or drop one)")


def _header_size(tf: tarfile.TarFile, info: tarfile.TarInfo) -> tuple[int, int]:
    """An image member's ``(width, height)`` from its header, or ``(0, 0)``."""
    if info.size > MAX_MEMBER_BYTES:
        return 0, 0  # refused when it is read: a bad file then, with its reason
    try:
        return image_size(io.BytesIO(tf.extractfile(info).read())) or (0, 0)
    except (OSError, tarfile.TarError):
        return 0, 0


def shard_indexes(shards: list[str], cache: Path, splits: Collection[str] | None = None
                  ) -> dict[str, FolderIndex]:
    """Each split's samples, read from the shards' headers (cached per shard); with
    ``splits``, only the shards of those splits are read (a ``test`` the shards lack is
    their ``val``, as always). Without ``classes.json`` the class count is then the highest
    label of the shards read."""
    if splits is not None:
        named = {_split_of(s) for s in shards}  # from the names: nothing is read
        want = set(splits) | ({"val"} if "test" in splits and "test" not in named else set())
        chosen = [s for s in shards if _split_of(s) in want]
        if not chosen:
            raise DatasetError(f"{safe(remote.parent(shards[0]))}: no shard of the "
                               f"{' or '.join(sorted(splits))} split (shards are named "
                               "SPLIT-NNNNNN.tar or lie in a SPLIT/ folder)")
        shards = chosen
    parts: dict[str, list[MemberRows]] = {}
    for shard in progress(shards, "indexing shards", unit="shard"):
        rows = cached_index(shard, "wds", _shard_samples, cache)
        parts.setdefault(_split_of(shard), []).append(
            MemberRows.of_archive(shard, [r[1:] for r in rows]))
    root = remote.parent(shards[0])
    samples = {s: MemberRows.concat(parts.pop(s)) for s in SPLIT_NAMES if s in parts}
    if not any(len(rows) for rows in samples.values()):
        raise DatasetError(f"{safe(root)}: its {len(shards)} shard(s) hold no samples (no "
                           "KEY.jpg with KEY.cls in them); nothing to train or test on")
    classes = _classes(root, samples)
    return {s: FolderIndex(f"{root}/{s}", classes, rows) for s, rows in samples.items()}


def _classes(folder: str, samples: dict[str, MemberRows]) -> list[str]:
    top = max((int(rows.labels.max()) for rows in samples.values() if len(rows)), default=-1)
    path = f"{folder}/{CLASSES_FILE}"
    if not remote.is_file(path):
        return [str(i) for i in range(top + 1)]
    try:
        classes = json.loads(remote.read_bytes(path))["classes"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DatasetError(f"{safe(path)}: not a class list ({exc}); it holds "
                           '{"classes": ["name", ...]}') from exc
    if top >= len(classes):
        raise DatasetError(f"{safe(path)}: names {len(classes)} classes, but a shard has "
                           f"the label {top}")
    return [str(c) for c in classes]


def write_shards(indexes: dict[str, FolderIndex], out: Path, shard_size: int,
                 seed: int = 0, publish: Callable[[Path], None] | None = None
                 ) -> dict[str, int]:
    """Write each split as ``OUT/{split}-{n:06d}.tar`` of at most ``shard_size`` samples, in
    an order shuffled by ``seed`` (a shard then holds every class, as streaming readers
    want), with the image files' bytes as they are, and ``OUT/classes.json``. Each shard is
    written to a temporary name and renamed, so an interrupted run leaves no partial shard.
    ``publish`` is called with each file once written (``deepres data shard`` to a store
    uploads it). Returns the number of shards per split."""
    if shard_size < 1:
        raise DatasetError(f"--shard-size {shard_size}: give a positive number of samples")
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    for split, index in indexes.items():
        order = list(range(len(index)))
        random.Random(seed).shuffle(order)
        chunks = [order[i:i + shard_size] for i in range(0, len(order), shard_size)]
        for n, chunk in enumerate(progress(chunks, f"writing {split} shards", unit="shard")):
            atomic_write(out / f"{split}-{n:06d}.tar",
                         lambda tmp, c=chunk, i=index, s=split: _write_shard(tmp, i, c, s))
            if publish is not None:  # e.g. uploaded to a store, then removed here
                publish(out / f"{split}-{n:06d}.tar")
        counts[split] = len(chunks)
    classes = next(iter(indexes.values())).classes
    atomic_write_text(out / CLASSES_FILE, json.dumps({"classes": classes}, indent=1) + "\n")
    if publish is not None:
        publish(out / CLASSES_FILE)
    return counts


def _write_shard(path: Path, index: FolderIndex, chunk: list[int], split: str) -> None:
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tf:
        for i in chunk:
            source, label = index.samples[i]
            data = source.read() if isinstance(source, Member) else Path(source).read_bytes()
            key = f"{split}{i:08d}"
            ext = _extension(source, data)
            _add(tf, f"{key}.{ext}", data)
            _add(tf, f"{key}.cls", str(label).encode())
            _add(tf, f"{key}.json", json.dumps({"class": index.classes[label], "file": os.path
                                                .relpath(source, index.root)}).encode())


def _extension(source: str, data: bytes) -> str:
    """The image's own extension, or (a row of a dataset) the one its format has."""
    ext = Path(source).suffix.lower().lstrip(".")
    if is_image_name(f"x.{ext}") and not isinstance(source, Member):
        return ext
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            return {"JPEG": "jpg"}.get(img.format or "", (img.format or "jpg").lower())
    except OSError:
        return ext or "jpg"


def _add(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 0  # the same bytes every time
    tf.addfile(info, io.BytesIO(data))
