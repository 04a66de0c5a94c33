"""int8 CPU inference: post-training static quantization for x86.

The flow is PyTorch's FX graph mode (``torch.ao.quantization.quantize_fx``) with the ``x86``
backend (fbgemm and oneDNN kernels, using VNNI/AMX int8 instructions where the CPU has them):
convolution, batch norm and ReLU are fused (batch norm folded into the convolution weights),
observers record activation ranges on calibration images, and the result runs on eager int8
kernels, so a saved file is fast as soon as it is loaded, with no compile step.

Why not torchao's PT2E flow, the one PyTorch now develops: it needs ``torch.compile`` (Inductor)
each time a model is loaded before its int8 kernels run, i.e. tens of seconds before the first
prediction, and the ``torchao`` package on top of the pinned torch 2.14. FX graph mode ships
in torch 2.14 itself; it is deprecated upstream, so this module is the one place to change
when it goes.

The file is TorchScript (traced and frozen) with the deepres metadata (class names, input
mean, input size) stored beside the program as ``deepres.json``.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

INT8_FORMAT = "deepres-int8"
METADATA_NAME = "deepres.json"


def quantize_int8(model: nn.Module, calibration: Iterable[torch.Tensor]) -> nn.Module:
    """A statically quantized copy of ``model`` (eval mode): takes the same normalized float
    input and returns float logits. ``calibration``: batches of model input."""
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    torch.backends.quantized.engine = "x86"
    model = model.eval()
    batches = list(calibration)
    if not batches:
        raise ValueError("int8 quantization needs at least one calibration batch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # FX graph mode's deprecation notes
        prepared = prepare_fx(model, get_default_qconfig_mapping("x86"), (batches[0],))
        with torch.no_grad():
            for x in batches:
                prepared(x)
        return convert_fx(prepared)


def save_int8(model: nn.Module, path: str | os.PathLike[str], example: torch.Tensor,
              metadata: dict[str, Any]) -> None:
    """Trace and freeze the quantized ``model`` and write it with ``metadata``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.no_grad():
            traced = torch.jit.freeze(torch.jit.trace(model.eval(), example))
        meta = {"format": INT8_FORMAT, **metadata}
        torch.jit.save(traced, str(path), _extra_files={METADATA_NAME: json.dumps(meta)})


def is_int8_file(path: str | os.PathLike[str]) -> bool:
    """A TorchScript archive that holds deepres int8 metadata (checked without loading it)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            return any(n.endswith("/extra/" + METADATA_NAME) for n in z.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


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
