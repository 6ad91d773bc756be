"""GET /v1/stats: counts by signal, label, status and month (the transparency report)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from hashdb.api import bodies
from hashdb.api.auth import principal
from hashdb.api.runtime import get_service

bp = Blueprint("stats", __name__)


@bp.get("/stats")
def stats() -> dict[str, Any]:
    bodies.query_args(set())
    return dict(get_service().stats(principal()))
