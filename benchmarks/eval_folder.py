"""`deepres eval` on an image folder: images/s, end to end (process start excluded).

    .venv/bin/python benchmarks/eval_folder.py [--images 400] [--workers 2] [--src DIR]

Makes (once) a folder of photo-sized JPEGs (2 classes, 320x240) and a resnet18 weights file
with deepres metadata, then times `deepres eval` on it. ``--src`` runs another checkout's
deepres (its ``src`` folder first on PYTHONPATH), for before/after comparisons on one machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import deepres


def make_folder(root: Path, images: int) -> Path:
    if (root / ".complete").exists():
        return root
    rng = np.random.default_rng(0)
    for i in range(images):
        d = root / "test" / f"class{i % 2}"
        d.mkdir(parents=True, exist_ok=True)
        img = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
        Image.fromarray(img).save(d / f"{i:05d}.jpg", quality=90)
    for c in range(2):
        (root / "train" / f"class{c}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.zeros((240, 320, 3), np.uint8)).save(
            root / "train" / f"class{c}" / "0.jpg")
    (root / ".complete").touch()
    return root


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=400)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--src", default=None, help="another checkout's src/ to run instead")
    ap.add_argument("--dir", default=str(Path(tempfile.gettempdir()) / "deepres-eval-bench"))
    a = ap.parse_args()
    root = make_folder(Path(a.dir) / f"folder-{a.images}", a.images)
    weights = Path(a.dir) / "resnet18.safetensors"
    if not weights.exists():
        torch.manual_seed(0)
        deepres.save_weights(deepres.create_model("resnet18", num_classes=2), weights,
                             class_names=["class0", "class1"],
                             extra={"input_mean": [0.5, 0.5, 0.5], "input_size": 224,
                                    "test_resize": 256})
    env = dict(os.environ)
    if a.src:
        env["PYTHONPATH"] = str(Path(a.src).resolve())
    cmd = [sys.executable, "-c",
           "import sys, time, json, runpy; sys.argv = ['deepres'] + sys.argv[1:]; "
           "t = time.perf_counter(); from deepres.cli import main; rc = main(); "
           "print(json.dumps({'seconds': time.perf_counter() - t, 'rc': rc}))",
           "eval", "--weights", str(weights), "--data", str(root), "--json"]
    if not a.src:  # the earlier code had neither flag; it ran fp32 in the main process
        cmd += ["--workers", str(a.workers), "--precision", "fp32"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    lines = [json.loads(x) for x in done.stdout.splitlines() if x.startswith("{")]
    if done.returncode != 0 or len(lines) < 2:
        sys.exit(done.stderr[-2000:])
    result, timing = lines[0], lines[-1]
    print(json.dumps({"images": result["images"], "seconds": round(timing["seconds"], 2),
                      "images_per_s": round(result["images"] / timing["seconds"], 1),
                      "code": a.src or "this checkout",
                      "workers": None if a.src else a.workers}))


if __name__ == "__main__":
    main()
