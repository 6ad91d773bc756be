"""Signing in to the console: an API key (or a one-time link) is exchanged for a session that
holds the key's id, never the key; Flask signs the cookie with a key derived from the server
secret. Every request re-reads the key, so revoking it ends its sessions at once. Every POST
carries the session's CSRF token."""

from __future__ import annotations

import hmac
import secrets
import time
from datetime import timedelta
from typing import Any

from flask import Flask, Request, abort, current_app, g, request, session
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface

from hashdb.api.runtime import get_service
from hashdb.errors import Unauthorized
from hashdb.trust import policy
from hashdb.types import Principal

LIFETIME = timedelta(hours=8)
# Create-forms rendered and not yet sent, per session (see form_once).
MAX_OPEN_FORMS = 16
COOKIE = "hashdb_console"
COOKIE_PATH = "/ui"


class ConsoleSessionInterface(SecureCookieSessionInterface):
    """Secure cookies whenever the request came over https (behind a proxy, wrap the app in
    werkzeug's ProxyFix so request.is_secure sees the client's scheme)."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        # The cookie's path is /ui: the API's requests never carry it, so they skip the
        # signing serializer's set-up on every lookup.
        if not request.path.startswith(COOKIE_PATH):
            return self.make_null_session(app)
        return super().open_session(app, request)

    def get_cookie_secure(self, app: Flask) -> bool:
        forced = bool(app.config.get("SESSION_COOKIE_SECURE"))
        return forced or _current_request_secure()


def _current_request_secure() -> bool:
    try:
        req: Request = request
        return bool(req.is_secure)
    except RuntimeError:  # no request context
        return False


def configure(app: Flask) -> None:
    if not app.config.get("SECRET_KEY"):
        app.secret_key = get_service().session_secret()
    app.config.update(SESSION_COOKIE_NAME=COOKIE, SESSION_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_SAMESITE="Strict", SESSION_COOKIE_PATH=COOKIE_PATH,
                      PERMANENT_SESSION_LIFETIME=LIFETIME)
    app.session_interface = ConsoleSessionInterface()


def sign_in(principal: Principal) -> None:
    session.clear()  # a fresh session (and CSRF token) at every sign-in: no session fixation
    session.permanent = True
    session["key_id"] = principal.key_id
    session["since"] = int(time.time())
    session["csrf"] = secrets.token_urlsafe(32)


def sign_out() -> None:
    session.clear()


def current() -> Principal | None:
    """The signed-in principal, or None (no session, expired, or its key revoked)."""
    if "me" in g:
        me: Principal | None = g.me
        return me
    key_id, since = session.get("key_id"), session.get("since")
    principal = None
    if isinstance(key_id, int) and isinstance(since, int) and time.time() - since < LIFETIME.total_seconds():
        try:
            principal = get_service().principal_for_key_id(key_id)
        except Unauthorized:
            session.pop("key_id", None)
    g.me = principal
    return principal


def me() -> Principal:
    principal = current()
    if principal is None:
        abort(401)
    return principal


def csrf_token() -> str:
    token = session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def check_csrf() -> None:
    """before_request: a POST without this session's token is refused (400), before any work."""
    if request.method != "POST":
        return
    sent = request.form.get("csrf_token", "")
    token = session.get("csrf")
    if not isinstance(token, str) or not hmac.compare_digest(sent.encode(), token.encode()):
        current_app.logger.info("console: CSRF token missing or wrong on %s", request.path)
        abort(400, description="csrf")


def form_once() -> str:
    """A single-use token for a form that creates something (a key, a webhook). Reloading the
    page that answered such a form sends the form again; without this it would create a
    second key whose secret nobody saw."""
    pending = session.get("once")
    kept = [t for t in pending if isinstance(t, str)][-(MAX_OPEN_FORMS - 1):] if isinstance(pending, list) else []
    token = secrets.token_urlsafe(16)
    session["once"] = [*kept, token]
    return token


def spend_once() -> bool:
    """True once for each token form_once gave; False for a form sent again."""
    sent = request.form.get("once", "")
    pending = session.get("once")
    if not sent or not isinstance(pending, list) or sent not in pending:
        return False
    session["once"] = [t for t in pending if t != sent]
    return True


def template_globals() -> dict[str, Any]:
    """What every page may show: links only to what the signed-in role may open (the service
    refuses the rest anyway), read from the same permission table the API enforces."""
    principal = current()
    role = principal.role if principal else ""
    may = {action: role in roles for action, roles in policy.PERMISSIONS.items()}
    return {"csrf_token": csrf_token, "form_once": form_once, "me": principal, "may": may}
