"""Reading shards from an object store: a real S3-compatible server (moto, on 127.0.0.1) holds
the shards; each figure is one run of deepres's own data path in a fresh process, with the bytes
that crossed the loopback interface (the server's traffic, both ways, headers included).

    .venv/bin/python benchmarks/s3_read.py [--src DIR]   # DIR: another checkout's src/

1. A split of small images decoded in order (as a CIFAR-sized set is held in memory): 5,000
   images of 32x32 in shards of 1,000, with the 8 MB read-ahead and without it (one request
   an image).
2. One shuffled training epoch of large images (streamed: 768 JPEGs of 500x375 in shards of
   256, scale augmentation and 224 crops, 2 DataLoader workers), after a first run has cached
   the shards' indexes and image sizes; the same epoch from the same shards on the local disk
   beside it; and the S3 epoch again through a relay that adds ``--latency-ms`` (20) to each
   request, as a network to a real object store would: shuffled over the whole set, and
   streamed (``--shuffle-buffer 64``: each DataLoader worker fetches its own shards whole).

``--src`` runs the same measurements on another checkout's code (``/tmp/old/src`` for the
commit before a change), so before and after come from one script on one machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from data_scale import _make_folder
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def _loopback_bytes() -> int:
    with open("/proc/net/dev") as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name.strip() == "lo":
                return int(rest.split()[0])
    return 0


def _server() -> tuple[subprocess.Popen, dict[str, str]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                             str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
    deadline = time.time() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return proc, env
        except OSError:
            if time.time() > deadline:
                raise SystemExit("the S3 server (moto) did not start") from None
            time.sleep(0.1)


class _SlowLink:
    """A TCP relay in front of the server that holds each chunk a client sends for ``delay``
    seconds: every request then costs a network round trip, as an object store over a real
    network does (this machine's loopback has none, and no netem to add one). Counts the bytes
    the server sends back."""

    def __init__(self, upstream: int, delay: float) -> None:
        self.upstream, self.delay, self.bytes = upstream, delay, 0
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        ready.wait()

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._pipe, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        self.loop.run_forever()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.upstream)

        async def relay(src, dst, delay: float, count: bool) -> None:
            try:
                while chunk := await src.read(65536):
                    if delay:
                        await asyncio.sleep(delay)
                    if count:
                        self.bytes += len(chunk)
                    dst.write(chunk)
                    await dst.drain()
            except ConnectionError:
                pass
            finally:
                dst.close()

        await asyncio.gather(relay(reader, up_w, self.delay, False),
                             relay(up_r, writer, 0.0, True))


def _small_folder(root: Path, n: int) -> Path:
    rng = np.random.default_rng(0)
    for i in range(n):
        d = root / "train" / f"c{i % 10}"
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(d / f"{i}.png")
    return root


def _child(kind: str, data: str, read_ahead: bool) -> dict:
    """One measurement in this process (called through ``--child``)."""
    from deepres.data import remote

    if not read_ahead:
        remote.READ_AHEAD = 0  # every read is then one ranged request for its own bytes
    t0 = time.perf_counter()
    if kind in ("decode", "first"):
        from deepres.data import load_data

        n = len(load_data(data).train)  # "first": a fresh cache, as a first run starts
    else:
        from deepres.data.config import DataConfig
        from deepres.data.pipeline import build_pipeline

        extra = {"shuffle_buffer": 64} if kind == "stream" else {}
        p = build_pipeline(DataConfig(data=data, workers=2, **extra), 32, "cpu", seed=0)
        t0 = time.perf_counter()  # the epoch alone (indexes and sizes come from the cache)
        n = sum(len(x) for x, _ in p.train.batches(0))
    return {"images": n, "seconds": time.perf_counter() - t0}


def _measure(src: Path, env: dict[str, str], *args: str) -> dict:
    before = _loopback_bytes()
    out = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True,
                         text=True, env={**os.environ, **env, "PYTHONPATH": str(src)})
    if out.returncode:
        raise SystemExit(f"child {args} failed:\n{out.stderr[-3000:]}")
    r = json.loads(out.stdout.strip().splitlines()[-1])
    return {**r, "mb": (_loopback_bytes() - before) / 1e6}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--src", type=Path, default=ROOT / "src")
    ap.add_argument("--latency-ms", type=float, default=20.0,
                    help="the round trip added to each request in the last row")
    ap.add_argument("--child", nargs=3, metavar=("KIND", "DATA", "READ_AHEAD"))
    args = ap.parse_args()
    if args.child:
        kind, data, ahead = args.child
        print(json.dumps(_child(kind, data, ahead == "1")))
        return
    import s3fs

    from deepres.data import resolve
    from deepres.data.shards import write_shards

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
          f"code: {args.src}; command: {' '.join(sys.argv)}")
    server, env = _server()
    try:
        with tempfile.TemporaryDirectory() as d:
            tmp = Path(d)
            os.environ.update(env)
            fs = s3fs.S3FileSystem(skip_instance_cache=True)
            fs.mkdir("bench")
            small = _small_folder(tmp / "small", 5000)
            write_shards(resolve(str(small)).indexes(), tmp / "small-shards", 1000)
            big = _make_folder(tmp / "big", 768)
            write_shards(resolve(str(big)).indexes(), tmp / "big-shards", 256)
            for name in ("small-shards", "big-shards"):
                fs.put(str(tmp / name) + "/", f"bench/{name}/", recursive=True)
            for ahead in ("1", "0"):
                env["DEEPRES_CACHE"] = str(tmp / f"cache-decode-{ahead}")
                r = _measure(args.src, env, "decode", "s3://bench/small-shards/", ahead)
                print(f"decode 5,000 32x32 images in order from S3, read-ahead "
                      f"{'8 MB' if ahead == '1' else 'off'}: {r['seconds']:.1f} s, "
                      f"{r['images'] / r['seconds']:.0f} img/s, {r['mb']:.1f} MB over the wire",
                      flush=True)
            for data, label in ((str(tmp / "big-shards"), "local disk"),
                                ("s3://bench/big-shards/", "S3")):
                env["DEEPRES_CACHE"] = str(tmp / f"cache-epoch-{label}")
                first = _measure(args.src, env, "first", data, "1")  # indexes and sizes
                print(f"first run from {label}: index, image checks and layout, then cached: "
                      f"{first['seconds']:.1f} s, {first['mb']:.1f} MB over the wire", flush=True)
                r = _measure(args.src, env, "epoch", data, "1")
                print(f"one shuffled epoch of 768 500x375 JPEGs from {label} (2 workers): "
                      f"{r['seconds']:.1f} s, {r['images'] / r['seconds']:.0f} img/s, "
                      f"{r['mb']:.1f} MB over the wire", flush=True)
            link = _SlowLink(int(env["AWS_ENDPOINT_URL"].rsplit(":", 1)[1]),
                             args.latency_ms / 1000)
            slow = {**env, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{link.port}"}
            r = _measure(args.src, slow, "epoch", "s3://bench/big-shards/", "1")
            r["mb"] = link.bytes / 1e6  # the relay's count (loopback counts both hops)
            print(f"the same S3 epoch with {args.latency_ms:g} ms added to each request: "
                  f"{r['seconds']:.1f} s, {r['images'] / r['seconds']:.0f} img/s, "
                  f"{r['mb']:.1f} MB from the server", flush=True)
            if (args.src / "deepres" / "data" / "streams.py").exists():
                link.bytes = 0
                r = _measure(args.src, slow, "stream", "s3://bench/big-shards/", "1")
                print(f"streamed (--shuffle-buffer 64: each worker fetches its shards whole), "
                      f"{args.latency_ms:g} ms a request: {r['seconds']:.1f} s, "
                      f"{r['images'] / r['seconds']:.0f} img/s, {link.bytes / 1e6:.1f} MB from "
                      "the server", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
