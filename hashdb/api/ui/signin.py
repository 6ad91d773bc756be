"""Sign in with an API key or a one-time link; sign out."""

from __future__ import annotations

import posixpath
import urllib.parse

from flask import current_app, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from hashdb.api.auth import authenticate
from hashdb.api.errors import status_for
from hashdb.api.runtime import get_service
from hashdb.api.ui import session as ui_session
from hashdb.api.ui.bp import bp
from hashdb.errors import HashDBError, RateLimited, Unauthorized

MAX_KEY_LENGTH = 200


def _safe_next(target: str | None) -> str:
    # Only a path inside the console: never an absolute URL someone put in a link, nor one
    # that climbs out of /ui/ (/ui/../v1/...), nor control characters (a line break in the
    # Location header was a 500 right after the member typed their key).
    if (target and target.isprintable() and target.startswith("/ui/") and "\\" not in target
            and (posixpath.normpath(urllib.parse.unquote(target.split("?", 1)[0])) + "/").startswith("/ui/")):
        return target
    return url_for("ui.dashboard")


@bp.get("/signin")
def signin() -> str | Response:
    if ui_session.current() is not None:
        return redirect(url_for("ui.dashboard"))
    return render_template("signin.html", next=request.args.get("next", ""), errors={})


@bp.post("/signin")
def signin_post() -> tuple[str, int] | tuple[str, int, dict[str, str]] | Response:
    key = request.form.get("key", "").strip()
    target = request.form.get("next", "")
    try:
        if not key:
            raise Unauthorized("enter your API key")
        if len(key) > MAX_KEY_LENGTH or not key.isascii():
            raise Unauthorized("malformed API key")
        # Counted against the same failed-key limit per client address as the API's key check:
        # without it the form was a way round that limit (160 wrong keys, no 429).
        principal = authenticate(key, request.remote_addr or "", get_service(),
                                 current_app.extensions["hashdb_auth_failures"])
    except HashDBError as exc:
        page = render_template("signin.html", next=target, errors={"key": exc.message})
        if isinstance(exc, RateLimited):
            return page, status_for(exc), {"Retry-After": str(max(1, exc.retry_after))}
        return page, status_for(exc)
    ui_session.sign_in(principal)
    return redirect(_safe_next(target))


@bp.get("/signin/link")
def signin_link() -> tuple[str, int] | str:
    """The one-time link `hashdb demo` prints. The answer is a page that moves on by itself:
    a redirect would carry on the click's navigation, on which a SameSite=Strict cookie set by
    a link from elsewhere is not sent back."""
    try:
        principal = get_service().redeem_signin_link(request.args.get("token", ""))
    except HashDBError as exc:
        return render_template("signin.html", next="", errors={"link": exc.message}), status_for(exc)
    ui_session.sign_in(principal)
    return render_template("signed_in.html", target=url_for("ui.dashboard"))


@bp.post("/signout")
def signout() -> Response:
    ui_session.sign_out()
    flash("Signed out.")
    return redirect(url_for("ui.signin"))
