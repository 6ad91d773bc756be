"""GET /v1/export: the ordered change feed, a page at a time, with the cursor for the next; with
`keypoints=true`, image entries carry their stored keypoints where the operator shares them."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from hashdb.api import bodies
from hashdb.api.auth import principal
from hashdb.api.runtime import get_service
from hashdb.io import output
from hashdb.service.base import MAX_EXPORT_PAGE

bp = Blueprint("export", __name__)

DEFAULT_LIMIT = 1000


@bp.get("/export")
def export() -> dict[str, Any]:
    bodies.query_args({"since", "limit", "keypoints"})
    limit = bodies.query_int("limit", DEFAULT_LIMIT, 1, MAX_EXPORT_PAGE)
    # The service refuses keypoints (403) unless the operator shares them, and caps their page.
    keypoints = bodies.query_bool("keypoints")
    service = get_service()
    entries, cursor = service.export(principal(), request.args.get("since"), limit, keypoints)
    return {"changes": [output.feed_json(e) for e in entries], "cursor": cursor, "feed": service.feed_identity()}
