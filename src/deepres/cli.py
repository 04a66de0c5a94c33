"""The ``deepres`` command line. The only module that parses arguments."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deepres",
        description="Deep residual networks (He et al. 2015): models, training, testing.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("models", help="list every model with parameters and multiply-adds")
    p.add_argument("--json", action="store_true", help="print a JSON list (name, params, macs)")
    p.set_defaults(func=_cmd_models)

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

    try:
        return int(args.func(args))
    except (DatasetError, WeightsError, BadImageError) as exc:
        print(f"deepres: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
