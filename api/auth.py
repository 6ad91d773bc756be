"""Bearer keys -> the acting organisation and role, checked against the store on every request,
so a revoked key is refused from the next request on. The key itself is never logged."""

from __future__ import annotations

from flask import current_app, g, request

from api.runtime import get_service
from hashdb.errors import Unauthorized
from hashdb.types import Principal

MAX_KEY_LENGTH = 200


def require_key() -> None:
    """before_request for /v1: authenticate, then charge the key's rate limit."""
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise Unauthorized("send an API key as `Authorization: Bearer <key>`")
    if len(key) > MAX_KEY_LENGTH or not key.isascii():
        raise Unauthorized("malformed API key")
    principal = get_service().authenticate(key)
    current_app.extensions["hashdb_ratelimit"].take(principal.key_id)
    g.principal = principal


def principal() -> Principal:
    actor: Principal = g.principal
    return actor
