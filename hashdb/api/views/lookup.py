"""POST /v1/lookup (a batch of hashes or videos) and GET /v1/lookup (one hash)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app

from hashdb.api import bodies
from hashdb.api.auth import principal
from hashdb.api.runtime import get_service, runtime
from hashdb.api.views import max_batch
from hashdb.io import output

bp = Blueprint("lookup", __name__)


@bp.post("/lookup")
def lookup_batch() -> dict[str, Any]:
    queries, thresholds = bodies.lookup_request(bodies.json_body(), max_batch())
    runtime().require_ready()
    results = get_service().lookup(queries, principal(), thresholds)
    current_app.extensions["hashdb_metrics"].count_lookups(queries, results)
    return {"results": [output.lookup_json(r) for r in results]}


@bp.get("/lookup")
def lookup_one() -> dict[str, Any]:
    query = bodies.lookup_query()
    runtime().require_ready()
    results = get_service().lookup([query], principal())
    current_app.extensions["hashdb_metrics"].count_lookups([query], results)
    return output.lookup_json(results[0])

