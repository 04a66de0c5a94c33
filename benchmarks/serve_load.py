"""`deepres serve` under load on loopback: throughput, latency percentiles, errors and the
server's peak memory, with dynamic batching against batch-of-one serving in the same run, and
the same model's images/s in-process at batch 16 as the reference.

    .venv/bin/python benchmarks/serve_load.py [--seconds 20] [--clients 32 128]

Models: the committed medium ResNet-20 (CIFAR, 32x32) and a ResNet-50 (224x224, random weights
with deepres metadata: the speed does not depend on the values), each in the precisions given.
The load generator runs in this process (threads with keep-alive connections); its own CPU use
is printed beside each figure, since it shares the 2 cores with the server.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _png(size: int) -> bytes:
    buf = io.BytesIO()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def start(weights: str, precision: str, max_batch: int) -> tuple[subprocess.Popen, int]:
    port = _port()
    proc = subprocess.Popen([sys.executable, "-m", "deepres", "serve", "--weights", weights,
                             "--port", str(port), "--precision", precision, "--max-batch",
                             str(max_batch), "--max-wait-ms", "5", "--max-queue", "4096"],
                            stderr=subprocess.DEVNULL)
    for _ in range(600):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("GET", "/readyz")
            if c.getresponse().status == 200:
                return proc, port
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit("server did not start")


def load(port: int, body: bytes, clients: int, seconds: float) -> dict:
    latencies: list[float] = []
    errors = [0]
    stop = time.perf_counter() + seconds
    lock = threading.Lock()

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine = []
        while time.perf_counter() < stop:
            t = time.perf_counter()
            try:
                conn.request("POST", "/v1/predict?top_k=1", body, {"Content-Type": "image/png"})
                r = conn.getresponse()
                r.read()
                ok = r.status == 200
            except OSError:
                ok = False
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            if ok:
                mine.append(time.perf_counter() - t)
            else:
                with lock:
                    errors[0] += 1
        with lock:
            latencies.extend(mine)

    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [float("nan")] * 99
    return {"rps": len(latencies) / wall, "p50": q[49], "p95": q[94], "p99": q[98],
            "errors": errors[0], "loadgen_cpu": (cpu1.ru_utime + cpu1.ru_stime
                                                 - cpu0.ru_utime - cpu0.ru_stime) / wall}


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
    return float("nan")


def in_process(weights: str, precision: str, size: int, batch: int = 16) -> float:
    from deepres.evaluate.testing import load_predictor, probs_single

    p = load_predictor(weights, "cpu", precision)
    x = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8)
    probs_single(p, x)
    t, n = time.perf_counter(), 0
    while time.perf_counter() - t < 5:
        probs_single(p, x)
        n += batch
    return n / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--clients", type=int, nargs="+", default=[32])
    ap.add_argument("--models", nargs="+", default=["resnet20:fp32", "resnet20:bf16",
                                                     "resnet50:bf16"])
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    r50 = tmp / "r50.safetensors"
    from deepres.inputspec import IMAGENET
    from deepres.models import create_model, save_weights

    save_weights(create_model("resnet50", num_classes=10), r50,
                 class_names=[f"c{i}" for i in range(10)], extra=IMAGENET.to_metadata())
    weights = {"resnet20": str(ROOT / "reports/runs/resnet20-s0/weights.safetensors"),
               "resnet50": str(r50)}
    print("| model | precision | clients | serving | requests/s | p50 ms | p95 ms | p99 ms | "
          "errors | server peak MB | load generator CPU |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for spec in a.models:
        name, precision = spec.split(":")
        size = 32 if name == "resnet20" else 224
        body = _png(size)
        ref = in_process(weights[name], precision, size)
        for clients in a.clients:
            got = {}
            for label, max_batch in (("dynamic batching (32)", 32), ("batch of one", 1)):
                proc, port = start(weights[name], precision, max_batch)
                try:
                    r = load(port, body, clients, a.seconds)
                    mem = peak_rss_mb(proc.pid)
                finally:
                    proc.terminate()
                    proc.wait()
                got[label] = r
                print(f"| {name} | {precision} | {clients} | {label} | {r['rps']:.1f} | "
                      f"{1000 * r['p50']:.0f} | {1000 * r['p95']:.0f} | {1000 * r['p99']:.0f} | "
                      f"{r['errors']} | {mem:.0f} | {100 * r['loadgen_cpu']:.0f}% of a core |",
                      flush=True)
            ratio = got["dynamic batching (32)"]["rps"] / got["batch of one"]["rps"]
            print(f"| {name} | {precision} | {clients} | batching / batch-of-one | "
                  f"{ratio:.2f}x | | | | | | |")
        print(f"| {name} | {precision} | in-process | batch 16, no server | {ref:.1f} img/s "
              "| | | | | | |", flush=True)
    print(json.dumps({"seconds": a.seconds}))


if __name__ == "__main__":
    main()
