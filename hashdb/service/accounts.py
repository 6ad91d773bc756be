"""Organisations and API keys: create (the key is shown once), authenticate, list, revoke."""

from __future__ import annotations

import hmac
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from hashdb.errors import AlreadySent, HashDBError, InvalidInput, Unauthorized
from hashdb.service.base import ServiceBase
from hashdb.trust import keys, policy
from hashdb.types import ROLES, ApiKey, Principal



class KeyCache:
    """Keys this process has checked, by their HMAC: accepted ones (re-checked for revocation
    on every use) and refused ones (answered from memory for REFUSAL_SECONDS, so a client
    retrying a bad key cannot make every attempt a database read). Bounded, oldest out first."""

    SIZE = 10_000
    REFUSAL_SECONDS = 60.0

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._entries: OrderedDict[str, tuple[Principal | str, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, digest: str) -> Principal | str | None:
        """The principal, the refusal message, or None if unknown (or the refusal expired)."""
        with self._lock:
            entry = self._entries.get(digest)
            if entry is None:
                return None
            value, until = entry
            if until < self.clock():
                del self._entries[digest]
                return None
            return value

    def accept(self, digest: str, principal: Principal) -> None:
        self._put(digest, principal, float("inf"))

    def refuse(self, digest: str, message: str) -> None:
        self._put(digest, message, self.clock() + self.REFUSAL_SECONDS)

    def forget(self, digest: str) -> None:
        with self._lock:
            self._entries.pop(digest, None)

    def _put(self, digest: str, value: Principal | str, until: float) -> None:
        with self._lock:
            self._entries[digest] = (value, until)
            self._entries.move_to_end(digest)
            while len(self._entries) > self.SIZE:
                self._entries.popitem(last=False)


class AccountsMixin(ServiceBase):
    key_cache: KeyCache


    def create_key(self, org: str, role: str, actor: Principal,
                   first_sending: Callable[[], bool] | None = None) -> tuple[str, ApiKey]:
        """A new key for `org` (created if new); the key string is returned once, never stored.
        `first_sending` (a form's single-use token, spent when called) is asked only once the
        caller may create this key, so a refusal is told as a refusal, never as a repeat."""
        policy.require(actor, "admin", "create API keys")
        if role not in ROLES:
            raise InvalidInput(f"role must be one of {', '.join(ROLES)}")
        # As given, not stripped: the name keys the organisation, and "x " was always its own.
        policy.check_member_org(org)
        if first_sending is not None and not first_sending():
            raise AlreadySent("this form was sent already: the key was made then, and no second one")
        organisation = self.store.ensure_org(org)
        key, prefix = keys.generate()
        record = self.store.create_api_key(organisation.id, role, prefix,
                                           keys.secret_hash(self._secret(), key))
        return key, record

    def authenticate(self, key: str) -> Principal:
        """The key's principal. A key seen before costs one primary-key read (its revocation,
        so a revoke in any process counts from the next request); a key refused before
        costs no read at all until its refusal is forgotten (KeyCache.REFUSAL_SECONDS)."""
        cache = self.key_cache
        digest = keys.secret_hash(self._secret(), key)
        known = cache.get(digest)
        if isinstance(known, str):
            raise Unauthorized(known)
        if known is not None:
            if not self.store.key_revoked(known.key_id or 0):
                return known
            cache.forget(digest)
        try:
            principal = self._authenticate(key, digest)
        except Unauthorized as refused:
            cache.refuse(digest, refused.message)
            raise
        cache.accept(digest, principal)
        return principal

    def authenticate_known(self, key: str) -> Principal | None:
        """The principal if this process accepted the key before and it is still not revoked;
        None otherwise (nothing more is looked up: for callers limiting failed attempts)."""
        digest = keys.secret_hash(self._secret(), key)
        known = self.key_cache.get(digest)
        if isinstance(known, Principal) and not self.store.key_revoked(known.key_id or 0):
            return known
        return None

    def holds_key(self, key: str) -> bool:
        """Whether `key` (revoked or not) is one of this database's keys: then this database is
        the one the server that takes the key serves."""
        try:
            record = self.store.find_api_key(keys.prefix_of(key))
        except HashDBError:
            return False
        return record is not None and hmac.compare_digest(keys.secret_hash(self._secret(), key), record.secret_hash)

    def _authenticate(self, key: str, digest: str) -> Principal:
        record = self.store.find_api_key(keys.prefix_of(key))
        if record is None or not hmac.compare_digest(digest, record.secret_hash):
            raise Unauthorized("unknown API key")
        if record.revoked_at is not None:
            raise Unauthorized("this API key has been revoked")
        return Principal(record.org_id, record.org_name, record.role, record.id)

    def list_keys(self, actor: Principal) -> list[ApiKey]:
        policy.require(actor, "admin", "list API keys")
        return self.store.list_api_keys()

    def revoke_key(self, key_id: int, actor: Principal) -> ApiKey:
        policy.require(actor, "admin", "revoke API keys")
        return self.store.revoke_api_key(key_id, actor)
