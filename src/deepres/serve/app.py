"""The service: Starlette on uvicorn. Starlette because it is a small, well-kept ASGI toolkit
(the base FastAPI is built on) with nothing we do not use: routes, requests, responses and a
lifespan; uvicorn because it is the standard ASGI server, handles SIGTERM gracefully (stop
accepting, finish in-flight requests) and runs several worker processes.

Endpoints: POST /v1/predict, GET /v1/model, /healthz, /readyz, /metrics, and a page at /.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import math
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from ..data.images import BadImageError, decode_image_bytes, image_size
from ..loaded import Predictor, load_predictor, probs_single
from ..runtime.terminal import safe
from .batcher import DynamicBatcher, QueueFull
from .page import PAGE

CONFIG_ENV = "DEEPRES_SERVE_CONFIG"  # how worker processes receive the options


@dataclass(frozen=True)
class ServeConfig:
    weights: str
    model: str | None = None  # foreign weights: their model name
    classes: str | None = None  # foreign weights: a class-names file
    device: str = "cpu"
    precision: str = "auto"
    max_batch: int = 32
    max_wait_ms: float = 5.0
    max_queue: int = 256
    max_bytes: int = 10_000_000
    timeout_s: float = 30.0
    max_top_k: int = 20
    # Pixels, not bytes, cost memory and time: a 86 KB PNG can hold 9400x9400 pixels. Checked
    # from each image's header before anything is decoded; an image counts at the larger of
    # its own size and its size after the test resize (an 100,000x1 strip resized to a shorter
    # side of 32 would be 102 million pixels).
    max_pixels: int = 25_000_000  # per image (a 5000x5000 photo)
    max_request_pixels: int = 100_000_000  # per request, all its images together
    # Slow and idle clients: a connection that has not sent a whole request's headers within
    # header_timeout_s is closed, one idle after a response within keep_alive_s, a body not
    # received within timeout_s is 408; past max_connections open at once (per process) a new
    # connection is closed at once, so idle ones cannot use up the process's file descriptors.
    max_connections: int = 1000
    header_timeout_s: float = 10.0
    keep_alive_s: float = 5.0


class Metrics:
    """Counters in Prometheus' text format."""

    def __init__(self) -> None:
        self.requests: dict[str, int] = {}
        self.errors: dict[str, int] = {}

    def count(self, table: dict[str, int], key: str) -> None:
        table[key] = table.get(key, 0) + 1

    def render(self, b: DynamicBatcher) -> str:
        s = b.stats
        lines = ["# TYPE deepres_requests_total counter"]
        lines += [f'deepres_requests_total{{endpoint="{k}"}} {v}'
                  for k, v in sorted(self.requests.items())]
        lines += ["# TYPE deepres_errors_total counter"]
        lines += [f'deepres_errors_total{{kind="{k}"}} {v}' for k, v in sorted(self.errors.items())]
        lines += ["# TYPE deepres_batches_total counter", f"deepres_batches_total {s.batches}",
                  "# TYPE deepres_batch_images_total counter",
                  f"deepres_batch_images_total {s.images}",
                  "# TYPE deepres_batch_size counter"]
        lines += [f'deepres_batch_size{{size="{k}"}} {v}' for k, v in sorted(s.sizes.items())]
        lines += ["# TYPE deepres_queue_seconds_total counter",
                  f"deepres_queue_seconds_total {s.queue_seconds:.6f}",
                  "# TYPE deepres_inference_seconds_total counter",
                  f"deepres_inference_seconds_total {s.inference_seconds:.6f}"]
        return "\n".join(lines) + "\n"


def _error(status: int, kind: str, message: str, m: Metrics, **headers: str) -> JSONResponse:
    m.count(m.errors, kind)
    return JSONResponse({"error": {"kind": kind, "message": message}}, status_code=status,
                        headers=headers or None)


