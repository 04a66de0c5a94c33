"""The Open Inference Protocol (KServe's "v2" protocol, which Triton, KServe and Seldon speak),
beside ``/v1/predict``, for the one model the server holds.

- ``GET /v2/health/live``, ``/v2/health/ready``; ``GET /v2/models/{name}`` (metadata) and
  ``/v2/models/{name}/ready``; ``POST /v2/models/{name}/infer``.
- The input is one BYTES tensor of encoded images (PNG, JPEG, ...), any name, shape ``[N]``:
  in JSON, each element a base64 string (as KServe's image classifiers take them); or in the
  protocol's binary extension (``Inference-Header-Content-Length``; what ``tritonclient`` sends
  by default), each element a 4-byte little-endian length and the bytes. Or one FP32 tensor
  ``[N, 3, S, S]`` of RGB pixels in [0, 1] at the test size (an exported ONNX file's input).
- The output is ``probabilities``, FP32, ``[N, classes]``, in JSON, in the class order that
  ``GET /v2/models/{name}`` lists under ``parameters.classes``; with the classification
  extension (``classification: K``) the top K as ``"probability:index:label"``. Several images
  of which some cannot be read: their rows are zeros and an ``errors`` BYTES output says why.

Images go through the same pixel budget, decoding, batcher and limits as ``/v1/predict``.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import struct
import time
from typing import Any

import torch
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..inputspec import MEAN_KEY
from .app import Service

OUTPUT = "probabilities"
VERSION = "1"  # the one version of the one model a server holds
# Beside the probabilities when some images of a batch could not be read: why, per image ("" for
# those answered; their probability rows are zeros).
ERRORS = "errors"


def _fail(status: int, message: str, service: Service, kind: str = "bad_request"
          ) -> JSONResponse:
    service.metrics.count(service.metrics.errors, kind)
    return JSONResponse({"error": message}, status_code=status)


def _v2_error(v1: Response) -> JSONResponse:
    """A v1 error response in the protocol's form, ``{"error": message}`` (already counted)."""
    detail = json.loads(bytes(v1.body))["error"]
    return JSONResponse({"error": detail["message"]}, status_code=v1.status_code,
                        headers={k: v for k, v in v1.headers.items()
                                 if k.lower() in ("retry-after", "connection")} or None)


def _elements(raw: bytes) -> list[bytes]:
    """The elements of a BYTES tensor in the binary extension: length-prefixed byte strings."""
    out, at = [], 0
    while at < len(raw):
        if at + 4 > len(raw):
            raise ValueError("a BYTES element's 4-byte length is cut off")
        (n,) = struct.unpack_from("<I", raw, at)
        if at + 4 + n > len(raw):
            raise ValueError(f"a BYTES element says {n} bytes but fewer follow")
        out.append(raw[at + 4:at + 4 + n])
        at += 4 + n
    return out


def parse_infer(body: bytes, header_length: str | None
                ) -> tuple[dict[str, Any], list[bytes] | torch.Tensor]:
    """The request's JSON header and its images: encoded (a BYTES input), or a float pixel
    batch (an FP32 input, shape as sent); ValueError says what is wrong."""
    if header_length is not None and not (header_length.isascii() and header_length.isdigit()):
        raise ValueError(f"Inference-Header-Content-Length must be a byte count, not "
                         f"{_shown(header_length)}")
    cut = len(body) if header_length is None else int(header_length)
    if header_length is not None and not 0 < cut <= len(body):
        raise ValueError(f"Inference-Header-Content-Length {header_length} does not fit the "
                         f"{len(body)}-byte body")
    try:
        header = json.loads(body[:cut])
    except (ValueError, RecursionError) as exc:  # nested 10^5 deep is a RecursionError
        raise ValueError(f"the request is not JSON (or nested too deep): "
                         f"{str(exc)[:200]}") from exc
    inputs = header.get("inputs") if isinstance(header, dict) else None
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise ValueError("the request must have one input: a BYTES tensor of encoded images")
    _check_text(header.get("id"), "id")
    tensor, binary = inputs[0], body[cut:]
    if tensor.get("datatype") not in ("BYTES", "FP32"):
        raise ValueError(f"input {_shown(tensor.get('name'))} must be BYTES (encoded images) "
                         f"or FP32 (pixels), not {_shown(tensor.get('datatype'))}")
    parameters = tensor.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise ValueError(f"the input's parameters must be an object, not {_shown(parameters)}")
    if tensor["datatype"] == "FP32":
        return header, _pixels(tensor, parameters, binary)
    size = parameters.get("binary_data_size")
    if size is not None:
        if not isinstance(size, int) or isinstance(size, bool) or size != len(binary):
            raise ValueError(f"binary_data_size {_shown(size)} does not match the "
                             f"{len(binary)} bytes after the JSON header")
        images = _elements(binary)
    else:
        data = tensor.get("data")
        if not isinstance(data, list) or not all(isinstance(x, str) for x in data):
            raise ValueError("in JSON, the input's data must be a list of base64 strings")
        try:
            images = [base64.b64decode(x, validate=True) for x in data]
        except (binascii.Error, ValueError) as exc:  # non-ASCII text is a ValueError
            raise ValueError(f"an image is not valid base64: {exc}") from exc
    _check_shape(tensor.get("shape"), len(images))
    return header, images


