"""The ``deepres`` command line. The only module that parses arguments."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import torch


def _cmd_models(args: argparse.Namespace) -> int:
    from .analysis import count_macs, count_params
    from .models import create_model, list_models, resolve

    rows = []
    for name in list_models():
        spec = resolve(name)
        # Built on the meta device: shapes only, so listing ResNet-1202 costs no memory.
        with torch.device("meta"):
            model = create_model(name)
        rows.append({
            "name": name,
            "family": spec.family,
            "params": count_params(model),
            "macs": count_macs(model, spec.default_input_size),
            "input_size": spec.default_input_size,
            "num_classes": spec.default_num_classes,
        })
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'model':<12} {'family':<9} {'params':>12} {'multiply-adds':>15}  input")
    for r in rows:
        print(f"{r['name']:<12} {r['family']:<9} {r['params'] / 1e6:>11.2f}M "
              f"{r['macs'] / 1e9:>14.3f}G  {r['input_size']}x{r['input_size']}")
    return 0


def _cmd_data_check(args: argparse.Namespace) -> int:
    from .data import check_index, scan_dataset

    splits = scan_dataset(args.path)
    first = next(iter(splits.values()))
    print(f"{args.path}: {len(first.classes)} classes: {', '.join(first.classes)}")
    n_bad = 0
    for name, index in splits.items():
        counts = index.counts()
        print(f"{name}: {len(index)} images"
              + (f", {len(index.ignored)} non-image files ignored" if index.ignored else ""))
        for cls, n in counts.items():
            print(f"  {cls:<24} {n}")
        bad = check_index(index)
        n_bad += len(bad)
        for b in bad:
            print(f"  BAD {b.path}: {b.reason}")
    print(f"{n_bad} bad file(s)" if n_bad else "all files decode")
    return 1 if n_bad else 0


def _train_config(args: argparse.Namespace):
    from .train.config import TrainConfig, recipe, with_overrides

    if args.run_dir is None and not args.resume:
        # A fresh folder per run, so a second run never collides; under torchrun every
        # process must agree on it, so the job's id names it.
        stamp = os.environ.get("TORCHELASTIC_RUN_ID") or time.strftime("%Y%m%d-%H%M%S")
        args.run_dir = f"runs/{args.model}-{stamp}"
    restarted = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) > 0
    if restarted and not args.resume and (Path(args.run_dir) / "config.json").exists():
        args.resume = args.run_dir  # torchrun --max-restarts: continue from the checkpoint
    if args.resume:
        path = Path(args.resume) / "config.json"
        if not path.is_file():
            raise FileNotFoundError(f"{args.resume}: no run to resume (no config.json there)")
        cfg = TrainConfig.from_dict(json.loads(path.read_text()))
        return with_overrides(cfg, run={"run_dir": args.resume, "device": args.device})
    cfg = recipe(args.recipe, args.model)
    optim = {"batch_size": args.batch_size, "lr": args.lr, "iterations": args.iterations,
             "epochs": args.epochs}
    cfg = with_overrides(
        cfg,
        model={"shortcut": args.shortcut},
        data={"data": args.data, "skip_bad": args.skip_bad or None, "holdout": args.holdout},
        optim=optim,
        run={"run_dir": args.run_dir, "seed": args.seed, "device": args.device,
             "log_every": args.log_every, "checkpoint_every": args.checkpoint_every,
             "channels_last": args.channels_last, "precision": args.precision,
             "compile": args.compile,
             "sync_bn": args.sync_bn},
    )
    if args.iterations is not None:  # an iteration count replaces the recipe's epochs
        cfg = replace(cfg, optim=replace(cfg.optim, epochs=None))
    return cfg


def _cmd_train(args: argparse.Namespace) -> int:
    from .train import fit

    if args.device == "cuda" and not torch.cuda.is_available():
        print("deepres: error: --device cuda but no GPU is visible; use --device cpu",
              file=sys.stderr)
        return 2
    cfg = _train_config(args)
    summary = fit(cfg, resume=bool(args.resume))
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps(summary, indent=2))
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from .evaluate.runner import run_eval

    scales = [int(v) for v in args.scales.split(",")] if args.scales else None
    result = run_eval(args.weights, args.data, crops=args.crops, scales=scales, split=args.split,
                      batch_size=args.batch_size, device=args.device,
                      precision=args.precision)
    if int(os.environ.get("RANK", "0")) != 0:
        return 0
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['protocol']}, {result['models']} model(s), {result['images']} images of "
              f"{result['data']}/{result['split']}: top-1 error {100 * result['top1_error']:.2f}%"
              f", top-5 error {100 * result['top5_error']:.2f}%")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from .evaluate.predict import predict_files

    failed = 0
    results = []
    for r in predict_files(args.weights, args.inputs, args.top_k, args.device,
                               args.precision):
        failed += "error" in r
        if args.json:
            results.append(r)
        elif "error" in r:
            print(f"{r['file']}: ERROR {r['error']}")
        else:
            preds = ", ".join(f"{p['class']} {100 * p['probability']:.1f}%"
                              for p in r["predictions"])
            print(f"{r['file']}: {preds}")
    if args.json:
        print(json.dumps(results, indent=2))
    if failed:
        print(f"{failed} file(s) could not be read", file=sys.stderr)
    return 1 if failed else 0


def _cmd_export(args: argparse.Namespace) -> int:
    from .evaluate.testing import load_predictor
    from .export import InferenceModel, export_onnx, export_torchscript, optimize_for_cpu

    p = load_predictor(args.weights)
    model = optimize_for_cpu(p.model, channels_last=False) if args.format == "cpu" else p.model
    wrapped = InferenceModel(model, p.mean.cpu()).eval()
    if args.format == "onnx":
        export_onnx(wrapped, args.out, p.input_size)
    else:
        export_torchscript(wrapped, args.out, p.input_size)
    print(f"wrote {args.out} ({args.format}): input float images in [0, 1], "
          f"N x 3 x {p.input_size} x {p.input_size}; output logits over "
          f"{len(p.classes or [])} classes")
    return 0


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from .experiments.runner import reproduce

    path = reproduce(args.experiment, scale=args.scale, seeds=args.seeds, data=args.data,
                     device=args.device, out=args.out, report_only=args.report_only)
    print(f"wrote {path}")
    return 0


def _add_precision(p: argparse.ArgumentParser) -> None:
    from .runtime.precision import PRECISIONS

    p.add_argument("--precision", choices=PRECISIONS, default=None,
                   help="auto (default): bf16 autocast on CUDA and on CPUs with native bf16 "
                        "(avx512_bf16 or AMX), fp32 elsewhere")
    p.add_argument("--amp", dest="precision", action="store_const", const="bf16",
                   help="alias of --precision bf16")
    p.add_argument("--no-amp", dest="precision", action="store_const", const="fp32",
                   help="alias of --precision fp32")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deepres",
        description="Deep residual networks (He et al. 2015): models, training, testing.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("models", help="list every model with parameters and multiply-adds")
    p.add_argument("--json", action="store_true", help="print a JSON list (name, params, macs)")
    p.set_defaults(func=_cmd_models)

    p = sub.add_parser("train", help="train a model (default: resnet20 on the bundled sample)")
    p.add_argument("--model", default="resnet20", help="a name from `deepres models`")
    p.add_argument("--data", default=None,
                   help="folder path, 'sample' (default), 'cifar10' or 'cifar100'")
    p.add_argument("--recipe", default="fast", choices=["fast", "cifar-paper", "imagenet-paper"],
                   help="preset: 'fast' (default, short one-cycle; not the paper's), "
                        "'cifar-paper' (§4.2) or 'imagenet-paper' (§3.4)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--epochs", type=int, default=None)
    g.add_argument("--iterations", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None, help="peak learning rate")
    p.add_argument("--shortcut", choices=["A", "B", "C"], default=None)
    p.add_argument("--holdout", type=float, default=None,
                   help="fraction of train held out for validation (cifar-paper: 0.1)")
    p.add_argument("--device", default=None, help="cpu or cuda (default cpu)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--run-dir", default=None,
                   help="where the run is written (default runs/MODEL-DATE-TIME)")
    p.add_argument("--resume", default=None, metavar="DIR", help="continue the run in DIR")
    p.add_argument("--skip-bad", action="store_true",
                   help="train without the dataset's bad files (counted in the log)")
    p.add_argument("--log-every", type=int, default=None, help="steps between log lines")
    p.add_argument("--checkpoint-every", type=int, default=None, help="steps between checkpoints")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                   help="channels_last memory layout (default: on)")
    _add_precision(p)
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="torch.compile (default: off)")
    p.add_argument("--sync-bn", action="store_true", default=None,
                   help="under torchrun: BN statistics over the global batch (any backend)")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("eval", help="top-1/top-5 error: 1 or 10 crops, multi-scale, ensembles")
    p.add_argument("--weights", action="append", required=True,
                   help="weights.safetensors from `deepres train`; repeat for an ensemble")
    p.add_argument("--data", default="sample", help="folder path, 'sample', 'cifar10', ...")
    p.add_argument("--split", default="test", choices=["test", "train"])
    p.add_argument("--crops", type=int, default=1, choices=[1, 10])
    p.add_argument("--scales", default=None,
                   help="fully-convolutional multi-scale testing, e.g. 224,256,384,480,640")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--device", default="cpu")
    _add_precision(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_eval)

    p = sub.add_parser("predict", help="top-k classes of image files or folders")
    p.add_argument("--weights", required=True)
    p.add_argument("inputs", nargs="+", metavar="IMAGE_OR_FOLDER")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--device", default="cpu")
    _add_precision(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser("export", help="ONNX, TorchScript or a CPU-optimised TorchScript file")
    p.add_argument("--weights", required=True)
    p.add_argument("--format", required=True, choices=["onnx", "torchscript", "cpu"],
                   help="cpu: batch norm folded into the convolutions, as TorchScript; load "
                        "it with deepres.export.load_cpu for PyTorch's CPU inference passes")
    p.add_argument("out")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("reproduce", help="run one of the paper's experiments and report it")
    p.add_argument("experiment",
                   choices=["table1", "cifar-depth", "shortcuts", "layer-responses", "imagenet"])
    p.add_argument("--scale", default="smoke", choices=["smoke", "quick", "full"],
                   help="smoke: seconds; quick: about an hour on 2 CPU cores; full: the paper's")
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--data", default=None, help="dataset (default: by experiment and scale)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default="reports", help="folder for runs and the report")
    p.add_argument("--report-only", action="store_true",
                   help="rebuild the report from finished runs; train nothing")
    p.set_defaults(func=_cmd_reproduce)

    p = sub.add_parser("data", help="inspect datasets")
    data_sub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    q = data_sub.add_parser("check", help="decode every image; list classes, counts, bad files")
    q.add_argument("path", help="dataset folder: root/<class>/<image> or root/{train,val,test}/..")
    q.set_defaults(func=_cmd_data_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from .data import BadImageError, DatasetError
    from .models import WeightsError
    from .train import CheckpointError, NonFiniteLossError

    try:
        return int(args.func(args))
    except (DatasetError, WeightsError, BadImageError, CheckpointError, NonFiniteLossError,
            FileExistsError, FileNotFoundError, ValueError) as exc:
        print(f"deepres: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
