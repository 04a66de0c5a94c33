"""Data at scale: the shard path against the folder path, and what indexing a large set costs.

    .venv/bin/python benchmarks/data_scale.py [--images 768] [--workers 1 2]

1. Training images/s of 224-px crops (scale augmentation, §3.4) from ImageNet-sized JPEGs
   (500x375, quality 90), read from an image folder and from the WebDataset shards
   ``deepres data shard`` made of it, through DataLoader workers, one epoch each, in one run;
   each worker count in a fresh process (its peak memory is that process's).
2. Peak memory of a streamed epoch at N and 2N images (bounded: not growing with the set).
3. Indexing: one shard of 10,000 samples (the header pass), and a 1.28-million-sample set of
   128 such shards from the cached indexes (the second run's cost), time and memory; and the
   folder-layout index of 1.28 million synthetic names (``index_members``: the same code as a
   ``.tar`` read in place). Synthetic names, not decodes: this measures the index.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def _make_folder(root: Path, n: int) -> Path:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (375, 500, 3), dtype=np.uint8)
    for i in range(n):
        d = root / "train" / f"c{i % 10}"
        d.mkdir(parents=True, exist_ok=True)
        img = np.roll(base, i * 7, axis=1)  # JPEG-compressible, all different
        Image.fromarray(img).save(d / f"{i:06d}.jpg", quality=90)
    for c in range(10):
        (root / "test" / f"c{c}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(base).save(root / "test" / f"c{c}" / "0.jpg", quality=90)
    return root


def _epoch(data: str, workers: int) -> dict:
    """One epoch of the training loader in this process: images/s and peak memory."""
    from deepres.data.config import DataConfig
    from deepres.data.pipeline import build_pipeline

    cfg = DataConfig(data=data, workers=workers)
    p = build_pipeline(cfg, 32, "cpu", seed=0)
    n = 0
    t0 = time.perf_counter()
    for x, _ in p.train.batches(0):
        n += len(x)
    dt = time.perf_counter() - t0
    peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    return {"images": n, "seconds": dt, "images_per_s": n / dt, "peak_mb": peak}


def _in_child(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True,
                         text=True, check=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    return json.loads(out.stdout.strip().splitlines()[-1])


def _rss_mb() -> float:
    """This process's resident memory now (Linux), in MB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _index_figures(tmp: Path) -> dict:
    import tarfile

    from deepres.data.folder import index_members
    from deepres.data.shards import shard_indexes

    shard = tmp / "train-000000.tar"
    with tarfile.open(shard, "w") as tf:
        import io

        for i in range(10_000):
            for name, data in ((f"s{i:06d}.jpg", b"\xff\xd8" + bytes(1000)),
                               (f"s{i:06d}.cls", str(i % 1000).encode())):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    cache = tmp / "cache"
    t0 = time.perf_counter()
    shard_indexes([str(shard)], cache)
    one = time.perf_counter() - t0
    links = []
    for k in range(1, 128):  # the same bytes under 128 names; their cached indexes copied
        link = tmp / f"train-{k:06d}.tar"
        os.link(shard, link)
        links.append(str(link))
    from deepres.data.tarindex import _cache_file

    saved = _cache_file(str(shard), "wds", cache).read_text()
    for link in links:
        target = _cache_file(link, "wds", cache)
        target.write_text(saved)
    gc.collect()
    rss0, held0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, _rss_mb()
    t0 = time.perf_counter()
    idx = shard_indexes([str(shard), *links], cache)
    cached = time.perf_counter() - t0
    gc.collect()
    rss1, held1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, _rss_mb()
    total = len(idx["train"])
    del idx
    names = [f"imagenet/train/n{c:08d}/img_{i:07d}.JPEG" for c in range(1000)
             for i in range(1280)]
    t0 = time.perf_counter()
    index_members("x.tar", names, names)
    tree = time.perf_counter() - t0
    return {"one_shard_10k_index_s": one, "cached_1_28m_samples": total,
            "cached_1_28m_s": cached, "cached_1_28m_peak_growth_mb": rss1 - rss0,
            "cached_1_28m_held_mb": held1 - held0,
            "folder_layout_1_28m_names_s": tree}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=768)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--child", nargs=2, metavar=("DATA", "WORKERS"))
    ap.add_argument("--index-only", action="store_true", help="only the indexing figures")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(_epoch(args.child[0], int(args.child[1]))))
        return
    import torch

    from deepres.data.datasource import resolve
    from deepres.data.shards import write_shards

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__}; command: {' '.join(sys.argv)}")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        os.environ["DEEPRES_CACHE"] = str(tmp / "cache")
        rows = []
        for n in () if args.index_only else (args.images, 2 * args.images):
            folder = _make_folder(tmp / f"folder{n}", n)
            shards = tmp / f"shards{n}"
            write_shards(resolve(str(folder)).indexes(), shards, 256)
            for w in args.workers if n == args.images else args.workers[-1:]:
                for kind, data in (("folder", folder), ("shards", shards)):
                    r = _in_child(str(data), str(w))
                    rows.append({"n": n, "workers": w, "kind": kind, **r})
                    print(f"{kind:>7} n={n:<5} workers={w}: {r['images_per_s']:7.1f} img/s, "
                          f"peak {r['peak_mb']:.0f} MB (process and workers)", flush=True)
        for w in () if args.index_only else args.workers:
            f, s = (next(r for r in rows if r["n"] == args.images and r["workers"] == w
                         and r["kind"] == k) for k in ("folder", "shards"))
            print(f"workers={w}: shards/folder = {s['images_per_s'] / f['images_per_s']:.2f}")
        ix = _index_figures(tmp)
        print(f"index one shard of 10,000 samples (header pass): {ix['one_shard_10k_index_s']:.2f}"
              f" s; 128 shards = {ix['cached_1_28m_samples']:,} samples from cached indexes: "
              f"{ix['cached_1_28m_s']:.1f} s, peak memory +{ix['cached_1_28m_peak_growth_mb']:.0f}"
              f" MB, held +{ix['cached_1_28m_held_mb']:.0f} MB; folder layout of 1.28M names: "
              f"{ix['folder_layout_1_28m_names_s']:.1f} s")


if __name__ == "__main__":
    main()