def _pixels(tensor: dict[str, Any], parameters: dict[str, Any], binary: bytes
            ) -> torch.Tensor:
    """An FP32 input: a flat JSON list of numbers, or little-endian float32 bytes in the
    binary extension, shaped by its (checked) shape."""
    shape = tensor.get("shape")
    if not isinstance(shape, list) or len(shape) != 4 or not all(
            isinstance(d, int) and not isinstance(d, bool) and 0 < d <= 1 << 16 for d in shape):
        raise ValueError(f"an FP32 input's shape is [N, 3, H, W], not {_shown(shape)}")
    count = math.prod(shape)
    if "binary_data_size" in parameters:
        if parameters["binary_data_size"] != len(binary) or len(binary) != 4 * count:
            raise ValueError(f"an FP32 input of shape {shape} is {4 * count} bytes, not "
                             f"{_shown(parameters['binary_data_size'])}")
        flat = torch.frombuffer(bytearray(binary), dtype=torch.float32)
    else:
        data = tensor.get("data")
        if not isinstance(data, list) or len(data) != count or not all(
                isinstance(x, int | float) and not isinstance(x, bool) for x in data):
            raise ValueError(f"in JSON, an FP32 input's data is a flat list of {count} numbers "
                             f"(shape {shape})")
        flat = torch.tensor(data, dtype=torch.float32)
    return flat.reshape(shape)