async def _body(request: Request, limit: int) -> bytes | None:
    """The request body, or None once it passes ``limit`` bytes (nothing kept on disk)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def _uploads(request: Request, body: bytes) -> list[tuple[str, bytes]]:
    """The images of a request: the raw body (one image), or each file of a multipart form,
    parsed in memory (the body is already bounded by --max-bytes; Starlette's parser would
    spool parts over 1 MB to a temporary file)."""
    kind = request.headers.get("content-type", "")
    if not kind.startswith("multipart/form-data"):
        return [("upload", body)]
    from starlette.datastructures import UploadFile
    from starlette.formparsers import MultiPartParser

    class InMemory(MultiPartParser):
        spool_max_size = len(body) + 1  # never rolls over to disk

    async def stream() -> AsyncIterator[bytes]:
        yield body

    form = await InMemory(request.headers, stream(), max_part_size=len(body) + 1).parse()
    files = [(v.filename or "upload", await v.read()) for _, v in form.multi_items()
             if isinstance(v, UploadFile)]
    await form.close()
    return files


class Service:
    """One loaded model behind the endpoints: its predictor, batcher and counters."""

    def __init__(self, cfg: ServeConfig) -> None:
        self.cfg, self.ready, self.metrics = cfg, False, Metrics()
        self.predictor: Predictor = load_predictor(cfg.weights, cfg.device, cfg.precision,
                                                   cfg.model, cfg.classes)
        self.batcher = DynamicBatcher(self._infer, max_batch=cfg.max_batch,
                                      max_wait_ms=cfg.max_wait_ms, max_queue=cfg.max_queue)
        self.digest = hashlib.sha256(Path(cfg.weights).read_bytes()).hexdigest()

    def _infer(self, batch: torch.Tensor) -> torch.Tensor:
        return probs_single(self.predictor, batch.to(self.predictor.device)).cpu()

    def _over_budget(self, uploads: list[tuple[str, bytes]]) -> str | None:
        """Why the images of a request would cost too many pixels, read from their headers
        before any is decoded; None when they fit."""
        cfg, side, total = self.cfg, self.predictor.spec.test_resize, 0
        for name, data in uploads:
            size = image_size(io.BytesIO(data))
            if size is None:
                continue  # not an image: decoding says so, as a bad image
            w, h = size
            n = max(w * h, math.ceil(w * h * (side / max(1, min(w, h))) ** 2))
            if n > cfg.max_pixels:
                return (f"{safe(name)}: {w}x{h} costs {n:,} pixels decoded and resized (shorter "
                        f"side {side}), over the limit of {cfg.max_pixels:,} per image "
                        "(--max-pixels); send a smaller image")
            total += n
        if total > cfg.max_request_pixels:
            return (f"the request's {len(uploads)} images cost {total:,} pixels decoded and "
                    f"resized, over the limit of {cfg.max_request_pixels:,} per request "
                    "(--max-request-pixels); send fewer or smaller images")
        return None

    def _views(self, uploads: list[tuple[str, bytes]]) -> list[torch.Tensor]:
        """Decoded in memory and prepared by the weights' input specification."""
        return [self.predictor.spec.test_view(torch.from_numpy(
            decode_image_bytes(data, name)).permute(2, 0, 1)) for name, data in uploads]

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self.batcher.start()
        size = self.predictor.spec.input_size
        await self.batcher.submit([torch.zeros(3, size, size, dtype=torch.uint8)])  # warm-up
        self.ready = True
        yield
        self.ready = False
        await self.batcher.stop()

    async def predict(self, request: Request) -> Response:
        cfg, m = self.cfg, self.metrics
        m.count(m.requests, "predict")
        top_k = request.query_params.get("top_k", "5")
        # ASCII digits only: str.isdigit also accepts "²" and "①", which int() refuses
        if not (top_k.isascii() and top_k.isdigit()) or not 1 <= int(top_k) <= cfg.max_top_k:
            return _error(400, "bad_request", f"top_k must be an integer from 1 to "
                          f"{cfg.max_top_k}, not {top_k!r}", m)
        try:
            body = await asyncio.wait_for(_body(request, cfg.max_bytes), cfg.timeout_s)
        except TimeoutError:
            return _error(408, "slow_client", f"the request body was not received within "
                          f"{cfg.timeout_s:g} s (--timeout)", m)
        if body is None:
            return _error(413, "too_large", f"the request is over {cfg.max_bytes} bytes "
                          "(--max-bytes)", m)
        try:
            uploads = await _uploads(request, body)
        except Exception as exc:  # a malformed form is the client's error
            return _error(400, "bad_request", f"could not read the form: {exc}", m)
        if not uploads:
            return _error(400, "bad_request", "no image in the request", m)
        if len(uploads) > cfg.max_queue:  # could never be queued: retrying cannot help
            return _error(413, "too_many_images", f"{len(uploads)} images in one request, over "
                          f"the {cfg.max_queue} the queue holds (--max-queue); send them in "
                          "smaller requests", m)
        over = self._over_budget(uploads)
        if over is not None:
            return _error(413, "too_many_pixels", over, m)
        try:
            images = await asyncio.to_thread(self._views, uploads)
        except BadImageError as exc:
            return _error(400, "bad_image", str(exc), m)
        try:
            rows = await asyncio.wait_for(self.batcher.submit(images), cfg.timeout_s)
        except QueueFull as exc:
            return _error(503, "overloaded", f"{exc}; retry shortly", m, **{"Retry-After": "1"})
        except TimeoutError:
            return _error(504, "timeout", f"no answer within {cfg.timeout_s:g} s", m)
        return JSONResponse({"results": [
            {"file": name, **self.predictor.top_classes(row, int(top_k))}
            for (name, _), row in zip(uploads, rows, strict=True)]})

    async def model(self, request: Request) -> Response:
        self.metrics.count(self.metrics.requests, "model")
        p = self.predictor
        return JSONResponse({
            "model": p.metadata.get("model"), "classes": p.classes,
            "input_spec": p.spec.as_json(), "precision": p.precision,
            "weights_sha256": self.digest, "max_batch": self.cfg.max_batch,
            "config": {k: v for k, v in asdict(self.cfg).items() if k != "weights"}})

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        return JSONResponse({"ready": self.ready}, status_code=200 if self.ready else 503)

    async def metrics_page(self, request: Request) -> Response:
        return PlainTextResponse(self.metrics.render(self.batcher),
                                 media_type="text/plain; version=0.0.4")

    async def page(self, request: Request) -> Response:
        return HTMLResponse(PAGE)


