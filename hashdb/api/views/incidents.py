"""POST /v1/incidents (open one), GET /v1/incidents/{id}: the crisis protocol, admins only."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from hashdb.api import bodies
from hashdb.api.auth import principal
from hashdb.api.runtime import get_service
from hashdb.io import output
from hashdb.trust.incidents import MAX_DESCRIPTION

bp = Blueprint("incidents", __name__)

# Row ids are SQLite/PostgreSQL BIGINTs; a larger number in the path is simply not found.
ID = "<int(max=9223372036854775807):incident_id>"


@bp.post("/incidents")
def open_incident() -> tuple[dict[str, Any], int]:
    doc = bodies.json_body()
    bodies.fields(doc, "body", {"name", "description"}, ("name",))
    name = bodies.text(doc["name"], "name")
    description = bodies.text(doc.get("description", ""), "description", MAX_DESCRIPTION)
    incident = get_service().open_incident(name or "", principal(), description or "")
    return output.incident_json(incident), 201


@bp.get(f"/incidents/{ID}")
def get_incident(incident_id: int) -> dict[str, Any]:
    bodies.query_args(set())
    return output.incident_json(get_service().get_incident(incident_id, principal()))
