"""Image folders (``root/<class>/<image>``): scanning, splits and checking every file."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..runtime.terminal import safe
from .errors import DatasetError
from .images import BadImageError, decode_image, is_image_name

SPLIT_NAMES = ("train", "val", "test")


@dataclass
class FolderIndex:
    """The images of one split: sorted class names and ``(path, label)`` samples (a list, or
    columns that make each sample when asked: data/tarindex.py ``MemberRows``)."""

    root: Path
    classes: list[str]
    samples: Sequence[tuple[str, int]]
    ignored: list[str] = field(default_factory=list)  # stray non-image files

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def labels(self) -> np.ndarray:
        """Every sample's label, in order (as arrays and columns hold theirs)."""
        held = getattr(self.samples, "labels", None)
        if held is not None:
            return held
        return np.fromiter((y for _, y in self.samples), np.int64, len(self.samples))

    def counts(self) -> dict[str, int]:
        per = np.bincount(self.labels, minlength=len(self.classes))
        return {c: int(n) for c, n in zip(self.classes, per, strict=True)}

    def subset(self, indices: Sequence[int] | np.ndarray) -> FolderIndex:
        """The samples at ``indices``, in that order (columns stay columns)."""
        take = getattr(self.samples, "take", None)
        kept = take(indices) if take else [self.samples[int(i)] for i in indices]
        return FolderIndex(self.root, self.classes, kept, self.ignored)

    def without(self, bad: Iterable[str]) -> FolderIndex:
        drop = set(bad)
        if not drop:
            return self
        return self.subset([i for i, (p, _) in enumerate(self.samples) if p not in drop])


def _visible(name: str) -> bool:
    # Hidden entries (.git, .ipynb_checkpoints, .DS_Store) are never classes or images.
    return not name.startswith((".", "__"))


def scan_folder(root: str | os.PathLike[str]) -> FolderIndex:
    """Index ``root/<class>/**/<image>``; non-image files are ignored and listed.

    Raises :class:`DatasetError` when ``root`` is missing, has no class folders, or a class
    folder holds no image.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{safe(root)}: no such folder")
    classes = sorted(e.name for e in os.scandir(root) if e.is_dir() and _visible(e.name))
    if not classes:
        raise DatasetError(
            f"{root}: no class folders found; expected {root}/<class name>/<image files>"
        )
    samples: list[tuple[str, int]] = []
    ignored: list[str] = []
    empty: list[str] = []
    for label, cls in enumerate(classes):
        found = 0
        for dirpath, dirnames, filenames in os.walk(root / cls, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames if _visible(d))
            for name in sorted(filenames):
                if not _visible(name):
                    continue
                path = os.path.join(dirpath, name)
                if is_image_name(name):
                    samples.append((path, label))
                    found += 1
                else:
                    ignored.append(path)
        if not found:
            empty.append(cls)
    if empty:
        raise DatasetError(
            f"{safe(root)}: {len(empty)} class folder(s) with no images: "
            f"{', '.join(safe(e) for e in empty[:5])}{' and more' if len(empty) > 5 else ''}; "
            "add images or remove "
            "the folder(s)"
        )
    return FolderIndex(root, classes, samples, ignored)


def find_splits(root: str | os.PathLike[str]) -> dict[str, Path]:
    """``{"train": .., "val": .., "test": ..}`` for the split sub-folders present, else ``{}``."""
    root = Path(root)
    return {s: root / s for s in SPLIT_NAMES if (root / s).is_dir()}


def scan_dataset(root: str | os.PathLike[str]) -> dict[str, FolderIndex]:
    """Every split of a dataset folder; a folder without split sub-folders is one ``train`` split.

    All splits must have the same classes.
    """
    splits = find_splits(root)
    if not splits:
        return {"train": scan_folder(root)}
    indexes = {name: scan_folder(path) for name, path in splits.items()}
    first_name, first = next(iter(indexes.items()))
    for name, idx in indexes.items():
        if idx.classes != first.classes:
            raise DatasetError(
                f"{root}: splits have different classes: {first_name}={first.classes}, "
                f"{name}={idx.classes}"
            )
    return indexes


def holdout_split(n: int, holdout: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, held_out)`` of a fixed random split: ``holdout`` is a fraction in
    (0, 1) or a number of images (>= 1), e.g. the paper's 45k/5k split is 5000 (§4.2)."""
    k = int(holdout) if holdout >= 1 else int(round(n * holdout))
    if not 0 < holdout or (holdout >= 1 and holdout != int(holdout)) or not 0 < k < n:
        raise DatasetError(f"cannot hold out {holdout:g} of {n} training images; give a "
                           f"fraction between 0 and 1 or a count between 1 and {n - 1}")
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[k:]), np.sort(order[:k])


