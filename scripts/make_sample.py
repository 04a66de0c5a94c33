"""Cut the bundled sample (src/deepres/data/sample/cifar10-sample.tar.xz) from the CIFAR-10 JPEGs.

    python scripts/make_sample.py ../shared/datasets/cifar10-jpg.tar.gz

Takes the first 500 training and 100 test images of each class, by sorted file name, and writes
them with fixed metadata so that the archive is reproducible byte for byte.
"""

import io
import sys
import tarfile
from pathlib import Path

PER_SPLIT = {"train": 500, "test": 100}
OUT = Path(__file__).resolve().parents[1] / "src/deepres/data/sample/cifar10-sample.tar.xz"


def main(source: str) -> None:
    chosen: dict[str, bytes] = {}
    counts: dict[tuple[str, str], int] = {}
    with tarfile.open(source) as tar:
        members = sorted((m for m in tar.getmembers() if m.isfile() and m.name.endswith(".jpg")),
                         key=lambda m: m.name)
        for m in members:
            parts = Path(m.name).parts[-3:]  # split/class/file
            split, cls = parts[0], parts[1]
            key = (split, cls)
            if counts.get(key, 0) < PER_SPLIT.get(split, 0):
                counts[key] = counts.get(key, 0) + 1
                chosen["/".join(parts)] = tar.extractfile(m).read()
    with tarfile.open(OUT, "w:xz", preset=9) as out:
        for name in sorted(chosen):
            info = tarfile.TarInfo("cifar10-sample/" + name)
            info.size, info.mtime, info.mode = len(chosen[name]), 0, 0o644
            out.addfile(info, io.BytesIO(chosen[name]))
    print(f"{OUT}: {len(chosen)} images, {OUT.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main(sys.argv[1])
