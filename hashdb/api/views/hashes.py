"""POST /v1/hashes (batch submit), DELETE /v1/hashes/{id} (retract), PATCH /v1/hashes/{id}
(relabel), POST .../feedback."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from flask.views import MethodView

from hashdb.api import bodies
from hashdb.api.auth import principal
from hashdb.api.runtime import get_service
from hashdb.api.views import max_batch
from hashdb.io import output

bp = Blueprint("hashes", __name__)

# Row ids are SQLite/PostgreSQL BIGINTs; a larger number in the path is simply not found.
ID = "<int(max=9223372036854775807):record_id>"


@bp.post("/hashes")
def submit() -> tuple[dict[str, Any], int]:
    service = get_service()
    submissions = bodies.submit_request(bodies.json_body(), max_batch(), service.taxonomy.validate)
    results = service.submit(submissions, principal(), bodies.idempotency_key())
    created = any(not r.duplicate for r in results)
    return {"results": [output.submit_json(r) for r in results]}, 201 if created else 200


class RecordView(MethodView):
    """DELETE (retract) and PATCH (relabel) share one URL rule: with one rule per method,
    Werkzeug answers an id past the converter's max with 405 for all but the first method,
    instead of 404."""

    def delete(self, record_id: int) -> dict[str, Any]:
        reason = bodies.retract_reason(bodies.json_body(optional=True))
        return output.record_json(get_service().retract(record_id, principal(), reason))

    def patch(self, record_id: int) -> dict[str, Any]:
        labels = bodies.relabel_request(bodies.json_body())
        return output.record_json(get_service().relabel(record_id, labels, principal()))


bp.add_url_rule(f"/hashes/{ID}", view_func=RecordView.as_view("record"))


@bp.post(f"/hashes/{ID}/feedback")
def feedback(record_id: int) -> dict[str, Any]:
    verdict, note = bodies.feedback_request(bodies.json_body())
    return output.record_json(get_service().feedback(record_id, principal(), verdict, note))
