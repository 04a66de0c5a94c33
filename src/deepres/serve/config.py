"""The service's options, each declared once: the field gives the flag, its default, its
check and its help (as training's config does, runtime/options.py). Without torch, so that
``deepres serve --help`` stays fast."""

from __future__ import annotations

from dataclasses import dataclass

from ..runtime.options import POSITIVE_INT, RUNNING_PRECISION, number, option
from ..runtime.options import device as device_name

SECONDS = number(float, 0.1, 3600.0)


@dataclass(frozen=True)
class ServeConfig:
    weights: str = option(help="a weights file: deepres .safetensors, an ONNX or int8 file "
                               "from export, deepres:NAME (deepres's own, see `deepres "
                               "models`), or a foreign one with --model")
    # Foreign weights (--model, --classes), --precision and --engine: the flags shared with
    # eval and predict (cli.py); a plain field is filled from the flag of its name.
    model: str | None = None
    classes: str | None = None
    precision: str = RUNNING_PRECISION
    engine: str = "auto"  # what runs the model (loaded/engines.py)
    host: str = option("127.0.0.1", help="address to bind (default 127.0.0.1: this machine "
                                         "only)")
    port: int = option(8000, parse=number(int, 0, 65535), help="port to bind (8000)")
    workers: int = option(1, parse=POSITIVE_INT, help="server processes, each with its own "
                                                      "model (more cores)")
    device: str = option("cpu", parse=device_name, help="where the model runs: cpu (default), "
                                                   "cuda or cuda:N")
    max_batch: int = option(32, parse=POSITIVE_INT,
                            help="images run together at most (dynamic batching)")
    max_wait_ms: float = option(5.0, parse=number(float, 0.0, 10_000.0),
                                help="how long a batch waits for more images after its first")
    max_queue: int = option(256, parse=POSITIVE_INT, help="images waiting at most; beyond, "
                                                          "requests get 503 with Retry-After")
    max_bytes: int = option(10_000_000, parse=POSITIVE_INT,
                            help="largest request body; larger ones get 413")
    # Pixels, not bytes, cost memory and time: a 86 KB PNG can hold 9400x9400 pixels. Checked
    # from each image's header before anything is decoded; an image counts at the larger of
    # its own size and its size after the test resize (an 100,000x1 strip resized to a shorter
    # side of 32 would be 102 million pixels).
    max_pixels: int = option(25_000_000, parse=POSITIVE_INT,
                             help="largest image in pixels, decoded and after the test resize, "
                                  "read from its header before decoding; larger ones get 413 "
                                  "(25,000,000)")
    max_request_pixels: int = option(100_000_000, parse=POSITIVE_INT,
                                     help="pixels of all a request's images together; more "
                                          "get 413 (100,000,000)")
    timeout_s: float = option(30.0, parse=SECONDS, flag="timeout",
                              help="seconds a request may wait for its answer (then 504), and "
                                   "for its body to arrive (then 408)")
    max_top_k: int = option(20, parse=POSITIVE_INT, help="largest top_k a request may ask (20)")
    # Slow and idle clients: a connection that has not sent a whole request's headers within
    # header_timeout_s is closed, one idle after a response within keep_alive_s, a body not
    # received within timeout_s is 408; past max_connections open at once (per process) a new
    # connection is closed at once, so idle ones cannot use up the process's file descriptors.
    max_connections: int = option(1000, parse=POSITIVE_INT, help="open connections per "
                                  "process; beyond, a new one is closed at once")
    header_timeout_s: float = option(10.0, parse=SECONDS, flag="header_timeout",
                                     help="seconds a new connection has to send its request "
                                          "headers (10)")
    keep_alive_s: float = option(5.0, parse=SECONDS, flag="keep_alive",
                                 help="seconds an idle connection stays open after a response "
                                      "(5)")
