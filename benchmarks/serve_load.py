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


def start(weights: str, precision: str, max_batch: int, engine: str = "auto",
          timeout: float = 30.0) -> tuple[subprocess.Popen, int]:
    port = _port()
    proc = subprocess.Popen([sys.executable, "-m", "deepres", "serve", "--weights", weights,
                             "--port", str(port), "--precision", precision, "--max-batch",
                             str(max_batch), "--max-wait-ms", "5", "--max-queue", "4096",
                             "--engine", engine, "--timeout", str(timeout)],
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


def healthz_latency(port: int, n: int = 200) -> tuple[float, float]:
    """p50 seconds of GET /healthz on one kept-alive connection, and on a new connection each
    (a kept-alive connection once waited ~40 ms a response: Nagle against delayed ACKs)."""
    kept, fresh = [], []
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for _ in range(n):
        t = time.perf_counter()
        conn.request("GET", "/healthz")
        conn.getresponse().read()
        kept.append(time.perf_counter() - t)
        t = time.perf_counter()
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/healthz")
        c.getresponse().read()
        c.close()
        fresh.append(time.perf_counter() - t)
    return statistics.median(kept), statistics.median(fresh)


def faults(port: int, body: bytes, seconds: float, pause: float = 0.05,
           idle: int = 300) -> dict:
    """Misbehaving and hostile clients beside 16 well-behaved ones: some disconnect mid-body,
    some send their body slowly, some send garbage or a broken multipart form, some send pixel
    bombs (an 86 KB 9400x9400 PNG, a 100,000x1 strip), some a top_k in Unicode digits, and some
    open connections that never finish their headers and hold them (up to ``idle``, opened as
    fast as the server accepts them; it closes each after its header timeout). Returns the
    good clients' figures and the server's error counters and health afterwards."""
    stop = time.perf_counter() + seconds
    done = {"disconnect": 0, "slow": 0, "garbage": 0, "bad_form": 0, "pixel_bomb": 0,
            "strip": 0, "unicode_top_k": 0, "idle": 0, "scan_bomb": 0, "stalled_v2": 0,
            "decode_burst": 0}
    bombs = {"pixel_bomb": _gray_png(9400, 9400), "strip": _gray_png(100_000, 1),
             "scan_bomb": _scan_bomb(4096, 1000), "decode_burst": _webp(5000)}
    held: list[socket.socket] = []

    def post(s: socket.socket, path: str, data: bytes) -> None:
        s.sendall(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                  b"Content-Length: %d\r\n\r\n" % (path.encode(), len(data)) + data)
        s.recv(4096)

    def bad(kind: str) -> None:
        while time.perf_counter() < stop:
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=10)
                if kind in bombs:
                    post(s, "/v1/predict", bombs[kind])
                elif kind == "unicode_top_k":
                    post(s, "/v1/predict?top_k=%C2%B2", body)
                elif kind == "stalled_v2":  # v2 headers and "{", then nothing
                    s.sendall(b"POST /v2/models/resnet20/infer HTTP/1.1\r\nHost: x\r\n"
                              b"Content-Type: application/json\r\nContent-Length: 1000"
                              b"\r\n\r\n{")
                    s.recv(4096)  # 408 after --timeout
                elif kind == "idle":  # half a request line, then nothing: held open
                    s.sendall(b"GET /healthz HT")
                    if len(held) < idle:
                        held.append(s)
                        done[kind] += 1
                        continue
                elif kind == "disconnect":  # promise a body, send half, leave
                    s.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: "
                              b"image/png\r\nContent-Length: %d\r\n\r\n" % len(body)
                              + body[:len(body) // 2])
                elif kind == "slow":  # the body a few bytes at a time
                    s.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: "
                              b"image/png\r\nContent-Length: %d\r\n\r\n" % len(body))
                    for i in range(0, min(len(body), 64), 8):
                        s.sendall(body[i:i + 8])
                        time.sleep(0.05)
                elif kind == "garbage":
                    s.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 9"
                              b"\r\n\r\nnot a png")
                    s.recv(4096)
                else:
                    s.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: "
                              b"multipart/form-data; boundary=zz\r\nContent-Length: 10\r\n"
                              b"\r\n--zz\r\nabcd")
                    s.recv(4096)
                s.close()
                done[kind] += 1
            except OSError:
                done[kind] += 1
            time.sleep(pause)  # 0.05 s: mixed into the load; 0: a flood

    threads = [threading.Thread(target=bad, args=(k,)) for k in done for _ in range(2)]
    for th in threads:
        th.start()
    good = load(port, body, 16, seconds)
    for th in threads:
        th.join()
    for s in held:
        s.close()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/metrics")
    metrics = c.getresponse().read().decode()
    c.request("GET", "/readyz")
    ready = c.getresponse().status
    errors = [line for line in metrics.splitlines() if line.startswith("deepres_errors_total")]
    return {"good": good, "sent": done, "errors": errors, "ready_after": ready}


