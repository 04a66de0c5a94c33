"""Small data and weights made on the spot for tests."""

import json
import os
import signal
import subprocess
import time

import numpy as np
import torch
from PIL import Image

from deepres import create_model, save_weights


def make_tiny_folder(root, classes=3, per_class=32, test_per_class=8, seed=0):
    """A small learnable image folder: each class has its own colour plus noise."""
    rng = np.random.default_rng(seed)
    base = rng.integers(40, 215, (classes, 3))
    for split, n in (("train", per_class), ("test", test_per_class)):
        for c in range(classes):
            d = root / split / f"class{c}"
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                img = np.clip(base[c] + rng.normal(0, 30, (32, 32, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(img).save(d / f"{i:03d}.png")
    return root


def randomize_bn(model, seed=0):
    """Non-trivial BN statistics and affine parameters, so eval-mode checks mean something."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) * 0.2 - 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(m.num_features, generator=g) * 0.2 - 0.1)
    return model


def make_weights(path, name="resnet8", classes=("class0", "class1", "class2"), seed=0, size=32):
    """A deepres weights file with the metadata `deepres train` writes."""
    torch.manual_seed(seed)
    model = randomize_bn(create_model(name, num_classes=len(classes)), seed)
    mean = torch.rand(3, size, size) if size <= 64 else torch.rand(3)
    save_weights(model, path, class_names=list(classes),
                 extra={"input_mean": mean.tolist(), "input_size": size,
                        "test_resize": size if size <= 64 else 256})
    return path


def calibrate_bn(model, size, batches=3, seed=0):
    """Set BN running statistics from a few random batches, as a trained network has them,
    so eval-mode activations stay at a realistic scale; returns the model in eval mode."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # cumulative average
    model.train()
    with torch.no_grad():
        for _ in range(batches):
            model(torch.rand(8, 3, size, size, generator=g))
    return model.eval()


def make_large_folder(root, train, test, size=72, seed=0, learnable=True, ext="png",
                      classes=2):
    """Images over the held-in-memory limit (64 px), so training streams them: per class a
    brightness plus noise (learnable), or uniform noise (a JPEG's worst case)."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", train), ("test", test)):
        for c in range(classes):
            d = root / split / f"c{c}"
            d.mkdir(parents=True)
            for i in range(n):
                img = (np.clip(rng.normal(60 + 120 * c, 40, (size, size, 3)), 0, 255)
                       .astype(np.uint8) if learnable
                       else rng.integers(0, 255, (size, size, 3), dtype=np.uint8))
                Image.fromarray(img).save(d / f"{i}.{ext}", **(
                    {"quality": 90} if ext == "jpg" else {}))
    return root


def last_step(run_dir):
    """The last step a run's metrics.jsonl logged, -1 before the first."""
    try:
        lines = (run_dir / "metrics.jsonl").read_text().splitlines()
        return max((json.loads(x)["step"] for x in lines if x.strip()), default=-1)
    except (OSError, ValueError):
        return -1


def run_killed_at(command, run_dir, kill_steps, env=None):
    """Start ``command(resume)``, SIGKILL it once the log reaches each step in kill_steps,
    resume, finish; every kill must land before the run ends."""
    env = {**(env or os.environ), "PYTHONUNBUFFERED": "1"}
    for i, target in enumerate([*kill_steps, None]):
        proc = subprocess.Popen(command(i > 0), env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        if target is None:
            _, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err.decode()[-2000:]
            return
        deadline = time.time() + 120
        while last_step(run_dir) < target and proc.poll() is None and time.time() < deadline:
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL, "finished before it could be killed"


def scan_bomb_jpeg(side, repeats):
    """A progressive grayscale JPEG of ``side`` x ``side`` whose last scan is repeated
    ``repeats`` times: a few bytes per scan, each scan a full decoding pass (issue 42)."""
    import io

    buf = io.BytesIO()
    Image.new("L", (side, side), 128).save(buf, format="JPEG", progressive=True, quality=50)
    data = buf.getvalue()
    last_scan = data[data.rfind(b"\xff\xda"):-2]  # header and entropy data, before EOI
    return data[:-2] + last_scan * repeats + b"\xff\xd9"


class CountingProxy:
    """An HTTP proxy in front of a server (a local S3), counting the response bytes of each
    GET by path: what a client fetched, seen on the wire rather than by our own code. Use as a
    context manager; ``url`` is the endpoint to give the client."""

    HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "te",
           "trailer", "upgrade"}

    def __init__(self, target_port):
        import http.client
        import threading
        from collections import Counter
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.fetched = Counter()
        lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_):
                pass

            def _forward(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else None
                conn = http.client.HTTPConnection("127.0.0.1", target_port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in proxy.HOP}
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                conn.close()
                if self.command == "GET":
                    with lock:
                        proxy.fetched[self.path.split("?")[0]] += len(data)
                self.send_response(resp.status)
                head = self.command == "HEAD"  # its Content-Length is the object's size
                for k, v in resp.getheaders():
                    if k.lower() not in proxy.HOP and (head or k.lower() != "content-length"):
                        self.send_header(k, v)
                if not head:
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *_):
        self.server.shutdown()
        self.server.server_close()
