"""Helpers for the fault matrix: run the CLI in-process and check the promise on every case:
an exit code, a one-line message naming the option or file, no traceback, nothing changed."""

import hashlib
import os
from pathlib import Path

import pytest

from deepres.cli import main


def run_cli(args, capsys):
    """``(exit code, stdout, stderr)`` of ``deepres ARGS`` run in this process."""
    try:
        code = main([str(a) for a in args])
    except SystemExit as exc:  # argparse errors and --version
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def tree_hash(root) -> str:
    """Every file's path and bytes under ``root`` (empty string hash for a missing folder)."""
    h = hashlib.sha256()
    root = Path(root)
    if root.exists():
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(filenames):
                p = Path(dirpath) / name
                h.update(str(p.relative_to(root)).encode(errors="surrogateescape"))
                h.update(p.read_bytes())
    return h.hexdigest()


def assert_clean_error(code, err, *names, expected=2):
    assert code == expected, err
    assert "Traceback" not in err, err
    for name in names:
        assert str(name) in err, f"{name!r} not named in: {err}"
    # One message: the error line (long lists may follow it indented, never a stack).
    assert err.strip().splitlines()[0].startswith("deepres"), err


@pytest.fixture
def cli(capsys):
    return lambda *args: run_cli(args, capsys)
