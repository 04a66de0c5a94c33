"""Options declared once, on their config fields: the flag, its help and the values it accepts.

A config field made with :func:`option` carries an :class:`Option` in its metadata. The command
line builds each ``deepres train`` flag from it, and a ``--config`` file's values are checked by
the same parser, so the two accept exactly the same things. The parsers raise
``argparse.ArgumentTypeError`` with a message that says what is accepted.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

MISSING: Any = dataclasses.MISSING
# The precisions runtime/precision.py implements: "auto" resolves to bf16 where native.
# What runs a loaded model (deepres/loaded/engines.py); here so that --help needs no torch.
ENGINES = ("auto", "torch", "onnxruntime", "openvino")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")  # fp16: CUDA only, with a gradient scaler
# One default per purpose, declared here only. Measuring a model (eval, accuracy checks, int8
# calibration, precise BN) is fp32, so that a measured error is the same on every machine;
# running one (predict, serve, Predictor, export's checks of a running model) is "auto", bf16
# where the hardware computes it natively, as training is.
MEASURING_PRECISION = "fp32"
RUNNING_PRECISION = "auto"
PRECISION_HELP = ("auto (default): bf16 autocast where it is computed natively (GPUs of compute "
                  "capability 8.0 or newer; CPUs with avx512_bf16 or AMX), fp32 elsewhere (TF32 "
                  "off unless --tf32); fp16 with a gradient scaler on CUDA only")
EVAL_PRECISION_HELP = ("fp32 (default: a measured error is the same on every machine); auto: "
                       "bf16 autocast where native, faster, which moves the error by a few "
                       "images; bf16; fp16 (CUDA)")


def number(kind: type, low: float | None = None, high: float | None = None,
           what: str = "") -> Callable[[str], float | int]:
    """A parser: a finite ``kind`` (int or float) within ``[low, high]``."""
    span = (f">= {low:g}" if high is None else f"between {low:g} and {high:g}") \
        if low is not None else "finite"
    desc = what or f"{'an integer' if kind is int else 'a number'} {span}"

    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {desc}, not {text!r}") from None
        if not math.isfinite(value) or (low is not None and value < low) or (
                high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {desc}, not {text!r}")
        return value

    parse.__name__ = kind.__name__
    return parse


POSITIVE_INT = number(int, 1)
NONNEG_INT = number(int, 0)
POSITIVE_FLOAT = number(float, 1e-12, what="a number > 0")
NONNEG_FLOAT = number(float, 0.0)


def holdout(text: str) -> float:
    """A fraction in (0, 1), an image count >= 1, or 0 for none."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0 or (value >= 1 and value != int(value)):
        raise argparse.ArgumentTypeError(
            f"must be 0 (none), a fraction between 0 and 1, or a whole number of images, "
            f"not {text!r}")
    return value


def milestones(text: str) -> tuple[float, ...]:
    parse = number(float, 0.0, 1.0)
    try:
        values = tuple(float(parse(v)) for v in text.split(",") if v.strip())
    except argparse.ArgumentTypeError:
        values = ()
    if not values or list(values) != sorted(values):
        raise argparse.ArgumentTypeError(f"must be increasing fractions of the iterations "
                                         f"between 0 and 1, e.g. 0.5,0.75, not {text!r}")
    return values


def device(text: str) -> str:
    """cpu, cuda or cuda:N, where such a device is visible."""
    t = text.strip().lower()
    m = re.fullmatch(r"cuda(?::(\d+))?", t)
    if t == "cpu":
        return t
    if m is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a device deepres runs on; use cpu, "
                                         "cuda or cuda:N")
    import torch

    if not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(f"{text!r}: no GPU is visible to PyTorch here; use "
                                         "--device cpu")
    if m.group(1) is not None and int(m.group(1)) >= torch.cuda.device_count():
        raise argparse.ArgumentTypeError(
            f"{text!r}: only {torch.cuda.device_count()} GPU(s) visible (cuda:0.."
            f"cuda:{torch.cuda.device_count() - 1})")
    return t


@dataclass(frozen=True)
class Option:
    """How a config field appears on the command line."""

    help: str
    parse: Callable[[str], Any] | None = None  # None: the text as given (or a switch)
    choices: Sequence[str] | None = None
    flag: str | None = None  # default: the field's name
    metavar: str | None = None
    switch: str | None = None  # bools: "on" (--x sets true) or "both" (--x / --no-x)
    group: str | None = None  # flags of one group exclude each other


def option(default: Any = MISSING, *, help: str, parse: Callable[[str], Any] | None = None,
           choices: Sequence[str] | None = None, flag: str | None = None,
           metavar: str | None = None, switch: str | None = None, group: str | None = None,
           default_factory: Any = MISSING) -> Any:
    """A dataclass field with its command-line declaration."""
    meta = {"option": Option(help, parse, tuple(choices) if choices else None, flag, metavar,
                             switch, group)}
    if default_factory is not MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def declared(cls: type) -> list[tuple[str, Option]]:
    """``(field name, Option)`` of every declared field of a config dataclass, in order; an
    embedded dataclass (a field with ``{"embed": Class}`` metadata) declares its own, flat."""
    out = []
    for f in dataclasses.fields(cls):
        if "embed" in f.metadata:
            out += declared(f.metadata["embed"])
        elif "option" in f.metadata:
            out.append((f.name, f.metadata["option"]))
    return out
