"""The web console at /ui/: server-rendered pages over the same HashDB calls the API makes.

Pages work without JavaScript (the check page's in-browser file hashing is the one script);
nothing is fetched from outside the server. Errors are pages here, not JSON: a domain error
is shown next to the form field it concerns, with the API's message and status."""

from __future__ import annotations

from typing import Any, NoReturn

from flask import Flask, abort, redirect, render_template, request, url_for
from werkzeug.wrappers import Response
from werkzeug.exceptions import HTTPException

from hashdb.api.errors import status_for
from hashdb.api.ui import session as ui_session
from hashdb.api.ui.bp import bp
from hashdb.errors import HashDBError

# Reachable signed out: the sign-in page, the one-time link, the stylesheet and script.
PUBLIC = frozenset({"ui.signin", "ui.signin_post", "ui.signin_link", "ui.static"})


def register(app: Flask) -> None:
    """Mount the console on an app built by api.create_app (after its service exists)."""
    from hashdb.api.ui import activity

    ui_session.configure(app)
    activity.install(app)
    # Imported for their routes on `bp`.
    from hashdb.api.ui import admin, check, dashboard, incidents, records, review, signin  # noqa: F401

    app.register_blueprint(bp)


@bp.before_request
def _guard() -> Response | None:
    ui_session.check_csrf()
    if request.endpoint in PUBLIC:
        return None
    if ui_session.current() is None:
        target = request.full_path.rstrip("?") if request.method == "GET" else None
        return redirect(url_for("ui.signin", next=target))
    return None


@bp.after_request
def _headers(response: Response) -> Response:
    # Pages show hashes and keys: not cached, not framed, no third-party anything.
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self';"
        " form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
    return response


@bp.context_processor
def _globals() -> dict[str, Any]:
    return ui_session.template_globals()


@bp.route("/<path:unknown>", methods=["GET", "POST"])
def _unknown(unknown: str) -> NoReturn:
    # Routed here, not left unmatched: an unmatched URL's 404 is the API's JSON, and a person
    # who mistyped a console address should get a page with the console's links.
    abort(404)


@bp.errorhandler(HashDBError)
def _domain_error(exc: HashDBError) -> tuple[str, int]:
    return render_template("error.html", code=exc.code, message=exc.message), status_for(exc)


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> tuple[str, int] | Response:
    status = exc.code or 500
    if status == 401:
        return redirect(url_for("ui.signin"))
    if status == 400 and exc.description == "csrf":
        return render_template("error.html", code="csrf", message=(
            "This form was not sent from this console's page (its security token is missing or "
            "out of date). Go back, reload the page and try again.")), 400
    return render_template("error.html", code=(exc.name or "error").lower().replace(" ", "_"),
                           message=exc.description or exc.name), status