def check_index(index: FolderIndex) -> list[BadImageError]:
    """Fully decode every image of a split; return the bad ones with their reasons (an image
    of another size than the set is held at is not bad: it is resized, as the layout says)."""
    from .progress import progress

    bad = []
    for path, _ in progress(index.samples, f"checking {index.root}"):
        try:
            decode_image(path)
        except BadImageError as exc:
            bad.append(exc)
    return bad


def _walk_key(parts: list[str]) -> str:
    """The order os.walk (sorted, top-down) visits a file at ``parts``: a folder's files before
    its sub-folders, each by name; so a tar of a folder lists its images as the folder does.
    One string that sorts as the tuple ``((1, dir), ..., (0, file))`` would (faster to sort a
    million of): parts joined by NUL, each marked 2 (a folder) or 1 (the file)."""
    return "".join(f"\2{p}\0" for p in parts[:-1]) + f"\1{parts[-1]}"


def _listed(name: str) -> bool:
    """A member a folder scan would visit: no hidden or empty part, no ``.``/``..``."""
    s = "/" + name.strip("/")
    return len(s) > 1 and not ("/." in s or "/__" in s or "//" in s)


def _member(item: str | tuple[str, int]) -> str:
    return item[0] if isinstance(item, tuple) else item  # columns give (member, label)


def index_members(root: str, members: Sequence[str], names: Sequence[str]
                  ) -> dict[str, FolderIndex]:
    """:func:`scan_dataset` over files that are not on disk: ``names[i]`` is the path of
    ``members[i]`` inside an archive (data/tarindex.py), laid out as a folder would be.
    Columns of members (``MemberRows``) stay columns, with the labels set."""
    tree = [(n.strip("/").split("/"), i) for i, n in enumerate(names) if _listed(n)]
    depth = 0  # leading folders every member shares (one top folder: its content)
    while tree and len({p[depth] for p, _ in tree}) == 1 and all(len(p) > depth + 1
                                                                 for p, _ in tree):
        root, depth = f"{root}/{tree[0][0][depth]}", depth + 1
    tops = {p[depth] for p, _ in tree}
    if not tops & set(SPLIT_NAMES):
        return {"train": _index_tree(root, [(p[depth:], i) for p, i in tree], members)}
    indexes = {s: _index_tree(f"{root}/{s}", [(p[depth + 1:], i) for p, i in tree
                                             if p[depth] == s], members)
               for s in SPLIT_NAMES if s in tops}
    first = next(iter(indexes.values()))
    if any(idx.classes != first.classes for idx in indexes.values()):
        raise DatasetError(f"{root}: splits have different classes: " + ", ".join(
            f"{s}={idx.classes}" for s, idx in indexes.items()))
    return indexes


def _index_tree(root: str, tree: list[tuple[list[str], int]], members: Sequence[str]
                ) -> FolderIndex:
    files = sorted((p for p in tree if len(p[0]) >= 2), key=lambda x: _walk_key(x[0]))
    classes = sorted({p[0] for p, _ in files})
    if not classes:
        raise DatasetError(f"{safe(root)}: no class folders found; expected "
                           f"{safe(root)}/<class name>/<image files>")
    label = {c: i for i, c in enumerate(classes)}
    image = [is_image_name(p[-1]) for p, _ in files]
    rows = [(i, label[p[0]]) for (p, i), ok in zip(files, image, strict=True) if ok]
    ignored = [_member(members[i]) for (_, i), ok in zip(files, image, strict=True) if not ok]
    empty = sorted(set(classes) - {classes[y] for _, y in rows})
    if empty:
        raise DatasetError(f"{safe(root)}: {len(empty)} class folder(s) with no images: "
                           f"{', '.join(safe(e) for e in empty[:5])}; add images or remove them")
    take = getattr(members, "take", None)
    if take is not None:
        samples = take([i for i, _ in rows], labels=[y for _, y in rows])
    else:
        samples = [(members[i], y) for i, y in rows]
    return FolderIndex(root, classes, samples, ignored)  # class by class: files sort so
