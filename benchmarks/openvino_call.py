"""What one OpenVINO call costs on top of the network: the int8 file (`deepres export --format
int8`) run at batch 1 through deepres's OpenVINO engine, beside the same file with the input
copied (OpenVINO's default, deepres's engine before it passed share_inputs), with a static
batch-1 shape, and on ONNX Runtime.

    .venv/bin/python benchmarks/openvino_call.py [--reps 11] [--models resnet20,resnet50]

The question it answers: does deepres's engine leave per-call speed on the table where the
network is small (ResNet-20 on 32x32 images: a call is a fraction of a millisecond)?
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
from engines import _folder, _models, machine_line
from timing import interleaved

from deepres.export.writers import ExportOptions, export
from deepres.loaded import load_predictor
from deepres.loaded.engines import _openvino_core, openvino_config


def _openvino(path: Path, x: np.ndarray, static: bool, share: bool):
    import openvino as ov

    core = _openvino_core()  # deepres's one Core: one CPU plugin, one pool of threads
    model = core.read_model(str(path))
    if static:
        model.reshape({model.input(0): ov.PartialShape(list(x.shape))})
    compiled = core.compile_model(model, "CPU", openvino_config("int8"))
    request, out = compiled.create_infer_request(), compiled.output(0)
    return lambda: np.array(request.infer([x], share_inputs=share)[out], dtype=np.float32)


def run(name: str, reps: int, tmp: Path, settle: float) -> None:
    _, _, weights, size, _ = _models(name, tmp)
    q = tmp / f"{name}.int8.onnx"
    export(load_predictor(str(weights), precision="fp32"), "int8", str(q),
           ExportOptions(data=str(_folder(tmp / f"{name}-data", size)), calibration_images=64))
    x = torch.rand(1, 3, size, size) - 0.5
    ours = load_predictor(str(q), engine="openvino").logits
    ort = load_predictor(str(q), engine="onnxruntime").logits
    fns = {"deepres openvino engine": lambda: ours(x),
           "openvino, input copied (dynamic batch)": _openvino(q, x.numpy(), False, False),
           "openvino, input shared (dynamic batch)": _openvino(q, x.numpy(), False, True),
           "openvino, input shared, static batch 1": _openvino(q, x.numpy(), True, True),
           "deepres onnxruntime engine": lambda: ort(x)}
    ref = fns["deepres openvino engine"]()
    for label, fn in fns.items():
        assert torch.as_tensor(fn()).argmax() == ref.argmax(), label
    t = interleaved(fns, reps, iters=200 if size == 32 else 10, warmup=1,
                    context=torch.inference_mode, settle=settle)
    base = t["openvino, input copied (dynamic batch)"]
    print(f"\n{name} int8, batch 1, {size}x{size}\n")
    print("| variant | images/s | ratio vs input copied |\n|---|---|---|")
    for label, seconds in t.items():
        print(f"| {label} | {1 / seconds:.0f} | {base / seconds:.2f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=11)
    ap.add_argument("--models", default="resnet20,resnet50")
    ap.add_argument("--settle", type=float, default=0.2,
                    help="seconds of rest before each variant's turn (0: none)")
    args = ap.parse_args()
    torch.manual_seed(0)
    print(machine_line(), flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="deepres-ov-call-"))
    for name in args.models.split(","):
        run(name, args.reps, tmp, args.settle)


if __name__ == "__main__":
    main()
