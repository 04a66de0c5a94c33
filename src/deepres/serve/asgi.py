"""The ASGI application: the service's own routes (serve/app.py) and the Open Inference
Protocol's (serve/v2.py), for uvicorn to run (``deepres.serve.asgi:create_app``)."""

from __future__ import annotations

import json
import os

from starlette.applications import Starlette
from starlette.routing import Route

from .app import CONFIG_ENV, Service
from .config import ServeConfig
from .v2 import routes as v2_routes


def create_app(cfg: ServeConfig | None = None) -> Starlette:
    """The ASGI app for ``cfg`` (or the JSON config in $DEEPRES_SERVE_CONFIG: worker
    processes)."""
    s = Service(cfg or ServeConfig(**json.loads(os.environ[CONFIG_ENV])))
    return Starlette(routes=[
        Route("/", s.page), Route("/v1/predict", s.predict, methods=["POST"]),
        Route("/v1/model", s.model), Route("/healthz", s.healthz), Route("/readyz", s.readyz),
        Route("/metrics", s.metrics_page), *v2_routes(s)], lifespan=s.lifespan)
