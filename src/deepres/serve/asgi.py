"""The ASGI application: the service's own routes (serve/app.py) and the Open Inference
Protocol's (serve/v2.py), for uvicorn to run (``deepres.serve.asgi:create_app``)."""

from __future__ import annotations

import json
import os

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .app import CONFIG_ENV, Service
from .config import ServeConfig
from .openapi import document
from .v2 import OpenInference
from .v2 import routes as v2_routes


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    """Every error as JSON (a Triton client parses the body of each answer): ``{"error":
    message}`` under /v2, ``{"error": {"kind", "message"}}`` elsewhere, as the endpoints do."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    message = (f"{exc.detail}: {request.method} {request.url.path}"
               if isinstance(exc, HTTPException) else "internal error (logged)")
    if request.url.path.startswith("/v2"):
        return JSONResponse({"error": message}, status_code=status)
    kind = {404: "not_found", 405: "method_not_allowed"}.get(status, "error")
    return JSONResponse({"error": {"kind": kind, "message": message}}, status_code=status)


def create_app(cfg: ServeConfig | None = None) -> Starlette:
    """The ASGI app for ``cfg`` (or the JSON config in $DEEPRES_SERVE_CONFIG: worker
    processes)."""
    s = Service(cfg or ServeConfig(**json.loads(os.environ[CONFIG_ENV])))
    api = document(OpenInference(s).name)

    async def openapi(request: Request) -> JSONResponse:
        return JSONResponse(api)

    return Starlette(routes=[
        Route("/openapi.json", openapi), Route("/", s.page),
        Route("/v1/predict", s.predict, methods=["POST"]),
        Route("/v1/model", s.model), Route("/healthz", s.healthz), Route("/readyz", s.readyz),
        Route("/metrics", s.metrics_page), *v2_routes(s)], lifespan=s.lifespan,
        exception_handlers={HTTPException: _http_error, Exception: _http_error})
