"""The service's HTTP API as an OpenAPI 3.0 document, served at ``GET /openapi.json``: what a
client generator, a gateway or a schema-driven fuzzer (Schemathesis) reads. Written beside
the routes (serve/asgi.py, serve/v2.py); a test checks that every route is in it."""

from __future__ import annotations

from typing import Any

V1_ERROR = {"type": "object", "required": ["error"], "properties": {"error": {
    "type": "object", "required": ["kind", "message"],
    "properties": {"kind": {"type": "string"}, "message": {"type": "string"}}}}}
V2_ERROR = {"type": "object", "required": ["error"],
            "properties": {"error": {"type": "string"}}}
PREDICTIONS = {"type": "object", "properties": {"results": {"type": "array", "items": {
    "type": "object", "properties": {"file": {"type": "string"}, "predictions": {
        "type": "array", "items": {"type": "object", "properties": {
            "class": {"type": "string"}, "probability": {"type": "number"}}}},
        "error": V1_ERROR["properties"]["error"]}}}}}
TENSOR = {"type": "object", "required": ["name", "datatype", "shape"], "properties": {
    "name": {"type": "string"}, "datatype": {"type": "string", "enum": ["BYTES", "FP32"]},
    "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
    "parameters": {"type": "object"}, "data": {"type": "array"}}}
INFER_REQUEST = {"type": "object", "required": ["inputs"], "properties": {
    "id": {"type": "string"}, "inputs": {"type": "array", "items": TENSOR, "minItems": 1,
                                         "maxItems": 1},
    "outputs": {"type": "array", "items": {"type": "object", "properties": {
        "name": {"type": "string"}, "parameters": {"type": "object"}}}}}}
IMAGE_BODIES = {
    "image/png": {"schema": {"type": "string", "format": "binary"}},
    "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
    "multipart/form-data": {"schema": {"type": "object", "properties": {
        "file": {"type": "array", "items": {"type": "string", "format": "binary"}}}}},
    "application/json": {"schema": {"type": "object", "required": ["images"], "properties": {
        "images": {"type": "array", "items": {"oneOf": [
            {"type": "string", "format": "byte"},
            {"type": "object", "properties": {"name": {"type": "string"},
                                              "b64": {"type": "string", "format": "byte"}}}]}}}}},
}


def _json(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": schema or {"type": "object"}}}}


def _errors(codes: tuple[int, ...], schema: dict[str, Any]) -> dict[str, Any]:
    return {str(c): _json("an error, said in one line", schema) for c in codes}


def document(model: str) -> dict[str, Any]:
    """The API of a server holding ``model`` (its v2 name)."""
    name = {"name": "name", "in": "path", "required": True, "schema": {"type": "string",
                                                                        "example": model}}
    version = {"name": "version", "in": "path", "required": True,
               "schema": {"type": "string", "example": "1"}}
    paths = {**_service_paths(), **_model_paths("/v2/models/{name}", [name]),
             **_model_paths("/v2/models/{name}/versions/{version}", [name, version])}
    return {"openapi": "3.0.3",
            "info": {"title": "deepres serve", "version": "1",
                     "description": "A ResNet classifier over HTTP: /v1 and the Open Inference "
                                    "Protocol (KServe v2) for one model."},
            "paths": paths}


def _service_paths() -> dict[str, Any]:
    """/v1, the probes, the page and the v2 routes that name no model."""
    return {
        "/v1/predict": {"post": {
            "summary": "Classify the images of the body (one image, a multipart form, or JSON "
                       "with base64 images)",
            "parameters": [{"name": "top_k", "in": "query", "schema": {
                "type": "integer", "minimum": 1, "maximum": 20, "default": 5}}],
            "requestBody": {"required": True, "content": IMAGE_BODIES},
            "responses": {"200": _json("the top classes of each image", PREDICTIONS),
                          "400": _json("no image could be read, or a bad request",
                                       {"oneOf": [V1_ERROR, PREDICTIONS]}),
                          **_errors((408, 413, 503, 504), V1_ERROR)}}},
        "/v1/model": {"get": {"summary": "The model, classes, input specification, engine",
                              "responses": {"200": _json("the model")}}},
        "/healthz": {"get": {"summary": "Alive", "responses": {"200": _json("alive")}}},
        "/readyz": {"get": {"summary": "Ready (after a warm-up inference)", "responses": {
            "200": _json("ready"), "503": _json("not yet")}}},
        "/metrics": {"get": {"summary": "Prometheus text", "responses": {"200": {
            "description": "counters and histograms",
            "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
        "/": {"get": {"summary": "A page to drop an image on", "responses": {"200": {
            "description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}}}}},
        "/openapi.json": {"get": {"summary": "This document",
                                  "responses": {"200": _json("OpenAPI 3.0")}}},
        "/v2": {"get": {"summary": "Server metadata (Open Inference Protocol)",
                        "responses": {"200": _json("name, version, extensions")}}},
        "/v2/health/live": {"get": {"summary": "Live", "responses": {"200": _json("live")}}},
        "/v2/health/ready": {"get": {"summary": "Ready", "responses": {
            "200": _json("ready"), "503": _json("not yet")}}},
    }


def _model_paths(base: str, params: list[dict[str, Any]]) -> dict[str, Any]:
    """The model's v2 routes under ``base`` (with or without its version)."""
    missing = _errors((404,), V2_ERROR)
    return {
        base: {"get": {"summary": "Model metadata", "parameters": params,
                       "responses": {"200": _json("inputs, outputs, classes"), **missing}}},
        f"{base}/ready": {"get": {"summary": "Model ready", "parameters": params,
                                  "responses": {"200": _json("ready"),
                                                "503": _json("not yet"), **missing}}},
        f"{base}/input_mean": {"get": {
            "summary": "The input specification's mean (per pixel or per channel)",
            "parameters": params, "responses": {"200": _json("the mean array"), **missing}}},
        f"{base}/infer": {"post": {
            "summary": "Inference: one BYTES tensor of encoded images, or FP32 pixels",
            "parameters": params + [{"name": "Inference-Header-Content-Length", "in": "header",
                                     "schema": {"type": "integer", "minimum": 1}}],
            "requestBody": {"required": True, "content": {
                "application/json": {"schema": INFER_REQUEST},
                "application/octet-stream": {"schema": {"type": "string",
                                                        "format": "binary"}}}},
            "responses": {"200": _json("probabilities (and errors per image)"),
                          **_errors((400, 404, 408, 413, 503, 504), V2_ERROR)}}},
    }
