"""Admin: API keys (a new key is shown once), webhooks (the signing secret shown once), the
safelist, and the audit chain (verify it; copy its head as an anchor)."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for

from hashdb.api.errors import status_for
from hashdb.api.runtime import get_service
from hashdb.api.ui.bp import bp
from hashdb.api.ui.check import MAX_TEXT, parse
from hashdb.api.ui.forms import text
from hashdb.api.ui.session import me, spend_once
from hashdb.errors import AlreadySent, Forbidden, HashDBError
from hashdb.trust import audit
from hashdb.types import ROLES

ID = "<int(max=9223372036854775807):item_id>"
MAX_SAFELIST_LINES = 1000
MAX_ANCHORS_TEXT = 10_000


def _sent_again(page: str, what: str) -> Any:
    flash(f"That form was sent already (the page was reloaded?): no second {what} was made. "
          f"The {what} it made is in the list; its secret was shown once, on that answer.")
    return redirect(url_for(page), 303)


# keys -------------------------------------------------------------------------------------

@bp.get("/admin/keys")
def keys() -> Any:
    return _keys({}, {})


def _keys(errors: dict[str, str], form: dict[str, str], created: Any = None, status: int = 200) -> Any:
    listed = get_service().list_keys(me())
    return render_template("keys.html", keys=list(reversed(listed)), roles=ROLES, errors=errors, form=form,
                           created=created), status


@bp.post("/admin/keys")
def create_key() -> Any:
    form = {"org": request.form.get("org", "")[:200], "role": request.form.get("role", "")}
    try:
        key, record = get_service().create_key(text("org", limit=200), form["role"], me(), spend_once)
    except AlreadySent:
        return _sent_again("ui.keys", "key")
    except Forbidden:
        raise  # the error page says what this role may not do
    except HashDBError as exc:
        field = "role" if "role" in exc.message else "org"
        return _keys({field: exc.message}, form, None, status_for(exc))
    # Rendered into this one answer (no-store), never put in the session or a redirect.
    return _keys({}, {}, (key, record), 201)


@bp.post(f"/admin/keys/{ID}/revoke")
def revoke_key(item_id: int) -> Any:
    revoked = get_service().revoke_key(item_id, me())
    flash(f"Key {revoked.prefix} of {revoked.org_name} is revoked; its sessions end at their next page.")
    return redirect(url_for("ui.keys"))


# webhooks ---------------------------------------------------------------------------------

@bp.get("/admin/webhooks")
def webhooks() -> Any:
    return _webhooks({}, {})


def _webhooks(errors: dict[str, str], form: dict[str, str], created: Any = None, status: int = 200) -> Any:
    hooks = get_service().list_webhooks(me())
    return render_template("webhooks.html", hooks=hooks, errors=errors, form=form, created=created), status


@bp.post("/admin/webhooks")
def add_webhook() -> Any:
    form = {"org": request.form.get("org", "")[:200], "url": request.form.get("url", "")[:2000]}
    try:
        secret, hook = get_service().add_webhook(text("org", limit=200), text("url", limit=2000), me(), spend_once)
    except AlreadySent:
        return _sent_again("ui.webhooks", "webhook")
    except Forbidden:
        raise  # the error page says what this role may not do
    except HashDBError as exc:
        field = "org" if "organisation" in exc.message else "url"
        return _webhooks({field: exc.message}, form, None, status_for(exc))
    return _webhooks({}, {}, (secret, hook), 201)


@bp.post(f"/admin/webhooks/{ID}/remove")
def remove_webhook(item_id: int) -> Any:
    removed = get_service().remove_webhook(item_id, me())
    flash(f"Webhook {removed.id} ({removed.url}) is disabled.")
    return redirect(url_for("ui.webhooks"))


# safelist ---------------------------------------------------------------------------------

@bp.get("/admin/safelist")
def safelist() -> Any:
    return _safelist({}, {})


def _safelist(errors: dict[str, str], form: dict[str, str], status: int = 200) -> Any:
    size = get_service().safelist_size(me())
    return render_template("safelist.html", size=size, errors=errors, form=form), status


@bp.post("/admin/safelist")
def add_safelist() -> Any:
    # Shown again as given (within reason) beside an error; read whole or refused whole: cut
    # at the limit, a long paste was safelisted in part without a word (found in trial).
    form = {"hashes": request.form.get("hashes", "")[:MAX_TEXT], "note": request.form.get("note", "")[:300]}
    try:
        values = [v for q in parse(text("hashes", limit=MAX_TEXT), MAX_SAFELIST_LINES) for v in q.hashes]
    except HashDBError as exc:
        return _safelist({"hashes": exc.message}, form, status_for(exc))
    try:
        added, held = get_service().add_safelist(values, me(), text("note", limit=300))
    except HashDBError as exc:
        field = "note" if "note" in exc.message else "hashes"
        return _safelist({field: exc.message}, form, status_for(exc))
    held_text = f"; quarantined records near them: {', '.join(map(str, held))}" if held else ""
    flash(f"Safelisted {added} new hash(es){held_text}.")
    return redirect(url_for("ui.safelist"))


# audit ------------------------------------------------------------------------------------

@bp.get("/admin/audit")
def audit_page() -> Any:
    return _audit(None, {}, "")


def _audit(verdict: audit.AuditVerdict | None, errors: dict[str, str], anchors: str, status: int = 200) -> Any:
    entries, orgs = get_service().recent_audit(me())
    return render_template("audit.html", entries=entries, orgs=orgs, verdict=verdict, errors=errors,
                           anchors=anchors), status


@bp.post("/admin/audit/verify")
def verify_audit() -> Any:
    given = request.form.get("anchors", "")[:MAX_ANCHORS_TEXT]
    try:
        anchors = [audit.parse_anchor(a) for a in text("anchors", limit=MAX_ANCHORS_TEXT).split()]
        verdict = get_service().verify_audit(me(), anchors)
    except HashDBError as exc:
        return _audit(None, {"anchors": exc.message}, given, status_for(exc))
    return _audit(verdict, {}, given, 200 if verdict.ok else 409)
