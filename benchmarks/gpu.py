"""GPU benchmark, ready before a GPU is: one script, one run, all figures.

    .venv/bin/python benchmarks/gpu.py [--device cuda] \
        [--data ../shared/datasets/cifar10-jpg.tar.gz]
    .venv/bin/python benchmarks/gpu.py --tiny          # CPU smoke test (what the test suite runs)

Parts (each prints one table row; a part that fails prints its error and the rest go on):
1. ResNet-50 training images/s on synthetic 224x224 inputs, bf16 autocast + channels_last,
   eager vs torch.compile (compile time reported apart).
2. ResNet-20 CIFAR training images/s with the whole dataset held on the device (uint8) and the
   paper's augmentation done there, batched.
3. The data path alone (gather + augment + normalize on the device) vs the training step.
4. One epoch of the real CIFAR-10 JPEG set through `deepres train`, timed end to end
   (decode into the cache excluded: it is done once before timing, and reported).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch
import torch.nn.functional as F

import deepres
from deepres.data import ArrayLoader, load_data
from deepres.data import augment as T

HERE = Path(__file__).resolve().parent


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _train_step(model, opt, device):
    def step(x, y):
        with torch.autocast(device.type, dtype=torch.bfloat16):
            loss = F.cross_entropy(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def _rate(step, batches, warmup, iters, device, batch):
    """Images/s of ``step`` over ``iters`` calls after ``warmup`` calls."""
    it = iter(batches)
    for _ in range(warmup):
        step(*next(it))
    _sync(device)
    t = time.perf_counter()
    for _ in range(iters):
        step(*next(it))
    _sync(device)
    return batch * iters / (time.perf_counter() - t)


def resnet50_synthetic(device, batch, size, iters, compile_):
    model = deepres.create_model("resnet50").to(device).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    run = torch.compile(model) if compile_ else model
    x = torch.randn(batch, 3, size, size, device=device).contiguous(
        memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (batch,), device=device)
    step = _train_step(run, opt, device)
    t = time.perf_counter()
    step(x, y)  # the first call compiles
    _sync(device)
    first = time.perf_counter() - t
    rate = _rate(step, iter(lambda: (x, y), None), 2, iters, device, batch)
    return {"images_per_s": round(rate, 1), "first_step_s": round(first, 1)}


def cifar_on_device(device, data, batch, iters):
    splits = load_data(data)
    loader = ArrayLoader(splits.train, batch, device, augment=T.cifar_train_augment)
    mean = T.mean_image(torch.from_numpy(splits.train.images)).to(device)
    model = deepres.create_model("resnet20", num_classes=len(splits.classes)).to(device)
    model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    step = _train_step(model, opt, device)

    def batches():
        epoch = 0
        while True:
            for x, y in loader.batches(epoch):
                yield T.normalize(x, mean).contiguous(memory_format=torch.channels_last), y
            epoch += 1

    train = _rate(step, batches(), 3, iters, device, batch)
    data_only = _rate(lambda x, y: None, batches(), 3, iters, device, batch)
    return {"train_images_per_s": round(train, 1), "data_images_per_s": round(data_only, 1),
            "data_over_train": round(data_only / train, 1)}


def one_epoch(device, data, model, batch):
    cache = tempfile.mkdtemp(prefix="deepres-gpu-cache-")
    env = {**os.environ, "DEEPRES_CACHE": cache}
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"from deepres.data import load_data; "
                    f"load_data({data!r})"], env=env, check=True)
    decode = time.perf_counter() - t
    run = Path(tempfile.mkdtemp(prefix="deepres-gpu-run-")) / "run"
    t = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "deepres", "train", "--model", model, "--data",
                           data, "--epochs", "1", "--batch-size", str(batch), "--device",
                           str(device), "--run-dir", str(run)], env=env, capture_output=True,
                          text=True)
    wall = time.perf_counter() - t
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    summary = json.loads(done.stdout[done.stdout.index("{"):])
    return {"epoch_wall_s": round(wall, 1), "train_s": summary["seconds"],
            "test_error": round(summary["test_error"], 4), "first_decode_s": round(decode, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--data", default=None, help="default: the shared CIFAR-10 JPEG set; with "
                    "--tiny, the bundled sample")
    ap.add_argument("--tiny", action="store_true", help="seconds on a CPU: small sizes, sample")
    ap.add_argument("--json", default=None, help="also write the results here")
    a = ap.parse_args()
    device = torch.device(a.device)
    tiny = a.tiny
    data = a.data or ("sample" if tiny else str(HERE.parent.parent / "shared" / "datasets" /
                                                "cifar10-jpg.tar.gz"))
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"device: {device} ({name}); torch {torch.__version__}", flush=True)
    parts = {
        "resnet50 synthetic, bf16 + channels_last, eager": lambda: resnet50_synthetic(
            device, 2 if tiny else 256, 64 if tiny else 224, 1 if tiny else 20, False),
        "resnet50 synthetic, bf16 + channels_last, torch.compile": lambda: resnet50_synthetic(
            device, 2 if tiny else 256, 64 if tiny else 224, 1 if tiny else 20, True),
        "resnet20 CIFAR, data on the device": lambda: cifar_on_device(
            device, data, 16 if tiny else 512, 2 if tiny else 100),
        "one epoch of CIFAR-10 JPEG, deepres train": lambda: one_epoch(
            device, data, "resnet8" if tiny else "resnet20", 64 if tiny else 512),
    }
    if tiny:
        parts.pop("resnet50 synthetic, bf16 + channels_last, torch.compile")  # minutes on a CPU
    results = {}
    for label, fn in parts.items():
        try:
            results[label] = fn()
        except Exception as exc:  # noqa: BLE001 - report and go on to the next part
            traceback.print_exc()
            results[label] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
        print(f"| {label} | {json.dumps(results[label])} |", flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps({"device": name, "results": results}, indent=2))
    sys.exit(1 if any("error" in r for r in results.values()) else 0)


if __name__ == "__main__":
    main()
