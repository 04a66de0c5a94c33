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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deepres",
        description="Deep residual networks (He et al. 2015): models, training, testing.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("models", help="list every model with parameters and multiply-adds")
    p.add_argument("--json", action="store_true", help="print a JSON list (name, params, macs)")
    p.set_defaults(func=_cmd_models)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