def _scan_bomb(side: int, repeats: int) -> bytes:
    """A progressive JPEG whose last scan is repeated: a few bytes per full decoding pass."""
    buf = io.BytesIO()
    Image.new("L", (side, side), 128).save(buf, "JPEG", progressive=True, quality=50)
    data = buf.getvalue()
    scan = data[data.rfind(b"\xff\xda"):-2]
    return data[:-2] + scan * repeats + b"\xff\xd9"


def _webp(side: int) -> bytes:
    """A 25-megapixel image in 45 KB: memory while it decodes, not bytes on the wire."""
    buf = io.BytesIO()
    Image.new("RGB", (side, side), (120, 30, 200)).save(buf, "WEBP", quality=50)
    return buf.getvalue()


def _gray_png(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.new("L", (w, h)).save(buf, "PNG")
    return buf.getvalue()


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
    return float("nan")


def in_process(weights: str, precision: str, size: int, batch: int = 16,
               engine: str = "auto") -> float:
    from deepres.evaluate.testing import load_predictor, probs_single

    p = load_predictor(weights, "cpu", precision, engine=engine)
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
    ap.add_argument("--faults", action="store_true",
                    help="only the fault run (ResNet-20 bf16, batching)")
    ap.add_argument("--fault-pause", type=float, default=0.05,
                    help="fault run: seconds each misbehaving client waits between attempts")
    ap.add_argument("--fault-precision", default="bf16",
                    help="fault run: the server's precision (fp32 on a CPU without bf16)")
    ap.add_argument("--fault-timeout", type=float, default=30.0,
                    help="fault run: the server's --timeout (stalled bodies wait that long)")
    ap.add_argument("--idle", type=int, default=300,
                    help="fault run: connections opened and left without finished headers")
    ap.add_argument("--burst", type=int, default=0,
                    help="also: this many clients at once for 5 s after the steady load")
    ap.add_argument("--models", nargs="+", default=["resnet20:fp32", "resnet20:bf16",
                                                     "resnet50:bf16"],
                    help="MODEL:PRECISION[:ENGINE] (precision fp32, bf16 or int8: the export; "
                    "engine auto, torch, onnxruntime or openvino; default auto)")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    r50 = tmp / "r50.safetensors"
    from deepres.inputspec import IMAGENET
    from deepres.models import create_model, save_weights

    save_weights(create_model("resnet50", num_classes=10), r50,
                 class_names=[f"c{i}" for i in range(10)], extra=IMAGENET.to_metadata())
    weights = {"resnet20": str(ROOT / "reports/runs/resnet20-s0/weights.safetensors"),
               "resnet50": str(r50)}
    if any(m.split(":")[1] == "int8" for m in a.models):  # calibrated on the bundled sample
        for name in {m.split(":")[0] for m in a.models if m.split(":")[1] == "int8"}:
            out = tmp / f"{name}.int8.onnx"
            subprocess.run([sys.executable, "-m", "deepres", "export", "--weights", weights[name],
                            "--format", "int8", "--data", "sample", "--calibration-images",
                            "64", str(out)], check=True, capture_output=True)
            weights[f"{name}-int8"] = str(out)
    if a.faults:
        proc, port = start(weights["resnet20"], a.fault_precision, 32, timeout=a.fault_timeout)
        try:
            before = peak_rss_mb(proc.pid)
            r = faults(port, _png(32), a.seconds, a.fault_pause, a.idle)
            peak = peak_rss_mb(proc.pid)
        finally:
            proc.terminate()
            code = proc.wait()
        g = r["good"]
        print(f"fault run, {a.seconds:g} s: good clients {g['rps']:.1f} requests/s, p50 "
              f"{1000 * g['p50']:.0f} ms, p99 {1000 * g['p99']:.0f} ms, {g['errors']} errors; "
              f"server peak memory {before:.0f} MB before, {peak:.0f} MB after; misbehaving "
              f"connections {r['sent']}; server counters {r['errors']}; /readyz after: "
              f"{r['ready_after']}; exit status after SIGTERM: {code}")
        return
    print("| model | precision | engine | clients | serving | requests/s | p50 ms | p95 ms | "
          "p99 ms | errors | server peak MB | load generator CPU |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for spec in a.models:
        name, precision, engine = (spec + ":auto").split(":")[:3]
        shown = f"{name} | {precision} | {engine}"
        size = 32 if name == "resnet20" else 224
        body = _png(size)
        w = weights[f"{name}-int8"] if precision == "int8" else weights[name]
        precision = "fp32" if precision == "int8" else precision  # int8 kernels take floats
        ref = in_process(w, precision, size, engine=engine)
        for clients in a.clients:
            got = {}
            for label, max_batch in (("dynamic batching (32)", 32), ("batch of one", 1)):
                proc, port = start(w, precision, max_batch, engine)
                try:
                    if max_batch == 32 and clients == a.clients[0]:
                        kept, fresh = healthz_latency(port)
                        print(f"| {shown} | /healthz p50 | kept-alive {1000 * kept:.2f} ms, "
                              f"new connection {1000 * fresh:.2f} ms | | | | | | | |",
                              flush=True)
                    r = load(port, body, clients, a.seconds)
                    mem = peak_rss_mb(proc.pid)
                finally:
                    proc.terminate()
                    proc.wait()
                got[label] = r
                print(f"| {shown} | {clients} | {label} | {r['rps']:.1f} | "
                      f"{1000 * r['p50']:.0f} | {1000 * r['p95']:.0f} | {1000 * r['p99']:.0f} | "
                      f"{r['errors']} | {mem:.0f} | {100 * r['loadgen_cpu']:.0f}% of a core |",
                      flush=True)
            if a.burst:
                proc, port = start(w, precision, 32, engine)
                try:
                    r = load(port, body, a.burst, 5)
                finally:
                    proc.terminate()
                    proc.wait()
                print(f"| {shown} | burst of {a.burst} | dynamic batching "
                      f"(32) | {r['rps']:.1f} | {1000 * r['p50']:.0f} | {1000 * r['p95']:.0f} | "
                      f"{1000 * r['p99']:.0f} | {r['errors']} | | |", flush=True)
            ratio = got["dynamic batching (32)"]["rps"] / got["batch of one"]["rps"]
            print(f"| {shown} | {clients} | batching / batch-of-one "
                  "| "
                  f"{ratio:.2f}x | | | | | | |")
        print(f"| {shown} | in-process | batch 16, no server | "
              f"{ref:.1f} img/s | | | | | | |", flush=True)
    print(json.dumps({"seconds": a.seconds}))


if __name__ == "__main__":
    main()
