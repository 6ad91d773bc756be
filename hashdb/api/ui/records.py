"""Records: search and page through them; one record with its history and the actions its
viewer may take (retract, relabel, feedback, quarantine, release, confirm, uphold), each with a reason."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from hashdb.api.errors import status_for
from hashdb.api.runtime import get_service
from hashdb.api.ui.bp import bp
from hashdb.api.ui.forms import optional_int, text
from hashdb.api.ui.session import me
from hashdb.errors import HashDBError, InvalidInput
from hashdb.service.console import record_signals
from hashdb.types import STATUSES, HashRecord, RecordQuery

FILTERS = ("status", "signal", "label", "incident", "org")


@bp.get("/records")
def records() -> str | Response:
    principal = me()
    service = get_service()
    args = {name: request.args.get(name, "").strip() for name in ("q", *FILTERS)}
    q = args["q"]
    if q.isascii() and q.isdigit():
        return redirect(url_for("ui.record", record_id=int(q)))
    if q:
        page = service.find_by_hash(principal, q)
    else:
        query = RecordQuery(status=args["status"] or None, signal=args["signal"] or None,
                            label=args["label"] or None, incident=args["incident"] or None,
                            before=optional_int("before"))
        page = service.browse_records(principal, query, args["org"] or None)
    newer = {k: v for k, v in args.items() if v}
    return render_template("records.html", page=page, args=args, newer=newer, statuses=STATUSES,
                           signals=record_signals(), labels=service.taxonomy.labels)


@bp.get("/records/<int(max=9223372036854775807):record_id>")
def record(record_id: int) -> Any:
    return _record_page(record_id, {})


def _record_page(record_id: int, errors: dict[str, dict[str, str]], status: int = 200) -> Any:
    service = get_service()
    view = service.record_view(record_id, me())
    return render_template("record.html", view=view, errors=errors, labels=service.taxonomy.labels), status


def _act(record_id: int, action: str, field: str, call: Callable[[], HashRecord], done: str) -> Any:
    try:
        result = call()
    except HashDBError as exc:
        return _record_page(record_id, {action: {field: exc.message}}, status_for(exc))
    flash(done.format(id=record_id, status=result.status))
    return redirect(url_for("ui.record", record_id=record_id))


ID = "<int(max=9223372036854775807):record_id>"


@bp.post(f"/records/{ID}/retract")
def retract(record_id: int) -> Any:
    return _act(record_id, "retract", "reason",
                lambda: get_service().retract(record_id, me(), text("reason", required=True)),
                "Record {id} retracted: partners see the retraction in the feed.")


@bp.post(f"/records/{ID}/relabel")
def relabel(record_id: int) -> Any:
    labels = request.form.getlist("labels")

    def call() -> HashRecord:
        if not labels:
            raise InvalidInput("choose at least one label")
        return get_service().relabel(record_id, labels, me())

    return _act(record_id, "relabel", "labels", call, "Record {id} relabelled.")


@bp.post(f"/records/{ID}/feedback")
def feedback(record_id: int) -> Any:
    return _act(record_id, "feedback", "verdict",
                lambda: get_service().feedback(record_id, me(), request.form.get("verdict", ""), text("note")),
                "Your organisation's vote on record {id} is saved (now {status}).")


@bp.post(f"/records/{ID}/quarantine")
def quarantine(record_id: int) -> Any:
    return _act(record_id, "quarantine", "reason",
                lambda: get_service().quarantine(record_id, me(), text("reason", required=True)),
                "Record {id} quarantined: it no longer matches members' lookups.")


@bp.post(f"/records/{ID}/release")
def release(record_id: int) -> Any:
    return _act(record_id, "release", "reason",
                lambda: get_service().release(record_id, me(), text("reason", required=True)),
                "Record {id} released: it is {status} and matches lookups again.")


@bp.post(f"/records/{ID}/uphold")
def uphold(record_id: int) -> Any:
    return _act(record_id, "uphold", "reason",
                lambda: get_service().uphold(record_id, me(), text("reason", required=True)),
                "Record {id} upheld: it is {status}; the votes against it cast so far no longer dispute it.")


@bp.post(f"/records/{ID}/confirm")
def confirm(record_id: int) -> Any:
    return _act(record_id, "confirm", "reason",
                lambda: get_service().confirm_quarantine(record_id, me(), text("reason", required=True)),
                "Quarantine of record {id} confirmed: it is retracted for every member and mirror.")
