"""Engines: what runs a loaded network. ``torch`` (PyTorch, any device), ``onnxruntime`` and
``openvino`` (CPU). Every engine takes the network's input as a float ``N x C x H x W`` tensor
and returns float32 logits, so the testing protocols above them never know which one ran.

Which engine ``auto`` picks, and why (the rule the engine table in BENCHMARKS.md supports,
``benchmarks/engines.py``; for ResNet-50 at batch 1 and 16, OpenVINO was the fastest engine in
bf16 and int8 on an AMD Zen 4 (AVX-512) and an Intel Xeon (AMX); on the Zen 4 with AVX-512
hidden (AVX2 only, ``--avx2-only``) it was level with ONNX Runtime in int8, and in fp32 the two
were within 5% of each other everywhere, neither ahead across the board):

- a device other than the CPU: ``torch`` (the other two run on the CPU here);
- an ONNX file (``deepres export --format onnx`` or ``int8``): ``openvino`` where installed,
  else ``onnxruntime``; PyTorch cannot run an ONNX graph;
- weights (``.safetensors``, ``deepres:NAME``, a foreign state dict) on the CPU, fp32 or bf16:
  ``openvino`` where installed (the network is converted in memory when loaded, by OpenVINO's
  own PyTorch converter: 1-2 s for ResNet-50), else ``torch``. ONNX Runtime is never chosen
  for weights: it has no bf16 kernels for the CPU, and its fp32 was no faster than OpenVINO.

An engine that is not installed is one line naming the extra to install.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..runtime.options import ENGINES
from ..runtime.precision import autocast

_MODULES = {"onnxruntime": "onnxruntime", "openvino": "openvino"}
_EXTRAS = {"onnxruntime": "onnx", "openvino": "openvino"}

Run = Callable[[torch.Tensor], torch.Tensor]


class NonFiniteOutputError(ValueError):
    """A model that answers NaN or infinity: broken weights (a diverged run) or a broken
    file; never shown as ``nan%`` or served as a number."""


class EngineError(ValueError):
    """An engine that cannot run here, or cannot run this model: one line that names it."""


def installed(engine: str) -> bool:
    return engine == "torch" or importlib.util.find_spec(_MODULES[engine]) is not None


def require(engine: str) -> None:
    if engine not in ENGINES:
        raise EngineError(f"unknown engine {engine!r}; known: {', '.join(ENGINES)}")
    if engine != "auto" and not installed(engine):
        raise EngineError(f"--engine {engine} needs the {_MODULES[engine]} package: "
                          f"pip install 'deepres[{_EXTRAS[engine]}]'")


@dataclass(frozen=True)
class Choice:
    engine: str
    reason: str


def choose(requested: str, graph: bool, device: torch.device | str) -> Choice:
    """The engine to run a model on: ``graph`` is True for an ONNX file, False for weights.
    ``requested`` "auto" follows the module's rule; any other is checked and kept."""
    require(requested)
    cpu = torch.device(device).type == "cpu"
    if requested != "auto":
        if requested == "torch" and graph:
            raise EngineError("--engine torch cannot run an ONNX file; use --engine auto, "
                              "onnxruntime or openvino, or give the .safetensors it came from")
        if requested != "torch" and not cpu:
            raise EngineError(f"--engine {requested} runs on the CPU only; use --device cpu "
                              "or --engine torch")
        return Choice(requested, "as asked (--engine)")
    if not cpu:
        return Choice("torch", f"the device is {torch.device(device).type}")
    if installed("openvino"):
        return Choice("openvino", "installed, and the fastest CPU engine measured "
                      "(BENCHMARKS.md, Engines)")
    if graph:
        if installed("onnxruntime"):
            return Choice("onnxruntime", "an ONNX file, and OpenVINO is not installed")
        raise EngineError("an ONNX file needs onnxruntime or openvino to run: pip install "
                          "'deepres[onnx]' or 'deepres[openvino]'")
    return Choice("torch", "OpenVINO is not installed (pip install 'deepres[openvino]' "
                  "for the fastest CPU engine)")


# -- the engines -------------------------------------------------------------------------------

def torch_run(model: nn.Module, precision: str) -> Run:
    """The module as it is, under bf16 autocast where ``precision`` says."""
    def run(x: torch.Tensor) -> torch.Tensor:
        with autocast(precision, x.device):
            return model(x).float()
    return run


def _shape_error(exc: Exception, x: torch.Tensor, engine: str) -> EngineError:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return EngineError(f"{engine} could not run a {tuple(x.shape)} input ({first[:200]}); "
                       "an ONNX file exported without --dynamic-size takes its own input "
                       "size only")


