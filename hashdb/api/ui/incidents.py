"""Incidents: open and close them, the records shared under one (the page refreshes itself
while the incident is open) and each subscriber's webhook delivery attempts."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, url_for

from hashdb.api.errors import status_for
from hashdb.api.runtime import get_service
from hashdb.api.ui.bp import bp
from hashdb.api.ui.forms import optional_int, text
from hashdb.api.ui.session import me
from hashdb.errors import HashDBError
from hashdb.trust.incidents import MAX_DESCRIPTION

REFRESH_S = 5
ID = "<int(max=9223372036854775807):incident_id>"


@bp.get("/incidents")
def incidents() -> Any:
    return _list({}, {})


def _list(errors: dict[str, str], form: dict[str, str], status: int = 200) -> Any:
    found = get_service().list_incidents(me())
    return render_template("incidents.html", incidents=list(reversed(found)), errors=errors, form=form), status


@bp.post("/incidents")
def open_incident() -> Any:
    form = {"name": "", "description": ""}
    try:
        form = {"name": text("name", limit=300), "description": text("description", limit=MAX_DESCRIPTION + 1)}
        incident = get_service().open_incident(form["name"], me(), form["description"])
    except HashDBError as exc:
        field = "description" if "description" in exc.message else "name"
        return _list({field: exc.message}, form, status_for(exc))
    flash(f"Incident {incident.name} is open: members may now tag submissions with it.")
    return redirect(url_for("ui.incident", incident_id=incident.id))


@bp.get(f"/incidents/{ID}")
def incident(incident_id: int) -> str:
    view = get_service().incident_view(incident_id, me(), optional_int("before"))
    hooks = {h.id: h for h in view.webhooks}
    return render_template("incident.html", view=view, hooks=hooks,
                           refresh=REFRESH_S if view.incident.status == "open" else None)


@bp.post(f"/incidents/{ID}/close")
def close_incident(incident_id: int) -> Any:
    closed = get_service().close_incident(incident_id, me())
    flash(f"Incident {closed.name} is closed: new submissions can no longer name it.")
    return redirect(url_for("ui.incident", incident_id=incident_id))
