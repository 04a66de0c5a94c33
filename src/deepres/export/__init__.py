"""Deployment: batch-norm folding, a CPU-optimised model, ONNX, TorchScript and int8 export."""

from .._lazy import exports

# The formats `deepres export` writes; export/writers.py WRITERS has one writer for each.
FORMATS = ("onnx", "torchscript", "cpu", "int8")

__getattr__, __dir__, __all__ = exports(__name__, {
    "InferenceModel": ".fold",
    "fold_batchnorm": ".fold",
    "optimize_for_cpu": ".fold",
    "export_onnx": ".formats",
    "export_torchscript": ".formats",
    "load_cpu": ".formats",
    "trace_frozen": ".formats",
})
