"""Packages whose names are imported on first use, so that ``deepres --help`` and the config
types load without torch (a package ``__init__`` that imported its modules eagerly would pull
torch into every import of a light module beside them)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def exports(package: str, names: dict[str, str]
            ) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``__getattr__``, ``__dir__`` and ``__all__`` for ``package``: each of ``names`` is read
    from its module (relative to the package) when first asked for."""
    module = importlib.import_module(package)

    def getattr_(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(names[name], package), name)
        setattr(module, name, value)
        return value

    def dir_() -> list[str]:
        return sorted([*vars(module), *names])

    return getattr_, dir_, sorted(names)
