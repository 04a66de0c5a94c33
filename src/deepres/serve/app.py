"""The service: Starlette on uvicorn. Starlette because it is a small, well-kept ASGI toolkit
(the base FastAPI is built on) with nothing we do not use: routes, requests, responses and a
lifespan; uvicorn because it is the standard ASGI server, handles SIGTERM gracefully (stop
accepting, finish in-flight requests) and runs several worker processes.

Endpoints: POST /v1/predict, GET /v1/model, /healthz, /readyz, /metrics, and a page at /.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import math
import time
from collections.abc import AsyncIterator
from dataclasses import asdict

import torch
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

from ..data.images import BadImageError, decode_image_bytes, image_size
from ..loaded import Predictor, load_predictor, probs_single
from ..loaded.engines import NonFiniteOutputError
from ..runtime.terminal import safe
from .batcher import DynamicBatcher, QueueFull
from .budget import PixelBudget
from .config import ServeConfig
from .metrics import Metrics
from .page import PAGE

CONFIG_ENV = "DEEPRES_SERVE_CONFIG"  # how worker processes receive the options
# Several images answered each: the rows read (by index), and why each other one was not.
Each = tuple[dict[int, torch.Tensor], dict[int, dict[str, str]]]


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


def _text(name: str) -> str:
    """A client's name as answers can carry it: a lone surrogate (``"\\ud800"``, valid in
    JSON, not in UTF-8) is written as its escape rather than failing the response."""
    return name.encode("utf-8", "backslashreplace").decode("utf-8")


def _json_uploads(body: bytes) -> list[tuple[str, bytes]]:
    """``{"images": [IMAGE, ...]}``, each IMAGE a base64 string or ``{"name": ..., "b64":
    ...}``; a ValueError says what is wrong."""
    import base64
    import binascii

    doc = json.loads(body)
    images = doc.get("images") if isinstance(doc, dict) else None
    if not isinstance(images, list):
        raise ValueError('JSON requests are {"images": [base64 string, or {"name", "b64"}, '
                         '...]}')
    out = []
    for i, item in enumerate(images):
        name, data = (f"image[{i}]", item) if isinstance(item, str) else (
            (_text(str(item.get("name") or f"image[{i}]")), item.get("b64"))
            if isinstance(item, dict) else (f"image[{i}]", None))
        if not isinstance(data, str):
            raise ValueError(f"images[{i}] must be a base64 string or {{\"name\", \"b64\"}}")
        try:
            out.append((name, base64.b64decode(data, validate=True)))
        except binascii.Error as exc:
            raise ValueError(f"images[{i}] is not valid base64: {exc}") from exc
    return out


async def _uploads(request: Request, body: bytes) -> list[tuple[str, bytes]]:
    """The images of a request: the raw body (one image), each file of a multipart form,
    parsed in memory (the body is already bounded by --max-bytes; Starlette's parser would
    spool parts over 1 MB to a temporary file), or JSON with base64 images."""
    kind = request.headers.get("content-type", "")
    if kind.startswith("application/json"):
        return _json_uploads(body)
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
        self.batcher = DynamicBatcher(self._infer, max_batch=cfg.max_batch,
                                      max_wait_ms=cfg.max_wait_ms, max_queue=cfg.max_queue)
        # loaded in the inference thread: the only thread that runs torch's parallel work
        self.predictor: Predictor = self.batcher.call(lambda: load_predictor(
            cfg.weights, cfg.device, cfg.precision, cfg.model, cfg.classes, cfg.engine))
        # pixels decoding at once across requests: one request's limit (serve/budget.py)
        self.decoding = PixelBudget(cfg.max_request_pixels)
        from ..models.published import local_path  # deepres:NAME and Hub names: their file
        from ..runtime.files import file_sha256

        self.digest = file_sha256(local_path(cfg.weights))  # read once: the card's too

    def _infer(self, batch: torch.Tensor) -> torch.Tensor:
        return probs_single(self.predictor, batch.to(self.predictor.device)).cpu()

    def _image_cost(self, data: bytes) -> tuple[int, int, int] | None:
        """An image's width, height and the pixels it costs decoded and resized (the larger),
        read from its header; None for what is not an image (decoding then says so)."""
        size = image_size(io.BytesIO(data))
        if size is None:
            return None
        w, h = size
        side = self.predictor.spec.test_resize
        return w, h, max(w * h, math.ceil(w * h * (side / max(1, min(w, h))) ** 2))

    def _cost(self, uploads: list[tuple[str, bytes]]) -> int:
        return sum(c[2] for _, data in uploads if (c := self._image_cost(data)) is not None)

    def _over_budget(self, uploads: list[tuple[str, bytes]]) -> str | None:
        """Why the images of a request would cost too many pixels, read from their headers
        before any is decoded; None when they fit."""
        cfg, side, total = self.cfg, self.predictor.spec.test_resize, 0
        for name, data in uploads:
            cost = self._image_cost(data)
            if cost is None:
                continue
            w, h, n = cost
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

    async def _views(self, uploads: list[tuple[str, bytes]], each: bool = False
                     ) -> list[torch.Tensor | str]:
        """Decoded in memory in a worker thread (Pillow, no torch work), then made the test
        view in the inference thread: the only thread that runs torch's parallel work
        (batcher.py says why). ``each``: an image that cannot be read is its error message in
        its place, instead of the BadImageError."""
        def decode() -> list[torch.Tensor | str]:
            out: list[torch.Tensor | str] = []
            for name, data in uploads:
                try:
                    out.append(torch.from_numpy(decode_image_bytes(data, name)).permute(2, 0, 1))
                except BadImageError as exc:
                    if not each:
                        raise
                    out.append(str(exc))
            return out

        decoded = await asyncio.to_thread(decode)
        view = self.predictor.spec.test_view
        return await asyncio.get_running_loop().run_in_executor(
            self.batcher.pool, lambda: [x if isinstance(x, str) else view(x) for x in decoded])

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self.batcher.start()
        size = self.predictor.spec.input_size
        await self.batcher.submit([torch.zeros(3, size, size, dtype=torch.uint8)])  # warm-up
        self.ready = True

        async def publish() -> None:  # --workers: this process's counts for /metrics
            while True:
                self.metrics.publish(self.batcher, every=1.0)
                await asyncio.sleep(1.0)

        task = asyncio.create_task(publish())
        yield
        task.cancel()
        self.ready = False
        await self.batcher.stop()

    async def predict(self, request: Request) -> Response:
        t0 = time.perf_counter()
        try:
            return await self._predict(request)
        finally:
            self.metrics.observe(time.perf_counter() - t0)

    async def _predict(self, request: Request) -> Response:
        cfg, m = self.cfg, self.metrics
        m.count(m.requests, "predict")
        top_k = request.query_params.get("top_k", "5")
        # ASCII digits only: str.isdigit also accepts "²" and "①", which int() refuses
        if not (top_k.isascii() and top_k.isdigit()) or not 1 <= int(top_k) <= cfg.max_top_k:
            return _error(400, "bad_request", f"top_k must be an integer from 1 to "
                          f"{cfg.max_top_k}, not {top_k!r}", m)
        body = await self.read_body(request)
        if isinstance(body, Response):
            return body
        try:
            uploads = await _uploads(request, body)
        except Exception as exc:  # a malformed form is the client's error
            return _error(400, "bad_request", f"could not read the request: {exc}", m)
        if len(uploads) > 1:  # several files: one bad file is one error entry
            return await self.predict_each(uploads, int(top_k))
        rows = await self.classify(uploads)
        if isinstance(rows, Response):
            return rows
        return JSONResponse({"results": [
            {"file": name, **self.predictor.top_classes(row, int(top_k))}
            for (name, _), row in zip(uploads, rows, strict=True)]})

    async def read_body(self, request: Request) -> bytes | Response:
        """The request's body, or the error that says why not: over ``--max-bytes`` (413), not
        all received within ``--timeout`` (408: a client that sends headers and stalls cannot
        hold its connection), or the client gone before sending it all. Each closes the
        connection (the rest of the body is never read), so it does not count against
        ``--max-connections`` until the keep-alive runs out."""
        cfg, m = self.cfg, self.metrics
        try:
            body = await asyncio.wait_for(_body(request, cfg.max_bytes), cfg.timeout_s)
        except TimeoutError:
            return _error(408, "slow_client", f"the request body was not received within "
                          f"{cfg.timeout_s:g} s (--timeout)", m, Connection="close")
        except ClientDisconnect:  # nobody to answer; counted, not a traceback in the log
            return _error(400, "client_disconnected", "the client left before sending its "
                          "whole request", m, Connection="close")
        if body is None:
            return _error(413, "too_large", f"the request is over {cfg.max_bytes} bytes "
                          "(--max-bytes)", m, Connection="close")
        return body

    def _too_many(self, uploads: list[tuple[str, bytes]]) -> Response | None:
        if len(uploads) > self.cfg.max_queue:  # could never be queued: retrying cannot help
            return _error(413, "too_many_images", f"{len(uploads)} images in one request, over "
                          f"the {self.cfg.max_queue} the queue holds (--max-queue); send them "
                          "in smaller requests", self.metrics)
        return None

    async def _submit(self, images: list[torch.Tensor]) -> list[torch.Tensor] | Response:
        m, timeout = self.metrics, self.cfg.timeout_s
        try:
            return await asyncio.wait_for(self.batcher.submit(images), timeout)
        except QueueFull as exc:
            return _error(503, "overloaded", f"{exc}; retry shortly", m, **{"Retry-After": "1"})
        except TimeoutError:
            return _error(504, "timeout", f"no answer within {timeout:g} s", m)
        except NonFiniteOutputError as exc:  # the model's fault, said as such
            return _error(500, "model_error", str(exc), m)

    async def classify(self, uploads: list[tuple[str, bytes]]
                       ) -> list[torch.Tensor] | Response:
        """The class probabilities of encoded images (name, bytes), through the pixel budget,
        the decoding and the batcher; or the error response that says why not. Every
        protocol (``/v1/predict``, the Open Inference Protocol's ``infer``) goes through it."""
        if not uploads:
            return _error(400, "bad_request", "no image in the request", self.metrics)
        refused = self._too_many(uploads)
        if refused is not None:
            return refused
        over = self._over_budget(uploads)
        if over is not None:
            return _error(413, "too_many_pixels", over, self.metrics)
        try:  # waiting for the budget and decoding count against --timeout too
            with self.batcher.announce(len(uploads)):
                images = await asyncio.wait_for(self.decoding.run(
                    self._cost(uploads), lambda: self._views(uploads)), self.cfg.timeout_s)
        except BadImageError as exc:
            return _error(400, "bad_image", str(exc), self.metrics)
        except TimeoutError:
            return _error(504, "timeout", f"the images were not decoded within "
                          f"{self.cfg.timeout_s:g} s (--timeout)", self.metrics)
        return await self._submit([x for x in images if isinstance(x, torch.Tensor)])

    async def predict_each(self, uploads: list[tuple[str, bytes]], top_k: int) -> Response:
        """Several files: one that cannot be read (not an image, over ``--max-pixels``) is an
        error entry in ``results`` and the rest are answered (200; 400 when none could be).
        Limits on the whole request (image count, total pixels, queue, timeout) answer for it."""
        got = await self.classify_each(uploads)
        if isinstance(got, Response):
            return got
        rows, errors = got
        return JSONResponse({"results": [
            {"file": name, **self.predictor.top_classes(rows[i], top_k)} if i in rows
            else {"file": name, "error": errors[i]} for i, (name, _) in enumerate(uploads)]},
            status_code=200 if rows else 400)

    async def classify_each(self, uploads: list[tuple[str, bytes]]) -> Each | Response:
        """The probabilities of each image that could be read, by its index, and why each other
        one could not (``{"kind", "message"}``, counted); or the response for a limit of the
        whole request. Both protocols answer several images per image through it."""
        m = self.metrics
        refused = self._too_many(uploads)
        if refused is not None:
            return refused
        errors: dict[int, dict[str, str]] = {}
        for i, item in enumerate(uploads):
            over = self._over_budget([item])
            if over is not None:
                errors[i] = {"kind": "too_many_pixels", "message": over}
        rest = [i for i in range(len(uploads)) if i not in errors]
        over = self._over_budget([uploads[i] for i in rest])
        if over is not None:
            return _error(413, "too_many_pixels", over, m)
        try:
            kept = [uploads[i] for i in rest]
            with self.batcher.announce(len(kept)):
                views = await asyncio.wait_for(self.decoding.run(
                    self._cost(kept), lambda: self._views(kept, each=True)), self.cfg.timeout_s)
        except TimeoutError:
            return _error(504, "timeout", f"the images were not decoded within "
                          f"{self.cfg.timeout_s:g} s (--timeout)", m)
        for i, v in zip(rest, views, strict=True):
            if isinstance(v, str):
                errors[i] = {"kind": "bad_image", "message": v}
        good = [(i, v) for i, v in zip(rest, views, strict=True) if not isinstance(v, str)]
        rows: dict[int, torch.Tensor] = {}
        if good:
            got = await self._submit([v for _, v in good])
            if isinstance(got, Response):
                return got
            rows = {i: row for (i, _), row in zip(good, got, strict=True)}
        for e in errors.values():
            m.count(m.errors, e["kind"])
        return rows, errors

    async def classify_pixels(self, batch: torch.Tensor) -> list[torch.Tensor] | Response:
        """The probabilities of a preprocessed batch (float ``N x 3 x S x S`` pixels in [0, 1]
        at the test size, as an exported ONNX file takes them), held as 8-bit images as
        :meth:`Predictor.predict` holds float tensors."""
        size = self.predictor.spec.input_size
        if batch.dim() != 4 or tuple(batch.shape[1:]) != (3, size, size):
            return _error(400, "bad_request", f"an FP32 input is N x 3 x {size} x {size} "
                          f"pixels (the model's input size), not {list(batch.shape)}",
                          self.metrics)
        if not bool(torch.isfinite(batch).all()) or float(batch.min()) < 0 or float(
                batch.max()) > 1:
            return _error(400, "bad_request", "FP32 pixels are finite numbers in [0, 1] "
                          "(RGB; mean subtraction is the server's)", self.metrics)
        if len(batch) > self.cfg.max_queue:
            return _error(413, "too_many_images", f"{len(batch)} images in one request, over "
                          f"the {self.cfg.max_queue} the queue holds (--max-queue)", self.metrics)
        images = batch.mul(255.0).round_().to(torch.uint8)
        return await self._submit(list(images))

    async def model(self, request: Request) -> Response:
        self.metrics.count(self.metrics.requests, "model")
        p = self.predictor
        return JSONResponse({
            "model": p.card.name if p.card is not None else None, "classes": p.classes,
            "input_spec": p.spec.as_json(), "precision": p.precision, "engine": p.engine,
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
