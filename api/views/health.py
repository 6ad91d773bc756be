"""Unauthenticated operations endpoints: liveness, readiness, metrics and the OpenAPI document."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app

from api import readiness, spec
from api.errors import error_response
from api.runtime import runtime

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
    rendered: Response = current_app.extensions["hashdb_metrics"].render(runtime().service())
    return rendered


@bp.get("/openapi.json")
def openapi() -> dict[str, Any]:
    return spec.document(int(current_app.config["MAX_BATCH"]))
