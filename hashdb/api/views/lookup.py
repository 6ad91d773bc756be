"""POST /v1/lookup (a batch of hashes or videos) and GET /v1/lookup (one hash). The answers are
built by `one` and `batch`, which hashdb/api/lean.py calls too (the same routes without Flask's
per-request machinery); the Flask views below answer when the lean adapter passes a request on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from flask import Blueprint, current_app, request
from werkzeug.datastructures import MultiDict

from hashdb.api import bodies
from hashdb.api.auth import principal
from hashdb.api.runtime import ServiceRuntime, runtime
from hashdb.api.views import max_batch
from hashdb.io import output
from hashdb.types import Principal

if TYPE_CHECKING:
    from hashdb.api.metrics import Metrics

bp = Blueprint("lookup", __name__)


def one(args: MultiDict[str, str], actor: Principal, rt: ServiceRuntime, metrics: Metrics) -> dict[str, Any]:
    query = bodies.lookup_query(args)
    rt.require_ready()
    results = rt.service().lookup([query], actor)
    metrics.count_lookups([query], results)
    return output.lookup_json(results[0])


def batch(doc: Mapping[str, Any], actor: Principal, rt: ServiceRuntime, metrics: Metrics,
          limit: int) -> dict[str, Any]:
    plain = bodies.pdq_batch(doc, limit)
    if plain is not None:  # the common batch, answered the same without a Query per hash
        pdqs, thresholds = plain
        rt.require_ready()
        results = rt.service().lookup_pdqs(pdqs, actor, thresholds)
        metrics.count_pdq_lookups(results)
    else:
        queries, thresholds = bodies.lookup_request(doc, limit)
        rt.require_ready()
        results = rt.service().lookup(queries, actor, thresholds)
        metrics.count_lookups(queries, results)
    return {"results": [output.lookup_json(r) for r in results]}


@bp.post("/lookup")
def lookup_batch() -> dict[str, Any]:
    return batch(bodies.json_body(), principal(), runtime(), current_app.extensions["hashdb_metrics"], max_batch())


@bp.get("/lookup")
def lookup_one() -> dict[str, Any]:
    return one(request.args, principal(), runtime(), current_app.extensions["hashdb_metrics"])
