"""Bearer keys -> the acting organisation and role. A key is checked against the store for
revocation on every request, so a revoked key is refused from the next request on; the rest
of the check is cached (HashDB.authenticate). Failed attempts are rate limited per client
address. The key itself is never logged."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import current_app, g, request

from hashdb.api.ratelimit import TokenBucket
from hashdb.api.runtime import get_service
from hashdb.errors import Unauthorized
from hashdb.types import Principal

if TYPE_CHECKING:
    from hashdb.service import HashDB

MAX_KEY_LENGTH = 200


def require_key() -> None:
    """before_request for /v1: authenticate, then charge the key's rate limit."""
    extensions = current_app.extensions
    g.principal = check_key(request.headers.get("Authorization", ""), request.remote_addr or "", get_service(),
                            extensions["hashdb_auth_failures"], extensions["hashdb_ratelimit"])


def check_key(authorization: str, client: str, service: HashDB, failures: TokenBucket,
              limit: TokenBucket) -> Principal:
    """The principal an Authorization header's key stands for, its rate limit charged; the one
    key check of every /v1 request, whichever adapter (Flask's, or lean.py's) answers it."""
    scheme, _, key = authorization.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise Unauthorized("send an API key as `Authorization: Bearer <key>`")
    if len(key) > MAX_KEY_LENGTH or not key.isascii():
        raise Unauthorized("malformed API key")
    principal = authenticate(key, client, service, failures)
    limit.take(principal.key_id)
    return principal


def authenticate(key: str, client: str, service: HashDB, failures: TokenBucket) -> Principal:
    """The principal `key` stands for; keys not known good are limited per client address
    (`failures`), so guessing keys (or retrying a bad one) is cheap for us and slow for the
    guesser. The API's key check and the console's sign-in form both come through here."""
    principal = service.authenticate_known(key)
    if principal is None:
        failures.check(client)
        try:
            principal = service.authenticate(key)
        except Unauthorized:
            failures.charge(client)
            raise
    return principal


def principal() -> Principal:
    actor: Principal = g.principal
    return actor
