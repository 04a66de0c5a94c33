"""The service's processes: what is checked before anything starts (the weights, the port),
the listening socket, uvicorn with the limits it lacks and deepres's signal handling, and the
supervisor of ``--workers N``. The endpoints themselves are in app.py."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import threading
from dataclasses import asdict
from typing import Any

import torch

from ..loaded import load_predictor, probs_single
from ..loaded.engines import NonFiniteOutputError
from .app import CONFIG_ENV, ServeConfig


def check_weights(cfg: ServeConfig) -> str:
    """Load the weights once before any server starts, so that a bad file (or an engine that
    cannot run it, or a model that answers NaN) is one error (exit 2) however many worker
    processes would have loaded it; returns the line that says which engine runs it, and why.

    All in a thread that then ends: the OpenMP team a thread's first parallel work makes lives
    as long as the thread, and with a second team (the server's inference thread) on 2 cores
    libgomp stops spinning between parallel regions (a ResNet-20 image took 11 ms, not 3)."""
    result: list[str] = []
    failed: list[BaseException] = []

    def check() -> None:
        try:
            result.append(_check(cfg))
        except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
            failed.append(exc)

    thread = threading.Thread(target=check, name="deepres-check")
    thread.start()
    thread.join()
    if failed:
        raise failed[0]
    return result[0]


def _check(cfg: ServeConfig) -> str:
    if cfg.device != "cpu":  # the parent stays off the accelerator; the workers use it
        p = load_predictor(cfg.weights, "cpu", "fp32", cfg.model, cfg.classes)
        line = f"engine: torch on {cfg.device}"
    else:
        p = load_predictor(cfg.weights, cfg.device, cfg.precision, cfg.model, cfg.classes,
                           cfg.engine)
        line = p.describe_engine()
    size = p.spec.input_size  # one gray image: a model that answers NaN is refused here
    try:
        probs_single(p, torch.full((1, 3, size, size), 128, dtype=torch.uint8))
    except NonFiniteOutputError as exc:
        raise NonFiniteOutputError(f"{cfg.weights}: {exc}") from None
    return line


def bind(host: str, port: int) -> Any:
    """The listening socket, bound before the banner: a port in use is one clear error."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted sockets only when the socket
    # says it is TCP, and without it a kept-alive connection waits ~40 ms per response
    # (Nagle against the client's delayed ACK).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
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


# Each stops the service gracefully (in-flight requests finish, exit 0). SIGHUP too: the
# terminal that started it has gone, and its default action would kill the supervisor alone,
# orphaning the workers (still serving the port) and leaving their metrics folder behind.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)

# A worker that dies is replaced; more deaths than this in a minute (per worker) means
# something is wrong with every start, and the supervisor gives up (exit 1).
MAX_DEATHS_PER_MINUTE = 3


def serve(cfg: ServeConfig, sock: Any, workers: int = 1) -> int:
    """Run the service on the bound ``sock`` until SIGTERM, SIGINT or SIGHUP: the first stops
    accepting and lets the requests in flight finish, then returns 0; a second exits at once. With
    ``workers`` > 1 that many server processes share the socket under a supervisor that
    forwards the signals, logs a worker's death and starts a replacement, and gives up (1)
    when workers keep dying."""
    os.environ[CONFIG_ENV] = json.dumps(asdict(cfg))
    _raise_file_limit()  # inherited by the worker processes
    host, port = sock.getsockname()[:2]
    if workers == 1:
        _run(_config(host, port), [sock])
        return 0
    import shutil
    import tempfile

    from .metrics import METRICS_DIR_ENV

    # the workers' counts, summed by whichever answers /metrics (serve/metrics.py)
    os.environ[METRICS_DIR_ENV] = tempfile.mkdtemp(prefix="deepres-metrics-")
    try:
        return _supervise(host, port, sock, workers)
    finally:
        shutil.rmtree(os.environ.pop(METRICS_DIR_ENV), ignore_errors=True)


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
        for proc in procs:  # SIGHUP reaches the workers as SIGTERM (they ignore SIGHUP)
            if proc.pid is not None and proc.is_alive():
                os.kill(proc.pid, signal.SIGTERM if signum == signal.SIGHUP else signum)

    for sig in STOP_SIGNALS:
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
    return uvicorn.Config("deepres.serve.asgi:create_app", factory=True, host=host, port=port,
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
    # A hangup reaches the whole process group; the supervisor answers it for everyone
    # (SIGTERM to each worker), so a worker does not also stop, or die, by it.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    _run(_config(host, port), [sock], signals=(signal.SIGTERM, signal.SIGINT))


def _run(config: Any, sockets: list[Any] | None = None,
         signals: tuple[signal.Signals, ...] | None = None) -> None:
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

    for sig in signals or STOP_SIGNALS:
        signal.signal(sig, stop)
    server.run(sockets=sockets)
    for sig in signals or STOP_SIGNALS:  # stopped gracefully: one more signal changes nothing
        signal.signal(sig, signal.SIG_IGN)
