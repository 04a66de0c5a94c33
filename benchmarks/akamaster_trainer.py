"""A peer's trainer, unchanged, from scratch on our CIFAR-10 JPEG files (issue 44, item 2).

    .venv/bin/python benchmarks/akamaster_trainer.py [--arch resnet20] [--seed 0]
        [--out reports/full/peer/akamaster-resnet20-s0] [--epochs 200] [--stop-after-epochs N]

It imports akamaster's own `resnet.py` and `trainer.py` from `../shared/peers/akamaster` (never
copied, never edited) and calls that trainer's `train` and `validate` for each epoch, with the
trainer's recipe as its `main()` sets it up: SGD lr 0.1, momentum 0.9, weight decay 1e-4, batch 128,
`MultiStepLR` /10 after epochs 100 and 150, 200 epochs; training transforms RandomHorizontalFlip,
RandomCrop(32, padding 4), ToTensor, Normalize(ImageNet mean/std); test ToTensor + Normalize; the
warm-up lr of 0.01 in the first epoch for resnet110/1202. `main()` itself is not called: it reads
`torchvision.datasets.CIFAR10` with `download=True` and moves everything to CUDA. What differs:

- The data are our JPEG folders (`train/`, `test/` of `cifar10-jpg.tar.gz`, extracted once into
  deepres's cache) read with torchvision's `ImageFolder`; its class order (sorted names) is
  CIFAR-10's label order.
- CPU: `Tensor.cuda` and `Module.cuda` are made no-ops in this process (the trainer calls `.cuda()`
  on every batch); `DataParallel` wraps the model as in `main()` and runs it on the CPU.
- One DataLoader worker (two cores here; the trainer's default is 4), torch seeded with `--seed`.
- A checkpoint after every epoch (the trainer's own saves every 10): model, optimizer, scheduler,
  torch/numpy/python RNG states and the best test accuracy, written atomically, so a run resumes
  on any CPU where the last finished epoch ended. Each epoch's test error goes to `epochs.jsonl`.

Run it again with the same `--out` to resume. The report reads `epochs.jsonl`: final error and
best-epoch error (the peer's selection rule: `best_prec1` over the test set).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torchvision.datasets as datasets
import torchvision.transforms as transforms
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
PEER = ROOT.parent / "shared" / "peers" / "akamaster"
ARCHIVE = ROOT.parent / "shared" / "datasets" / "cifar10-jpg.tar.gz"
MILESTONES = (100, 150)  # trainer.py's MultiStepLR milestones, in epochs


def import_peer(peer: Path = PEER):
    """akamaster's `resnet` and `trainer` modules, imported from their folder as they are."""
    if not (peer / "trainer.py").is_file():
        sys.exit(f"akamaster_trainer: no trainer.py in {peer} (the peer code is in shared/peers)")
    sys.path.insert(0, str(peer))
    with contextlib.redirect_stdout(io.StringIO()):  # trainer.py prints its model list on import
        import resnet  # noqa: PLC0415
        import trainer  # noqa: PLC0415
    return resnet, trainer


def cpu_only() -> None:
    """The trainer moves every batch with `.cuda()`: on a CPU those calls keep the tensor."""
    torch.Tensor.cuda = lambda self, *a, **k: self  # type: ignore[method-assign]
    nn.Module.cuda = lambda self, *a, **k: self  # type: ignore[method-assign]


def loaders(root: Path, batch_size: int, workers: int) -> tuple:
    """trainer.py's two DataLoaders and transforms, over ImageFolder instead of CIFAR10."""
    normalize = transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
    train_set = datasets.ImageFolder(str(root / "train"), transform=transforms.Compose([
        transforms.RandomHorizontalFlip(), transforms.RandomCrop(32, 4),
        transforms.ToTensor(), normalize]))
    test_set = datasets.ImageFolder(str(root / "test"), transform=transforms.Compose([
        transforms.ToTensor(), normalize]))
    train = torch.utils.data.DataLoader(train_set, batch_size=batch_size, shuffle=True,
                                        num_workers=workers, persistent_workers=False)
    test = torch.utils.data.DataLoader(test_set, batch_size=128, shuffle=False,
                                       num_workers=workers)
    return train, test


def dataset_root(archive: Path) -> Path:
    sys.path.insert(0, str(ROOT / "src"))
    from deepres.data.splits import extract_folder_archive  # noqa: PLC0415
    return extract_folder_archive(archive)


