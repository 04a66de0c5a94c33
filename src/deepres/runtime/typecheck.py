"""Values read from JSON (a run's ``config.json``, a ``--config`` file) checked against the
field types a dataclass declares: the error names the place, the field and the type wanted."""

from __future__ import annotations

import json
import math
import types
import typing
from typing import Any


def checked_fields(kind: type, values: dict[str, Any], where: str) -> dict[str, Any]:
    """``values`` of a config section checked against the field types declared on ``kind``."""
    # A section that embeds another dataclass says its flat keys itself (train/config.py).
    hints = kind.field_types() if hasattr(kind, "field_types") else typing.get_type_hints(kind)
    unknown = sorted(set(values) - set(hints))
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {', '.join(map(repr, unknown))}; known: "
                         f"{', '.join(sorted(hints))}")
    for key, value in values.items():
        if not _fits(value, hints[key]):
            raise ValueError(f"{where}.{key} must be {_type_name(hints[key])}, not "
                             f"{json.dumps(value)}")
    return values


def _fits(value: Any, hint: Any) -> bool:
    if hint is Any:
        return True
    args = typing.get_args(hint)
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, a) for a in args)
    if origin is tuple:
        return isinstance(value, tuple) and all(_fits(v, args[0]) for v in value)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool) and \
            math.isfinite(value)
    return isinstance(value, hint)


def _type_name(hint: Any) -> str:
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args)
    if typing.get_origin(hint) is tuple:
        return f"a list of {_type_name(args[0])}s"
    return {type(None): "null", bool: "true or false", int: "an integer",
            float: "a number", str: "a string"}.get(hint, str(hint))