def onnxruntime_run(model: str | bytes) -> Run:
    """An ONNX Runtime CPU session of a file (path) or a serialised graph (bytes)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # errors only: its warnings are about graph rewrites
    session = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def run(x: torch.Tensor) -> torch.Tensor:
        try:
            out = session.run(None, {name: x.detach().float().contiguous().numpy()})[0]
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own error types
            raise _shape_error(exc, x, "onnxruntime") from exc
        return torch.from_numpy(np.asarray(out, dtype=np.float32))
    return run


@functools.cache
def _openvino_core() -> object:
    """One OpenVINO ``Core`` for the process. Each new Core loads a new CPU plugin, and each
    plugin swaps the thread's signal stack (``sigaltstack``) for one of its own, putting the
    previous one back when the plugin is freed. Freed out of order, two plugins leave the
    thread on a stack that is already unmapped, and the next signal handled there (a child's
    SIGCHLD, say) kills the process with SIGSEGV: the full test suite did, at random places,
    after a dozen loads. One Core keeps one plugin alive until exit."""
    import openvino as ov

    return ov.Core()


def openvino_config(precision: str) -> dict[str, str]:
    """OpenVINO's compile settings for ``precision``: bf16 lets OpenVINO compute in bf16, any
    other keeps fp32 (OpenVINO's own default would pick bf16 on CPUs with native bf16)."""
    return {"PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32"}


def openvino_run(model: object, precision: str) -> Run:
    """An OpenVINO CPU program of an ``openvino.Model`` or an ONNX file; ``precision`` bf16
    lets OpenVINO compute in bf16 (on CPUs with native bf16), fp32 keeps fp32 throughout
    (OpenVINO's own default would pick bf16 there). int8 graphs run in int8 either way."""
    compiled = _openvino_core().compile_model(model, "CPU", openvino_config(precision))
    request, port = compiled.create_infer_request(), compiled.output(0)

    def run(x: torch.Tensor) -> torch.Tensor:
        try:
            # Shared both ways: OpenVINO reads the array in place and hands back a view of
            # its own output buffer, copied once here (benchmarks/openvino_call.py).
            out = request.infer([x.detach().float().contiguous().numpy()], share_inputs=True,
                                share_outputs=True)
        except Exception as exc:  # noqa: BLE001 - OpenVINO raises RuntimeError subclasses
            raise _shape_error(exc, x, "openvino") from exc
        return torch.from_numpy(np.array(out[port], dtype=np.float32))
    return run


def _input_shape(input_size: int, any_size: bool, channels: int = 3) -> list[int]:
    return [-1, channels, -1, -1] if any_size else [-1, channels, input_size, input_size]


def converted(model: nn.Module, engine: str, precision: str, input_size: int,
              any_size: bool = False, channels: int = 3) -> Run:
    """``model`` (eval mode, on the CPU) run by ``engine``: OpenVINO converts the module
    itself; ONNX Runtime gets it through the ONNX exporter, in memory. ``channels``: of its
    input (1 for a grayscale network)."""
    model = model.eval()
    example = torch.rand(2, channels, input_size, input_size)
    if engine == "openvino":
        import openvino as ov

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracing notes about Python control flow
            graph = ov.convert_model(model, example_input=example,
                                     input=[ov.PartialShape(_input_shape(input_size, any_size,
                                                                         channels))])
        return openvino_run(graph, precision)
    with tempfile.TemporaryDirectory(prefix="deepres-onnx-") as tmp:
        path = Path(tmp) / "model.onnx"
        write_graph(model, path, input_size, any_size, channels)
        return onnxruntime_run(path.read_bytes())


def write_graph(model: nn.Module, path: str | os.PathLike[str], input_size: int,
                any_size: bool = False, channels: int = 3) -> None:
    """``model`` as an ONNX graph through PyTorch's current exporter (``dynamo=True``:
    ``torch.export`` and onnxscript; the TorchScript-based one is deprecated): input
    ``images`` ``N x C x S x S`` (``channels``; any batch; any height and width with
    ``any_size``), output ``logits``."""
    try:
        import onnxscript  # noqa: F401 - the exporter needs it; say so before it does
    except ImportError as exc:
        raise EngineError("ONNX export needs the onnx and onnxscript packages: pip install "
                          "'deepres[onnx]'") from exc
    batch = torch.export.Dim("batch", min=1, max=65536)
    dims = {0: batch}
    if any_size:
        dims |= {2: torch.export.Dim("height", min=8, max=8192),
                 3: torch.export.Dim("width", min=8, max=8192)}
    example = torch.rand(2, channels, input_size, input_size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (example,), str(path), dynamo=True, verbose=False,
                          input_names=["images"], output_names=["logits"],
                          dynamic_shapes=({**dims},), external_data=False)
