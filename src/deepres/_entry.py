"""The ``deepres`` command's entry point: nothing heavy is imported before a Ctrl-C handler is
in place, so an interrupt at any moment, while torch loads too, exits 130 with one line."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    try:
        from .cli import main as run

        return run(argv)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