def rng_state() -> dict:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
            "python": random.getstate()}


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


def save_atomic(obj: dict, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def mend_log(log: Path, epoch: int, last: dict | None) -> None:
    """The log holds exactly the epochs the checkpoint has finished (a stop can fall between)."""
    lines = log.read_text().splitlines() if log.exists() else []
    kept = [ln for ln in lines if ln.strip() and json.loads(ln)["epoch"] <= epoch]
    if last is not None and (not kept or json.loads(kept[-1])["epoch"] < epoch):
        kept.append(json.dumps(last))
    if kept != lines:
        log.write_text("".join(ln + "\n" for ln in kept))


def machine() -> str:
    name = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    isa = "avx512" if "avx512f" in flags else "avx2" if "avx2" in flags else "other"
    return f"{name} ({isa}), {os.cpu_count()} cores"


def build(resnet, arch: str, lr: float, momentum: float, wd: float):
    model = torch.nn.DataParallel(resnet.__dict__[arch]())
    optimizer = torch.optim.SGD(model.parameters(), lr, momentum=momentum, weight_decay=wd)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(MILESTONES))
    return model, optimizer, scheduler


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="resnet20")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--data", type=Path, default=ARCHIVE, help="cifar10-jpg.tar.gz or its folder")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--print-freq", type=int, default=100)
    ap.add_argument("--stop-after-epochs", type=int, default=0,
                    help="end after this many epochs in this call (0: run to the end)")
    args = ap.parse_args()
    out = args.out or ROOT / "reports" / "full" / "peer" / f"akamaster-{args.arch}-s{args.seed}"
    out.mkdir(parents=True, exist_ok=True)
    if args.threads:
        torch.set_num_threads(args.threads)
    resnet, trainer = import_peer()
    cpu_only()
    trainer.args = argparse.Namespace(print_freq=args.print_freq, half=False)
    root = args.data if args.data.is_dir() else dataset_root(args.data)
    train_loader, val_loader = loaders(root, 128, args.workers)

    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    random.seed(args.seed)
    model, optimizer, scheduler = build(resnet, args.arch, 0.1, 0.9, 1e-4)
    criterion = nn.CrossEntropyLoss()
    ckpt_path, log_path = out / "checkpoint.th", out / "epochs.jsonl"
    start, best = 0, 0.0
    if ckpt_path.exists():
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        model.load_state_dict(ckpt["state_dict"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        set_rng_state(ckpt["rng"])
        start, best = ckpt["epoch"], ckpt["best_prec1"]
        mend_log(log_path, start, ckpt.get("record"))
        print(f"resuming {out} after epoch {start} (best test accuracy {best:.2f}%)", flush=True)
    elif args.arch in ("resnet110", "resnet1202"):
        for group in optimizer.param_groups:  # trainer.py's first-epoch warm-up
            group["lr"] = 0.1 * 0.1
    print(f"akamaster {args.arch} seed {args.seed} on {root}: {len(train_loader.dataset)} train, "
          f"{len(val_loader.dataset)} test images; {machine()}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads", flush=True)
    done_here = 0
    for epoch in range(start, args.epochs):
        lr = optimizer.param_groups[0]["lr"]
        t0 = time.time()
        trainer.train(train_loader, model, criterion, optimizer, epoch)
        train_s = time.time() - t0
        scheduler.step()
        prec1 = trainer.validate(val_loader, model, criterion)
        best = max(prec1, best)
        record = {"epoch": epoch + 1, "lr": lr, "test_error": round(100.0 - prec1, 4),
                  "best_test_error": round(100.0 - best, 4), "train_seconds": round(train_s, 1),
                  "images_per_second": round(len(train_loader.dataset) / train_s, 1),
                  "machine": machine(), "threads": torch.get_num_threads(),
                  "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
        save_atomic({"epoch": epoch + 1, "state_dict": model.state_dict(), "best_prec1": best,
                     "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                     "rng": rng_state(), "arch": args.arch, "seed": args.seed,
                     "record": record}, ckpt_path)
        with open(log_path, "a") as f:
            f.write(json.dumps(record) + "\n")
        print(f"epoch {epoch + 1}/{args.epochs}: test error {record['test_error']:.2f}% "
              f"(best {record['best_test_error']:.2f}%), {record['images_per_second']} img/s",
              flush=True)
        done_here += 1
        if args.stop_after_epochs and done_here >= args.stop_after_epochs:
            break


if __name__ == "__main__":
    main()