def _shown(value: Any) -> str:
    """A client's value in an error message: short, and encodable (no lone surrogates)."""
    text = repr(value)
    text = text if len(text) <= 80 else text[:77] + "..."
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _check_text(value: Any, what: str) -> None:
    """A string the answer echoes must be valid Unicode text (``"\\ud800"`` is not)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(f"the request's {what} is not valid text: {exc.reason} at "
                             f"position {exc.start}") from exc


def _check_shape(shape: Any, count: int) -> None:
    """The protocol's ``shape``: a list of whole numbers >= 0 whose product is the number of
    elements sent (``[N]``, or ``[N, 1]`` as some clients send a batch of one-element rows)."""
    if not isinstance(shape, list) or not shape or len(shape) > 8 or not all(
            isinstance(d, int) and not isinstance(d, bool) and 0 <= d for d in shape):
        raise ValueError(f"the input's shape must be a list of whole numbers >= 0, like "
                         f"[{count}], not {_shown(shape)}")
    if math.prod(shape) != count:
        raise ValueError(f"the input's shape {_shown(shape)} holds {math.prod(shape)} "
                         f"elements, but {count} image(s) were sent")


class OpenInference:
    """The protocol's handlers for service ``s``; its model answers to its own name."""

    def __init__(self, s: Service) -> None:
        card = s.predictor.card
        self.s, self.name = s, str((card.name if card is not None else None) or "model")

    def _unknown(self, request: Request) -> JSONResponse | None:
        asked = request.path_params["name"]
        version = request.path_params.get("version", VERSION)
        if asked == self.name and version == VERSION:
            return None
        if asked == self.name:
            return _fail(404, f"no version {_shown(version)} of {self.name!r}; it has version "
                         f"{VERSION}", self.s, "not_found")
        return _fail(404, f"no model {_shown(asked)}; this server has {self.name!r}", self.s,
                     "not_found")

    async def server_metadata(self, request: Request) -> Response:
        from .. import __version__

        return JSONResponse({"name": "deepres", "version": __version__,
                             "extensions": ["binary_tensor_data", "classification"]})

    async def live(self, request: Request) -> Response:
        return JSONResponse({"live": True})

    async def ready(self, request: Request) -> Response:
        return JSONResponse({"ready": self.s.ready}, status_code=200 if self.s.ready else 503)

    async def model_ready(self, request: Request) -> Response:
        return self._unknown(request) or JSONResponse(
            {"name": self.name, "ready": self.s.ready},
            status_code=200 if self.s.ready else 503)

    async def metadata(self, request: Request) -> Response:
        p = self.s.predictor
        classes = list(p.classes or [])  # [] when the weights name none: indices then
        return self._unknown(request) or JSONResponse({
            "name": self.name, "versions": [VERSION], "platform": f"deepres-{p.engine}",
            "inputs": [{"name": "image", "datatype": "BYTES", "shape": [-1]}],
            "outputs": [{"name": OUTPUT, "datatype": "FP32", "shape": [-1, len(classes) or -1]}],
            "parameters": {"classes": classes, "input_spec": self._spec_summary(request),
                           "fp32_input": {
                               "shape": [-1, 3, p.spec.input_size, p.spec.input_size],
                               "range": "RGB pixels in [0, 1] at the test view; the server "
                                        "subtracts the mean"}}})

    def _spec_summary(self, request: Request) -> dict[str, object]:
        """The input specification without its per-pixel mean (3 x 32 x 32 floats, 62 KB of
        JSON): the mean's shape and per-channel averages, and where the array is."""
        spec = self.s.predictor.spec.as_json()
        mean = self.s.predictor.spec.mean
        spec[MEAN_KEY] = {"shape": list(mean.shape),
                              "channel_means": [round(float(v), 6) for v in
                                                mean.reshape(3, -1).mean(1).tolist()],
                              "url": f"/v2/models/{self.name}/input_mean"}
        return spec

    async def input_mean(self, request: Request) -> Response:
        return self._unknown(request) or JSONResponse(
            {MEAN_KEY: self.s.predictor.spec.mean.tolist()})

    async def infer(self, request: Request) -> Response:
        t0 = time.perf_counter()
        try:
            return await self._infer(request)
        finally:
            self.s.metrics.observe(time.perf_counter() - t0)

    async def _infer(self, request: Request) -> Response:
        s = self.s
        s.metrics.count(s.metrics.requests, "v2_infer")
        unknown = self._unknown(request)
        if unknown is not None:
            return unknown
        body = await s.read_body(request)  # --max-bytes and --timeout as v1
        if isinstance(body, Response):
            return _v2_error(body)
        try:
            header, images = parse_infer(body, request.headers.get(
                "inference-header-content-length"))
        except ValueError as exc:
            return _fail(400, str(exc), s)
        try:
            top_k = _requested(header)
        except ValueError as exc:
            return _fail(400, str(exc), s)
        errors: list[str] = []
        if isinstance(images, torch.Tensor):  # FP32 pixels: no decoding
            rows = await s.classify_pixels(images)
        elif len(images) > 1:  # one bad image is its own error, as v1 answers it
            got = await s.classify_each([(f"image[{i}]", b) for i, b in enumerate(images)])
            if isinstance(got, Response):
                return _v2_error(got)
            done, failed = got
            if not done:
                return _fail(400, failed[0]["message"], s, "bad_image")
            width = len(next(iter(done.values())))
            rows = [done.get(i, torch.zeros(width)) for i in range(len(images))]
            errors = [failed[i]["message"] if i in failed else "" for i in range(len(images))]
        else:
            rows = await s.classify([(f"image[{i}]", b) for i, b in enumerate(images)])
        if isinstance(rows, Response):  # the same limits and errors as /v1/predict
            return _v2_error(rows)
        if top_k:  # the classification extension: "probability:index:label" per class
            labels = s.predictor.classes or [str(i) for i in range(len(rows[0]))]
            k = min(top_k, len(rows[0]))
            data = [f"{v:.6f}:{i}:{labels[i]}" for row in rows
                    for v, i in zip(*(t.tolist() for t in row.topk(k)), strict=True)]
            output = {"name": OUTPUT, "datatype": "BYTES", "shape": [len(rows), k],
                      "data": data}
        else:
            flat = [round(float(v), 7) for row in rows for v in row.tolist()]
            output = {"name": OUTPUT, "datatype": "FP32",
                      "shape": [len(rows), len(flat) // max(len(rows), 1)], "data": flat}
        extra = [{"name": ERRORS, "datatype": "BYTES", "shape": [len(errors)],
                  "data": errors}] if any(errors) else []
        return JSONResponse({
            "model_name": self.name, "model_version": VERSION,
            **({"id": header["id"]} if isinstance(header.get("id"), str) else {}),
            "outputs": [output, *extra]})


def _requested(header: dict[str, Any]) -> int:
    """The ``outputs`` a request asks for: none, or ``probabilities`` (with the classification
    extension's ``classification: K``, top K as text); the class count it asks, else 0."""
    outputs = header.get("outputs")
    if outputs is None:
        return 0
    if not isinstance(outputs, list) or not all(isinstance(o, dict) for o in outputs):
        raise ValueError("outputs must be a list of {\"name\": ...} objects")
    top_k = 0
    for o in outputs:
        if o.get("name") == ERRORS:
            continue
        if o.get("name") != OUTPUT:
            raise ValueError(f"no output {_shown(o.get('name'))}; this model has {OUTPUT!r}")
        params = o.get("parameters") or {}
        k = params.get("classification", 0) if isinstance(params, dict) else None
        if not isinstance(k, int) or isinstance(k, bool) or k < 0:
            raise ValueError(f"classification must be a whole number of classes, not "
                             f"{_shown(k)}")
        if params.get("binary_data"):
            raise ValueError("binary output data is not offered; ask for JSON output "
                             "(binary_data=False)")
        top_k = max(top_k, k)
    return top_k


def routes(s: Service) -> list[Route]:
    """The protocol's routes for service ``s``, each model route also under
    ``/v2/models/{name}/versions/{version}/...`` (the one version metadata lists)."""
    h = OpenInference(s)
    out = [Route("/v2", h.server_metadata), Route("/v2/health/live", h.live),
           Route("/v2/health/ready", h.ready)]
    for base in ("/v2/models/{name}", "/v2/models/{name}/versions/{version}"):
        out += [Route(base, h.metadata), Route(f"{base}/ready", h.model_ready),
                Route(f"{base}/input_mean", h.input_mean),
                Route(f"{base}/infer", h.infer, methods=["POST"])]
    return out
