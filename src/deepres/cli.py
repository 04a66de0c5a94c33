"""The ``deepres`` command line. The only module that parses arguments."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Sequence
from typing import Any

from . import commands
from .data.config import data_help
from .runtime.options import (
    EVAL_PRECISION_HELP,
    NONNEG_INT,
    POSITIVE_INT,
    number,
)
from .runtime.options import device as device_parser
from .runtime.terminal import safe_lines
from .train_command import cmd_train, train_options

# ---------------------------------------------------------------------------------------------
# Every option is checked where it is parsed, here: a bad value is one line naming the option
# and the accepted range, exit status 2, before anything is read or written.


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage block) that point to ``--help``."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _scales(text: str) -> list[int]:
    parse = number(int, 8, 4096)
    try:
        return [int(parse(v)) for v in text.split(",")]
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"must be comma-separated integers between 8 and 4096 (e.g. 224,256,384), "
            f"not {text!r}") from None


def _add_config_flags(p: argparse.ArgumentParser) -> None:
    """One flag per declared config field, as the field declares it; every default is None,
    so only what is given overrides the recipe or the --config file."""
    groups: dict[str, Any] = {}
    for dest, _, _, opt in train_options():
        flag = "--" + dest.replace("_", "-")
        target = p
        if opt.group:
            if opt.group not in groups:
                groups[opt.group] = p.add_mutually_exclusive_group()
            target = groups[opt.group]
        extra: dict[str, Any] = {"dest": dest, "default": None, "help": opt.help}
        if opt.switch == "on":
            target.add_argument(flag, action="store_true", **extra)
        elif opt.switch == "both":
            target.add_argument(flag, action=argparse.BooleanOptionalAction, **extra)
        else:
            target.add_argument(flag, type=opt.parse, choices=opt.choices, metavar=opt.metavar,
                                **extra)


def _add_foreign(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None,
                   help="for weights without deepres metadata (torchvision, timm, a state "
                        "dict): the model they fit; the input specification is the family's "
                        "default (deepres models --json)")
    p.add_argument("--classes", default=None, metavar="FILE",
                   help="class names, one per line, for weights that carry none")


def _add_engine(p: argparse.ArgumentParser) -> None:
    from .runtime.options import ENGINES

    p.add_argument("--engine", choices=ENGINES, default="auto", help="what runs the model; "
                   "auto: the fastest installed, said in one line (README, Engines)")


def _add_precision(p: argparse.ArgumentParser, help: str | None = None) -> None:
    from .runtime.options import PRECISION_HELP, PRECISIONS

    p.add_argument("--precision", choices=PRECISIONS, default=None, help=help or PRECISION_HELP)
    p.add_argument("--amp", dest="precision", action="store_const", const="bf16",
                   help="alias of --precision bf16")
    p.add_argument("--no-amp", dest="precision", action="store_const", const="fp32",
                   help="alias of --precision fp32")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="deepres",
        description="Deep residual networks (He et al. 2015): models, training, testing.",
    )
    parser.add_argument("--version", action="version", version=f"deepres {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    return parser


def _add_models(sub: Any) -> None:
    p = sub.add_parser("models", help="list the models with parameters and multiply-adds")
    p.add_argument("patterns", nargs="*", metavar="PATTERN", help="only names matching one of "
                   "these shell-style patterns (resnet5*, *wide*), as timm's list_models")
    p.add_argument("--pretrained", action="store_true", help="only models with published "
                   "weights, each as NAME.TAG (what create_model(NAME.TAG, pretrained=True) "
                   "loads)")
    p.add_argument("--json", action="store_true", help="print a JSON list (name, params, macs)")
    p.set_defaults(func=commands.cmd_models)


def _add_train(sub: Any) -> None:
    from .train.config import RECIPES

    p = sub.add_parser("train", help="train a model (default: resnet20 on the bundled sample)")
    p.add_argument("--recipe", default=None, choices=list(RECIPES),
                   help="preset: 'fast' (default, short one-cycle; not the paper's), 'fast90' "
                        "(not the paper's: ResNet-20 on CIFAR-10 in under 30 minutes on 2 CPU "
                        "cores), 'finetune' (with --init), 'finetune-modern' (finetune with "
                        "AdamW, TrivialAugment, random erasing, mixup/cutmix; not the paper's), "
                        "'cifar-paper' (§4.2) or 'imagenet-paper' (§3.4)")
    p.add_argument("--run-dir", default=None,
                   help="where the run is written (default runs/MODEL-DATE-TIME)")
    p.add_argument("--resume", default=None, metavar="DIR", help="continue the run in DIR")
    p.add_argument("--config", default=None, metavar="FILE",
                   help="train as a saved config.json says (a run's own reruns it); flags "
                        "given with it override its fields")
    _add_config_flags(p)
    p.add_argument("--amp", dest="precision", action="store_const", const="bf16",
                   help="alias of --precision bf16")
    p.add_argument("--no-amp", dest="precision", action="store_const", const="fp32",
                   help="alias of --precision fp32")
    p.set_defaults(func=cmd_train)


def _add_eval(sub: Any) -> None:
    p = sub.add_parser("eval", help="top-1/top-5 error: 1 or 10 crops, multi-scale, ensembles")
    p.add_argument("--weights", action="append", required=True,
                   help="weights.safetensors from `deepres train`; repeat for an ensemble")
    _add_foreign(p)
    p.add_argument("--data", default="sample", help=data_help("the data to evaluate"))
    p.add_argument("--split", default="test", choices=["test", "val", "train"],
                   help="which split to evaluate (test; a folder with no test/ tests on val/)")
    p.add_argument("--crops", type=int, default=1, choices=[1, 10])
    p.add_argument("--tta", choices=["flip"], default=None,
                   help="test-time augmentation for single-crop testing: 'flip' averages the "
                        "softmax of each image and its mirror image")
    p.add_argument("--scales", type=_scales, default=None,
                   help="fully-convolutional multi-scale testing, e.g. 224,256,384,480,640")
    p.add_argument("--batch-size", type=POSITIVE_INT, default=256)
    p.add_argument("--workers", type=NONNEG_INT, default=2,
                   help="processes decoding image files (folders); 0: in this process")
    p.add_argument("--device", type=device_parser, default="cpu")
    _add_precision(p, help=EVAL_PRECISION_HELP)
    _add_engine(p)
    p.add_argument("--json", action="store_true")
    p.add_argument("--confusion", metavar="FILE.png", default=None,
                   help="also draw the confusion matrix, with class names, into this PNG")
    p.set_defaults(func=commands.cmd_eval)


def _add_predict(sub: Any) -> None:
    p = sub.add_parser("predict", help="top-k classes of image files or folders")
    p.add_argument("--weights", required=True)
    _add_foreign(p)
    p.add_argument("inputs", nargs="+", metavar="IMAGE_OR_FOLDER")
    p.add_argument("--top-k", type=POSITIVE_INT, default=5)
    p.add_argument("--batch-size", type=POSITIVE_INT, default=64)
    p.add_argument("--workers", type=NONNEG_INT, default=2,
                   help="processes decoding image files; 0: in this process")
    p.add_argument("--device", type=device_parser, default="cpu")
    _add_precision(p)
    _add_engine(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=commands.cmd_predict)


def _add_export(sub: Any) -> None:
    from .export import FORMATS

    p = sub.add_parser("export", help="ONNX, TorchScript, a CPU-optimised TorchScript file or int8")
    p.add_argument("--weights", required=True)
    _add_foreign(p)
    p.add_argument("--format", required=True, choices=list(FORMATS),
                   help="cpu: batch norm folded into the convolutions, as TorchScript; load "
                        "it with deepres.export.load_cpu for PyTorch's CPU inference passes. "
                        "int8: post-training static quantization for x86 CPUs (needs --data); "
                        "`deepres eval` and `predict` take the file as --weights")
    p.add_argument("--data", default=None, help=data_help(
        "int8: the data whose training images calibrate the quantization"))
    p.add_argument("--calibration-images", type=POSITIVE_INT, default=512,
                   help="int8: how many training images calibrate (default 512)")
    p.add_argument("--dynamic-size", action="store_true",
                   help="onnx: dynamic height and width as well as batch (fully convolutional)")
    p.add_argument("out")
    p.set_defaults(func=commands.cmd_export)


def _add_precise_bn(sub: Any) -> None:
    p = sub.add_parser("precise-bn", help="recompute a weights file's batch-norm statistics "
                                          "over training images (the authors' precise BN)")
    p.add_argument("--weights", required=True)
    p.add_argument("--data", required=True, help=data_help(
        "the data the weights were trained on"))
    p.add_argument("--batches", type=POSITIVE_INT, default=100)
    p.add_argument("--batch-size", type=POSITIVE_INT, default=128)
    p.add_argument("--device", type=device_parser, default="cpu")
    p.add_argument("out", help="where the new weights are written")
    p.set_defaults(func=commands.cmd_precise_bn)


def _add_reproduce(sub: Any) -> None:
    from .experiments.specs import SCALES
    from .reproduce import EXPERIMENTS

    p = sub.add_parser("reproduce", help="run one of the paper's experiments and report it")
    p.add_argument("experiment", choices=list(EXPERIMENTS))
    p.add_argument("--scale", default="smoke", choices=list(SCALES),
                   help="smoke: seconds; quick: about an hour on 2 CPU cores; medium: about "
                        "4.5 hours (use --seeds 2); full: the paper's schedule, for GPUs")
    p.add_argument("--seeds", type=POSITIVE_INT, default=1)
    p.add_argument("--data", default=None, help=data_help(
        "the data (default: by experiment and scale)"))
    p.add_argument("--device", type=device_parser, default="cpu")
    p.add_argument("--out", default="reports", help="folder for runs and the report")
    p.add_argument("--report-only", action="store_true",
                   help="rebuild the report from finished runs; train nothing")
    p.set_defaults(func=commands.cmd_reproduce)


def _add_data(sub: Any) -> None:
    p = sub.add_parser("data", help="inspect datasets")
    data_sub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    q = data_sub.add_parser("check", help="decode every image; list classes, counts, sizes, "
                                          "bad files")
    q.add_argument("path", help=data_help("the data to check"))
    q.add_argument("--json", action="store_true", help="print the result as JSON")
    q.set_defaults(func=commands.cmd_data_check)
    q = data_sub.add_parser("shard", help="write a dataset as WebDataset shards "
                                          "(OUT/{split}-NNNNNN.tar and OUT/classes.json)")
    q.add_argument("path", help=data_help("the data to write as shards"))
    q.add_argument("out", help="a new or empty folder for the shards, or a store's URL")
    q.add_argument("--shard-size", type=POSITIVE_INT, default=10000,
                   help="samples per shard (default 10000)")
    q.add_argument("--seed", type=int, default=0, help="the order samples are shuffled into")
    q.set_defaults(func=commands.cmd_data_shard)


def _add_serve(sub: Any) -> None:
    from .serve.config import ServeConfig

    p = sub.add_parser("serve", help="an HTTP inference service with dynamic batching and a "
                                     "web page (POST /v1/predict)")
    _add_foreign(p)
    _add_precision(p)
    _add_engine(p)
    for f in dataclasses.fields(ServeConfig):  # one flag per declared field, as it declares
        opt = f.metadata.get("option")
        if opt is not None:
            given = ({"required": True} if f.default is dataclasses.MISSING
                     else {"default": f.default})
            p.add_argument("--" + (opt.flag or f.name).replace("_", "-"), dest=f.name,
                           type=opt.parse, choices=opt.choices, help=opt.help,
                           metavar=opt.metavar or (opt.flag or f.name).upper(), **given)
    p.set_defaults(func=commands.cmd_serve)


# One entry a command, in the order `deepres --help` lists them.
COMMANDS = (_add_models, _add_train, _add_eval, _add_predict, _add_export, _add_precise_bn,
            _add_reproduce, _add_data, _add_serve)


def _version() -> str:
    from . import __version__

    return __version__


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from .runtime.slurm import adopt_slurm

    try:
        adopt_slurm()  # an srun task without torchrun: the same process group (runtime/slurm.py)
    except ValueError as exc:
        print(f"deepres: error: {exc}", file=sys.stderr)
        return 2
    from .data import BadImageError, DatasetError
    from .models import WeightsError
    from .train import CheckpointError, NonFiniteLossError
    from .train.errors import RunError, RunStopped

    try:
        return int(args.func(args))
    except RunStopped as exc:
        print(f"deepres: {safe_lines(exc)}", file=sys.stderr)
        return exc.exit_code
    except (DatasetError, WeightsError, BadImageError, CheckpointError, NonFiniteLossError,
            RunError, ValueError) as exc:
        # Error text can quote names from files: printed escaped (runtime/terminal.py).
        print(f"deepres: error: {safe_lines(exc)}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `deepres models | head`: the reader left; say nothing more
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except OSError as exc:  # a path the user named: missing, not writable, a folder, ...
        print(f"deepres: error: {safe_lines(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