def create_app(cfg: ServeConfig | None = None) -> Starlette:
    """The ASGI app for ``cfg`` (or the JSON config in $DEEPRES_SERVE_CONFIG: worker
    processes)."""
    s = Service(cfg or ServeConfig(**json.loads(os.environ[CONFIG_ENV])))
    return Starlette(routes=[
        Route("/", s.page), Route("/v1/predict", s.predict, methods=["POST"]),
        Route("/v1/model", s.model), Route("/healthz", s.healthz), Route("/readyz", s.readyz),
        Route("/metrics", s.metrics_page)], lifespan=s.lifespan)


def check_weights(cfg: ServeConfig) -> None:
    """Load the weights once before any server starts, so that a bad file is one error (exit
    2) however many worker processes would have loaded it."""
    load_predictor(cfg.weights, "cpu", "fp32", cfg.model, cfg.classes)


def bind(host: str, port: int) -> Any:
    """The listening socket, bound before the banner: a port in use is one clear error."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ServeError(f"cannot listen on {host}:{port} ({exc.strerror}); is another server "
                         "on that port? Choose another with --port") from exc
    sock.set_inheritable(True)
    return sock


class ServeError(ValueError):
    """The service cannot start: said in one line (exit 2)."""


# A worker that dies is replaced; more deaths than this in a minute (per worker) means
# something is wrong with every start, and the supervisor gives up (exit 1).
MAX_DEATHS_PER_MINUTE = 3


def serve(cfg: ServeConfig, sock: Any, workers: int = 1) -> int:
    """Run the service on the bound ``sock`` until SIGTERM/SIGINT: the first stops accepting
    and lets the requests in flight finish, then returns 0; a second exits at once. With
    ``workers`` > 1 that many server processes share the socket under a supervisor that
    forwards the signals, logs a worker's death and starts a replacement, and gives up (1)
    when workers keep dying."""
    os.environ[CONFIG_ENV] = json.dumps(asdict(cfg))
    _raise_file_limit()  # inherited by the worker processes
    host, port = sock.getsockname()[:2]
    if workers == 1:
        _run(_config(host, port), [sock])
        return 0
    return _supervise(host, port, sock, workers)


def _supervise(host: str, port: int, sock: Any, workers: int) -> int:
    import multiprocessing
    import sys
    import time
    from multiprocessing.connection import wait

    ctx = multiprocessing.get_context("spawn")
    stopping: list[int] = []

    def start() -> Any:
        proc = ctx.Process(target=_worker, args=(host, port, sock))
        proc.start()
        return proc

    procs = [start() for _ in range(workers)]

    def forward(signum: int, frame: object) -> None:
        stopping.append(signum)
        for proc in procs:
            if proc.pid is not None and proc.is_alive():
                os.kill(proc.pid, signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, forward)
    deaths: list[float] = []
    try:
        while any(proc.exitcode is None for proc in procs):
            wait([p.sentinel for p in procs if p.exitcode is None], timeout=1.0)
            for i, proc in enumerate(procs):
                if proc.exitcode is None or stopping or proc.exitcode == 0:
                    continue
                code = proc.exitcode
                why = (f"killed by {signal.Signals(-code).name}" if code < 0
                       else f"exit status {code}")
                now = time.monotonic()
                deaths = [t for t in deaths if now - t < 60] + [now]
                if len(deaths) > MAX_DEATHS_PER_MINUTE * workers:
                    print(f"deepres serve: worker {i + 1} (pid {proc.pid}) died ({why}); "
                          f"{len(deaths)} deaths in a minute: giving up", file=sys.stderr,
                          flush=True)
                    forward(signal.SIGTERM, None)
                    for other in procs:
                        other.join(timeout=40)
                    return 1
                procs[i] = start()
                print(f"deepres serve: worker {i + 1} (pid {proc.pid}) died ({why}); "
                      f"started a replacement (pid {procs[i].pid})", file=sys.stderr,
                      flush=True)
    finally:
        sock.close()
    if len(stopping) > 1:  # a second signal: the workers exited at once, and so do we
        return 128 + stopping[-1]
    return 0 if stopping else 1


def _config(host: str, port: int) -> Any:
    import uvicorn

    cfg = ServeConfig(**json.loads(os.environ[CONFIG_ENV]))
    return uvicorn.Config("deepres.serve.app:create_app", factory=True, host=host, port=port,
                          log_level="warning", timeout_graceful_shutdown=30,
                          http=_guarded_http(cfg.max_connections, cfg.header_timeout_s),
                          timeout_keep_alive=max(1, round(cfg.keep_alive_s)))


def _guarded_http(max_connections: int, header_timeout: float) -> type:
    """uvicorn's h11 protocol with the two limits it lacks: a deadline for a new connection's
    first request headers (uvicorn waits forever: a slow-loris client holds the connection),
    and a cap on open connections (beyond it the oldest connection that has not yet sent a
    request is closed, so idle clients cannot shut out new ones; with none idle, the new one
    is: either way no descriptor is spent past the cap, and accept() never runs out)."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class Guarded(H11Protocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._opened = self.loop.time()
            self._first_request: asyncio.TimerHandle | None = None
            if len(self.connections) > max_connections:
                idle = [c for c in self.connections if c is not self
                        and getattr(c, "cycle", True) is None and hasattr(c, "_opened")]
                if not idle:
                    transport.abort()
                    return
                oldest = min(idle, key=lambda c: c._opened)
                oldest.transport.abort()
            self._first_request = self.loop.call_later(header_timeout, self._no_request)

        def _no_request(self) -> None:
            if self.cycle is None and not self.transport.is_closing():
                self.transport.close()

        def connection_lost(self, exc: Exception | None) -> None:
            if getattr(self, "_first_request", None) is not None:
                self._first_request.cancel()
            super().connection_lost(exc)

    return Guarded


def _raise_file_limit() -> None:
    """The soft limit on open files up to the hard one (often 1,024 of 1,048,576): each
    connection is a file descriptor."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY or soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 1 << 20), hard))
    except (ImportError, ValueError, OSError):
        pass


def _worker(host: str, port: int, sock: Any) -> None:
    _run(_config(host, port), [sock])


def _run(config: Any, sockets: list[Any] | None = None) -> None:
    """One uvicorn server with deepres's own signal handling."""
    import uvicorn

    class Server(uvicorn.Server):
        """Without uvicorn's own signal capture: it re-raises the signal after a graceful
        shutdown, and the process would then end by the signal instead of with status 0."""

        @contextlib.contextmanager
        def capture_signals(self):  # type: ignore[override]
            yield

    server = Server(config)

    def stop(signum: int, frame: object) -> None:
        if server.should_exit:  # the second signal: now, without unwinding the requests
            # (uvicorn's forced exit cancels them into HTTP 500s, each with a traceback)
            import sys

            print(f"deepres serve: second {signal.Signals(signum).name}: exiting now; the "
                  "requests in flight are dropped", file=sys.stderr, flush=True)
            os._exit(128 + signum)
        server.should_exit = True

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop)
    server.run(sockets=sockets)
