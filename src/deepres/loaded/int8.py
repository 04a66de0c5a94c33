"""Reading deepres int8 files (``deepres export --format int8``, written by
export/quantize.py): TorchScript with the deepres metadata stored beside the program."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

# The file's format is recognised where every weight source is read (models/source.py).
from ..models.source import INT8_FORMAT, METADATA_NAME, is_int8_file  # noqa: F401


def load_int8(path: str | os.PathLike[str]) -> tuple[torch.jit.ScriptModule, dict[str, Any]]:
    """The quantized module and its metadata. A TorchScript file is a program: load only
    files you made (``deepres export --format int8``)."""
    torch.backends.quantized.engine = "x86"
    extra = {METADATA_NAME: ""}
    # PyTorch 2.14 deprecates quantized tensors with a C++ warning, printed once per process
    # when the first one is made (loading the file) past Python's warnings filters. Loading
    # runs with exactly that line dropped, so every eval and predict stays quiet.
    with warnings.catch_warnings(), _drop_stderr_lines(_DEPRECATION):
        warnings.simplefilter("ignore")
        module = torch.jit.load(str(Path(path)), map_location="cpu", _extra_files=extra)
    meta = json.loads(extra[METADATA_NAME] or "{}")
    if meta.get("format") != INT8_FORMAT:
        raise ValueError(f"{path}: not a deepres int8 file (no {METADATA_NAME})")
    module = module.eval()
    return module, meta


_DEPRECATION = "quantized tensor creation functions"  # the one line dropped (Quantizer.cpp)


@contextlib.contextmanager
def _drop_stderr_lines(text: str) -> Iterator[None]:
    """Run a block with file descriptor 2 captured, then replay what it printed except the
    lines holding ``text`` (C++ warnings bypass ``sys.stderr`` and ``warnings``)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            for line in tmp.read().decode(errors="replace").splitlines(keepends=True):
                if text not in line:
                    sys.stderr.write(line)
