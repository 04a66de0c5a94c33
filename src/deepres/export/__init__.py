"""Deployment: batch-norm folding, a CPU-optimised model, ONNX and TorchScript export."""

from .fold import InferenceModel, fold_batchnorm, optimize_for_cpu
from .formats import export_onnx, export_torchscript, load_cpu, trace_frozen

__all__ = ["InferenceModel", "export_onnx", "export_torchscript", "fold_batchnorm",
           "load_cpu", "optimize_for_cpu", "trace_frozen"]
