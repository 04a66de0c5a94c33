"""CPU inference engines side by side in one process: torchvision (or plain PyTorch) eager fp32
vs deepres on PyTorch (fp32 BN-folded, bf16, the former FX int8), ONNX Runtime (fp32, int8)
and OpenVINO (fp32, bf16, int8), and what deepres's `auto` engine runs for weights and for an
int8 file.

    .venv/bin/python benchmarks/engines.py [--reps 5] [--models resnet50,resnet20]
    .venv/bin/python benchmarks/engines.py --accuracy   # int8 CIFAR-10 test error, trained nets
    .venv/bin/python benchmarks/engines.py --avx2-only  # AVX-512, VNNI, AMX hidden (avx2_only.py)

Speed: ResNet-50 at batch 1 and 16 (224x224), ResNet-20 at batch 1 and 256 (32x32), random
weights with calibrated batch-norm statistics. Every deepres row is built the way deepres
builds it: a weights file through `load_predictor(..., engine=...)` (the network converted in
memory for ONNX Runtime and OpenVINO), and the int8 rows from the file `deepres export
--format int8` writes (ONNX QDQ, calibrated on 64 images), run on each engine. Variants are
timed interleaved, round after round, with 0.2 s of rest before each variant's turn (ONNX
Runtime's and OpenVINO's threads spin for a while after a call and, without it, slow whichever
variant comes next: up to 14% at batch 1, benchmarks/openvino_call.py --settle 0); the median
round is reported as images/s and as the ratio to the baseline. Each variant's top-1
agreement with the baseline is printed first (untrained weights: near-tied scores, so int8
agreement here says little; --accuracy is the accuracy check).

Accuracy: `deepres eval` on the CIFAR-10 test set (10,000 images) of deepres's published
full-schedule weights (deepres:resnet20.cifar10, deepres:resnet56.cifar10): fp32 on torch, and
the int8 export (calibrated on 512 training images) on ONNX Runtime and OpenVINO. It fails (exit
1, a FAILED line per cause) where int8 agrees with fp32 on fewer than INT8_MIN_AGREEMENT % of
the test images or loses more than INT8_MAX_ERROR_RISE points.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
from pathlib import Path

import avx2_only
import numpy as np
import torch
import torchvision
from inference_cpu import _calibrate as _calibrate_bn  # BN statistics as trained
from legacy_int8 import fx_int8
from PIL import Image
from timing import interleaved
from train_throughput import ref_resnet20

import deepres
from deepres.export import fold_batchnorm
from deepres.export.writers import ExportOptions, export
from deepres.loaded import load_predictor
from deepres.loaded.engines import _openvino_core, installed
from deepres.runtime.precision import cpu_flags, cpu_has_native_bf16

CIFAR = Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets" / "cifar10-jpg.tar.gz"


def _folder(root: Path, size: int) -> Path:
    """64 random images in train/ and test/ (calibration input for the int8 export)."""
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for c in range(2):
            d = root / split / f"c{c}"
            d.mkdir(parents=True, exist_ok=True)
            for i in range(32):
                Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(
                    d / f"{i}.png")
    return root


def _models(name: str, tmp: Path) -> tuple[torch.nn.Module, torch.nn.Module, Path, int, str]:
    """(baseline, deepres model, its weights file, input size, baseline label)."""
    if name == "resnet50":
        base = _calibrate_bn(torchvision.models.resnet50(), 224)
        ours = deepres.create_model("resnet50")
        ours.load_state_dict(base.state_dict())
        size, label = 224, "torchvision eager fp32"
    else:
        ours = _calibrate_bn(deepres.create_model("resnet20"), 32)
        base = ref_resnet20()
        base.load_state_dict({k: v.clone() for k, v in zip(
            base.state_dict(), ours.state_dict().values(), strict=True)})
        size, label = 32, "plain PyTorch eager fp32"
    w = tmp / f"{name}.safetensors"
    deepres.save_weights(ours.eval(), w, class_names=[f"c{i}" for i in range(ours.fc.out_features)],
                         extra={"input_mean": [0.45, 0.45, 0.45], "input_size": size,
                                "test_resize": 256 if size == 224 else 32})
    return base.eval(), ours.eval(), w, size, label


def variants(name: str, tmp: Path) -> tuple[dict, int]:
    """label -> a function of the input batch; and the input size."""
    base, ours, w, size, label = _models(name, tmp)
    q = tmp / f"{name}.int8.onnx"
    p = load_predictor(str(w), precision="fp32")
    export(p, "int8", str(q), ExportOptions(data=str(_folder(tmp / f"{name}-data", size)),
                                            calibration_images=64))
    folded = fold_batchnorm(ours).to(memory_format=torch.channels_last)
    fx = fx_int8(ours, [torch.rand(8, 3, size, size) - 0.5 for _ in range(4)])

    def torch_fn(m, bf16=False, cl=False):
        def run(x):
            x = x.contiguous(memory_format=torch.channels_last) if cl else x
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                return m(x).float()
        return run

    out = {label: torch_fn(base),
           "deepres torch fp32 (BN folded, channels_last)": torch_fn(folded, cl=True)}
    if cpu_has_native_bf16():
        out["deepres torch bf16 (autocast)"] = torch_fn(folded, bf16=True, cl=True)
    out["deepres torch int8 (former FX + TorchScript)"] = torch_fn(fx)
    for engine in ("onnxruntime", "openvino"):
        if not installed(engine):
            continue
        out[f"{engine} fp32"] = load_predictor(str(w), precision="fp32", engine=engine).logits
        if engine == "openvino" and cpu_has_native_bf16():
            out["openvino bf16"] = load_predictor(str(w), precision="bf16",
                                                  engine=engine).logits
        out[f"{engine} int8 (export --format int8)"] = load_predictor(
            str(q), engine=engine).logits
    auto_w = load_predictor(str(w), precision="auto", engine="auto")
    auto_q = load_predictor(str(q), engine="auto")
    out[f"deepres auto, weights ({auto_w.engine} {auto_w.precision})"] = auto_w.logits
    out[f"deepres auto, int8 file ({auto_q.engine})"] = auto_q.logits
    return out, size


def speed(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="deepres-engines-"))
    batches = {"resnet50": (1, 16), "resnet20": (1, 256)}
    for name in args.models.split(","):
        fns, size = variants(name, tmp)
        base_label = next(iter(fns))
        for batch in batches[name]:
            x = torch.rand(batch, 3, size, size) - 0.5
            calls = {k: (lambda f=f, x=x: f(x)) for k, f in fns.items()}
            with torch.inference_mode():
                ref = calls[base_label]().argmax(1)
                for k, fn in calls.items():
                    if "int8" in k:  # near-tied scores of untrained weights: says nothing
                        continue
                    agree = (fn().argmax(1) == ref).float().mean().item()
                    print(f"  check {name} b{batch} {k}: top-1 agrees with the baseline on "
                          f"{100 * agree:.0f}% of {batch} random inputs")
                print(f"  int8 variants: agreement is checked on trained nets and real test "
                      f"images by --accuracy (at least {INT8_MIN_AGREEMENT}% or it fails)")
            small = size == 32
            iters = (20 if small else 5) if batch == 1 else (2 if small else 1)
            t = interleaved(calls, args.reps, iters=iters, warmup=1, context=torch.inference_mode,
                            settle=args.settle)
            base = t[base_label]
            print(f"\n{name}, batch {batch}, {size}x{size}")
            print(f"| variant | images/s | ratio vs {base_label} |\n|---|---|---|")
            for k, v in t.items():
                print(f"| {k} | {batch / v:.1f} | {base / v:.2f} |")
            print(flush=True)


# The int8 export passes only if, on every engine, its top-1 answers agree with fp32's on at
# least this share of the 10,000 CIFAR-10 test images, and its error is at most this many
# points above fp32's. Measured 98.9-99.1% and -0.1..+0.1 points (BENCHMARKS.md).
INT8_MIN_AGREEMENT = 98.0
INT8_MAX_ERROR_RISE = 0.5
# Trained nets: deepres's published full-schedule CIFAR-10 weights.
TRAINED = ("deepres:resnet20.cifar10", "deepres:resnet56.cifar10")


def int8_failures(name: str, errors: dict[str, float], agree: dict[str, float]) -> list[str]:
    """What fails the int8 check for one net (``errors``/``agree`` in %, keyed by engine, with
    ``fp32`` the reference): one line per failure, empty when it passes."""
    out = []
    for engine, a in agree.items():
        if engine == "fp32":
            continue
        if not a >= INT8_MIN_AGREEMENT:  # NaN fails too
            out.append(f"{name} int8 on {engine}: top-1 agrees with fp32 on {a:.2f}% of the "
                       f"test images, below {INT8_MIN_AGREEMENT}%")
        rise = errors[engine] - errors["fp32"]
        if not rise <= INT8_MAX_ERROR_RISE:
            out.append(f"{name} int8 on {engine}: test error {errors[engine]:.2f}% is "
                       f"{rise:+.2f} points from fp32's {errors['fp32']:.2f}%, beyond "
                       f"+{INT8_MAX_ERROR_RISE}")
    return out


def accuracy() -> int:
    from deepres.evaluate.runner import run_eval
    from deepres.models.published import local_path

    tmp = Path(tempfile.mkdtemp(prefix="deepres-int8-acc-"))
    print("| model | fp32 (torch) | int8 onnxruntime | int8 openvino | top-1 agreement "
          "(int8 ort / ov vs fp32) |\n|---|---|---|---|---|")
    failures = []
    for source in TRAINED:
        name = source.split(":")[1]
        w = Path(local_path(source))
        q = tmp / f"{name}.int8.onnx"
        export(load_predictor(str(w), precision="fp32"), "int8", str(q),
               ExportOptions(data=str(CIFAR)))
        errors, agree = {}, {}
        ref = None
        for label, f, engine in (("fp32", w, "torch"), ("ort", q, "onnxruntime"),
                                 ("ov", q, "openvino")):
            r = run_eval([str(f)], str(CIFAR), precision="fp32", engine=engine)
            errors[label] = 100 * r["top1_error"]
            p = load_predictor(str(f), precision="fp32", engine=engine)
            preds = _top1(p)
            ref = preds if ref is None else ref
            agree[label] = 100 * (preds == ref).float().mean().item()
        print(f"| {name} | {errors['fp32']:.2f}% | {errors['ort']:.2f}% | {errors['ov']:.2f}% "
              f"| {agree['ort']:.2f}% / {agree['ov']:.2f}% |", flush=True)
        failures += int8_failures(name, errors, agree)
    print(f"\ncheck: int8 top-1 agreement with fp32 >= {INT8_MIN_AGREEMENT}% and test error "
          f"at most +{INT8_MAX_ERROR_RISE} points, on each engine")
    for line in failures:
        print(f"FAILED: {line}", file=sys.stderr)
    print("int8 check: " + ("FAILED" if failures else "passed"), flush=True)
    return 1 if failures else 0


def _top1(p) -> torch.Tensor:
    from deepres.data import load_data
    from deepres.data.testtime import test_batches
    from deepres.loaded import probs_single

    ds = load_data(str(CIFAR)).split("test")
    return torch.cat([probs_single(p, b.images).argmax(1)
                      for b in test_batches(ds, p.spec, 500)])


def machine_line() -> str:
    """The CPU, threads, engine versions and the CPU flags that choose kernels, in one line."""
    flags = sorted(f for f in cpu_flags() if f in {"avx512_bf16", "amx_bf16", "amx_int8",
                                                    "avx512_vnni", "avx_vnni", "avx512f",
                                                    "avx2"})
    versions = [f"torch {torch.__version__}"]
    for mod in ("onnxruntime", "openvino"):
        if installed(mod):
            versions.append(f"{mod} {__import__(mod).__version__}")
    return (f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} "
            f"threads; {', '.join(versions)}; CPU flags: {' '.join(flags)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--models", default="resnet50,resnet20")
    ap.add_argument("--accuracy", action="store_true",
                    help="int8 CIFAR-10 test error of the trained ResNet-20/56 instead")
    ap.add_argument("--settle", type=float, default=0.2,
                    help="seconds of rest before each variant's turn, so that one engine's "
                         "spinning threads do not slow the next (0: none, as before 2026-12-06)")
    ap.add_argument("--avx2-only", action="store_true",
                    help="rerun under benchmarks/avx2_only.py: the libraries see a CPU without "
                         "AVX-512, VNNI or AMX and run their AVX2 kernels")
    args = ap.parse_args()
    if args.avx2_only and not avx2_only.active():
        avx2_only.reexec([sys.executable, *sys.argv])
    torch.manual_seed(0)
    print(machine_line(), flush=True)
    if avx2_only.active():
        ov_caps = (_openvino_core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
                   if installed("openvino") else "not installed")
        print("AVX2-only proxy (benchmarks/avx2_only.py): PyTorch's CPU capability "
              f"{torch.backends.cpu.get_cpu_capability()}, OpenVINO's CPU capabilities "
              f"{ov_caps}; the flags above are what the process sees", flush=True)
    status = 0
    if args.accuracy:
        status = accuracy()
    else:
        speed(args)
    print(avx2_only.avx512_state_report())
    sys.exit(status)


if __name__ == "__main__":
    main()
