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
    """The images of one split: sorted class names and ``(path, label)`` samples."""

    root: Path
    classes: list[str]
    samples: list[tuple[str, int]]
    ignored: list[str] = field(default_factory=list)  # stray non-image files

    def __len__(self) -> int:
        return len(self.samples)

    def counts(self) -> dict[str, int]:
        per = np.bincount([y for _, y in self.samples], minlength=len(self.classes))
        return {c: int(n) for c, n in zip(self.classes, per, strict=True)}

    def without(self, bad: Iterable[str]) -> FolderIndex:
        drop = set(bad)
        kept = [(p, y) for p, y in self.samples if p not in drop]
        return FolderIndex(self.root, self.classes, kept, self.ignored)


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


def _walk_key(parts: list[str]) -> tuple[tuple[int, str], ...]:
    """The order os.walk (sorted, top-down) visits a file at ``parts``: a folder's files before
    its sub-folders, each by name; so a tar of a folder lists its images as the folder does."""
    return tuple((1, p) for p in parts[:-1]) + ((0, parts[-1]),)


def index_members(root: str, members: Sequence[str], names: Sequence[str]
                  ) -> dict[str, FolderIndex]:
    """:func:`scan_dataset` over files that are not on disk: ``names[i]`` is the path of
    ``members[i]`` inside an archive (data/tarindex.py), laid out as a folder would be."""
    tree = [(n.strip("/").split("/"), m) for n, m in zip(names, members, strict=True)]
    tree = [(p, m) for p, m in tree if all(_visible(x) and x not in ("", ".", "..") for x in p)]
    tops = {p[0] for p, _ in tree}
    while len(tops) == 1 and all(len(p) > 1 for p, _ in tree):  # one top folder: its content
        root, tree = f"{root}/{tops.pop()}", [(p[1:], m) for p, m in tree]
        tops = {p[0] for p, _ in tree}
    if not tops & set(SPLIT_NAMES):
        return {"train": _index_tree(root, tree)}
    indexes = {s: _index_tree(f"{root}/{s}", [(p[1:], m) for p, m in tree if p[0] == s])
               for s in SPLIT_NAMES if s in tops}
    first = next(iter(indexes.values()))
    if any(idx.classes != first.classes for idx in indexes.values()):
        raise DatasetError(f"{root}: splits have different classes: " + ", ".join(
            f"{s}={idx.classes}" for s, idx in indexes.items()))
    return indexes


def _index_tree(root: str, tree: list[tuple[list[str], str]]) -> FolderIndex:
    files = sorted((p for p in tree if len(p[0]) >= 2), key=lambda x: _walk_key(x[0]))
    classes = sorted({p[0] for p, _ in files})
    if not classes:
        raise DatasetError(f"{safe(root)}: no class folders found; expected "
                           f"{safe(root)}/<class name>/<image files>")
    label = {c: i for i, c in enumerate(classes)}
    samples = [(m, label[p[0]]) for p, m in files if is_image_name(p[-1])]
    ignored = [m for p, m in files if not is_image_name(p[-1])]
    empty = sorted(set(classes) - {classes[y] for _, y in samples})
    if empty:
        raise DatasetError(f"{safe(root)}: {len(empty)} class folder(s) with no images: "
                           f"{', '.join(safe(e) for e in empty[:5])}; add images or remove them")
    return FolderIndex(root, classes, samples, ignored)  # class by class: files sort so
