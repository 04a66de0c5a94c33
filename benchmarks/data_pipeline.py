"""Data pipeline: CIFAR path rate vs resnet20 training rate, first decode vs cached reload,
memory, and the streamed image-folder path (224 px) per DataLoader worker.

    .venv/bin/python benchmarks/data_pipeline.py [--archive ../shared/datasets/cifar10-jpg.tar.gz]
        [--folder-images 50000] [--parts decode,breakdown,cifar,folder]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

HERE = Path(__file__).resolve().parent
DEFAULT_ARCHIVE = HERE.parent.parent / "shared" / "datasets" / "cifar10-jpg.tar.gz"


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def decode_timing(archive: Path) -> None:
    """Each in a child process: a first decode into an empty cache, then a cached reload; the
    peak resident memory each adds above an interpreter that has imported torch and deepres."""
    code = f"""
import sys, time, resource, torch
from deepres.data import load_data
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t = time.perf_counter(); s = load_data({str(archive)!r}); took = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
pixels = (s.train.images.nbytes + s.test.images.nbytes) / 1e6
print(f"| {{sys.argv[1]}} | {{took:.2f}} s | {{pixels:.0f}} MB | {{peak - base:.0f}} MB |")
"""
    print("\nCIFAR-10 JPEG archive (50,000 train + 10,000 test), each step in a child process\n"
          "| step | time | pixels held (train + test) | peak resident memory added |\n"
          "|---|---|---|---|")
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "DEEPRES_CACHE": cache}
        for step in ("first decode (extract + decode 60,000 JPEGs)", "cached reload"):
            subprocess.run([sys.executable, "-c", code, step], env=env, check=True)


def decode_breakdown(archive: Path) -> None:
    """Where a first decode's time goes: extracting the archive's files, then decoding them."""
    code = f"""
import time
from pathlib import Path
from deepres.data import splits as S
t = time.perf_counter(); root = S.extract_folder_archive(Path({str(archive)!r}))
extract = time.perf_counter() - t
splits = S.scan_dataset(root)
t = time.perf_counter()
for index in splits.values():
    S.decode_to_arrays(index)
print(f"| extract 60,000 files | {{extract:.1f}} s |\\n| decode 60,000 JPEGs | "
      f"{{time.perf_counter() - t:.1f}} s |")
"""
    print("\nFirst decode, broken down (child process, empty cache)\n| step | time |\n|---|---|")
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "DEEPRES_CACHE": cache}
        subprocess.run([sys.executable, "-c", code], env=env, check=True)


def cifar_rates(archive: Path) -> None:
    from deepres import create_model
    from deepres.data import ArrayLoader, load_data
    from deepres.data import augment as T

    s = load_data(str(archive))
    mean = T.mean_image(torch.from_numpy(s.train.images))
    loader = ArrayLoader(s.train, 128, seed=0, augment=T.cifar_train_augment)
    t = time.perf_counter()
    n = 0
    for x, _ in loader.batches(0):
        T.normalize(x, mean)
        n += x.shape[0]
    data_rate = n / (time.perf_counter() - t)
    model = create_model("resnet20")
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    batches = loader.batches(1)
    for i in range(23):
        if i == 3:
            t = time.perf_counter()
        x, y = next(batches)
        loss = F.cross_entropy(model(T.normalize(x, mean)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    train_rate = 20 * 128 / (time.perf_counter() - t)
    print("\nCIFAR path: augmented batches (pad-4 crop, flip, mean subtraction) vs training\n"
          "| what | images/s |\n|---|---|")
    print(f"| data pipeline (one epoch, batch 128) | {data_rate:.0f} |")
    print(f"| resnet20 training (forward + backward + SGD, batch 128) | {train_rate:.0f} |")
    print(f"| ratio | {data_rate / train_rate:.1f}x |")


def make_folder(root: Path, n: int, classes: int = 10) -> None:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (8, 96, 128, 3), dtype=np.uint8)
    for i in range(n):
        d = root / f"c{i % classes}"
        if i < classes:
            d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(base[i % 8]).save(d / f"{i:06d}.jpg", quality=85)


def folder_rates(n_images: int) -> None:
    from deepres.data import scan_folder
    from deepres.data.batches import FolderDataset, FolderLoader

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "folder"
        t = time.perf_counter()
        make_folder(root, n_images)
        made = time.perf_counter() - t
        index = scan_folder(root)
        print(f"\nImage folder: {len(index)} JPEGs of 128x96 (made in {made:.0f} s), decode + "
              "scale augmentation to 224 crops in DataLoader workers\n"
              "| workers | images/s | images/s per worker | peak RSS MB (main process) |\n"
              "|---|---|---|---|")
        for workers in (1, 2):
            loader = FolderLoader(FolderDataset(index), 64, workers=workers)
            it = loader.batches(0)
            next(it)
            t, n = time.perf_counter(), 0
            limit = 40 if workers == 1 else 60
            for b, (x, _) in enumerate(it):
                n += x.shape[0]
                if b + 1 >= limit:
                    break
            rate = n / (time.perf_counter() - t)
            print(f"| {workers} | {rate:.0f} | {rate / workers:.0f} | {rss_mb():.0f} |")
        # Bounded memory: stream every image once with 2 workers and watch the main process.
        before = rss_mb()
        loader = FolderLoader(FolderDataset(index), 64, workers=2)
        t = time.perf_counter()
        seen = sum(x.shape[0] for x, _ in loader.batches(1))
        print(f"\nStreamed all {seen} images once in {time.perf_counter() - t:.0f} s; peak RSS "
              f"of the main process {before:.0f} MB before, {rss_mb():.0f} MB after.")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--archive", default=str(DEFAULT_ARCHIVE))
    ap.add_argument("--folder-images", type=int, default=50_000)
    ap.add_argument("--parts", default="decode,breakdown,cifar,folder",
                    help="which sections to run")
    args = ap.parse_args()
    import platform
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, "
          f"{torch.get_num_threads()} torch threads, torch {torch.__version__}")
    if "decode" in args.parts:
        decode_timing(Path(args.archive))
    if "breakdown" in args.parts:
        decode_breakdown(Path(args.archive))
    if "cifar" in args.parts:
        cifar_rates(Path(args.archive))
    if "folder" in args.parts:
        folder_rates(args.folder_images)


if __name__ == "__main__":
    main()
