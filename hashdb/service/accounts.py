"""Organisations and API keys: create (the key is shown once), authenticate, list, revoke."""

from __future__ import annotations

from hashdb.errors import InvalidInput, Unauthorized
from hashdb.service.base import ServiceBase
from hashdb.trust import keys, policy
from hashdb.types import ROLES, ApiKey, Principal


class AccountsMixin(ServiceBase):

    def create_key(self, org: str, role: str, actor: Principal) -> tuple[str, ApiKey]:
        """A new key for `org` (created if new); the key string is returned once, never stored."""
        policy.require(actor, "admin")
        if role not in ROLES:
            raise InvalidInput(f"role must be one of {', '.join(ROLES)}")
        policy.check_text("org", org, 100)
        if not org.strip():
            raise InvalidInput("organisation name is empty")
        organisation = self.store.ensure_org(org)
        key, prefix = keys.generate()
        record = self.store.create_api_key(organisation.id, role, prefix,
                                           keys.secret_hash(self._secret(), key))
        return key, record

    def authenticate(self, key: str) -> Principal:
        record = self.store.find_api_key(keys.prefix_of(key))
        if record is None or not keys.matches(self._secret(), key, record.secret_hash):
            raise Unauthorized("unknown API key")
        if record.revoked_at is not None:
            raise Unauthorized("this API key has been revoked")
        return Principal(record.org_id, record.org_name, record.role, record.id)

    def list_keys(self, actor: Principal) -> list[ApiKey]:
        policy.require(actor, "admin")
        return self.store.list_api_keys()

    def revoke_key(self, key_id: int, actor: Principal) -> ApiKey:
        policy.require(actor, "admin")
        return self.store.revoke_api_key(key_id, actor)
