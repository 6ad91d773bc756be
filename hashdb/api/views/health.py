"""Unauthenticated operations endpoints: liveness, readiness, metrics and the OpenAPI document."""

from __future__ import annotations

import hmac
from typing import Any

from flask import Blueprint, Response, current_app, request

from hashdb.api import readiness, spec
from hashdb.api.errors import error_response
from hashdb.api.runtime import runtime

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> dict[str, Any]:
    return {"status": "ok"}


@bp.get("/readyz")
def readyz() -> dict[str, Any] | Response:
    rt = runtime()
    rt.service()
    if rt.ready:
        counted = readiness.workers_ready()
        if counted is None or counted[0] >= counted[1]:
            return {"status": "ready"}
        return error_response(503, "index_loading", f"{counted[0]} of {counted[1]} workers have loaded the index",
                              {"Retry-After": "1"})
    if rt.error is not None:
        return error_response(503, "index_failed", f"the index could not be loaded: {rt.error}")
    return error_response(503, "index_loading", "the index is still loading", {"Retry-After": "1"})


@bp.get("/metrics")
def metrics() -> Response:
    token = current_app.config.get("METRICS_TOKEN")
    if token:
        sent = request.headers.get("Authorization", "")
        if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
            return error_response(401, "unauthorized", "/metrics needs the metrics token (HASHDB_METRICS_TOKEN) "
                                  "as 'Authorization: Bearer TOKEN'", {"WWW-Authenticate": 'Bearer realm="metrics"'})
    rendered: Response = current_app.extensions["hashdb_metrics"].render(runtime().service())
    return rendered


@bp.get("/openapi.json")
def openapi() -> dict[str, Any]:
    return spec.document(int(current_app.config["MAX_BATCH"]))
