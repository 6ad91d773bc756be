"""Store methods for organisations and API keys, in the SQL both dialects speak (see sql.py).

A mixin over SQLStore. Keys are stored only as a keyed hash of their secret; creating and
revoking one writes an audit row in the same transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from hashdb.errors import Conflict, NotFound
from hashdb.store.rows import api_key_from_row, check_choice, check_text, now
from hashdb.store.sql import SQLStore
from hashdb.types import ROLES, ApiKey, Organisation, Principal


class KeysSQL(SQLStore):
    def ensure_org(self, name: str) -> Organisation:
        check_text("organisation name", name)
        with self._write() as conn:
            conn.execute("INSERT INTO orgs (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
                         (name, now()))
            (org_id,) = conn.execute("SELECT id FROM orgs WHERE name = ?", (name,)).fetchone()
        return Organisation(int(org_id), name)

    def get_org(self, name: str) -> Organisation | None:
        rows = self._rows("SELECT id, name FROM orgs WHERE name = ?", (name,))
        return Organisation(int(rows[0]["id"]), rows[0]["name"]) if rows else None

    def create_api_key(self, org_id: int, role: str, prefix: str, secret_hash: str) -> ApiKey:
        check_choice("role", role, ROLES)
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM orgs WHERE id = ?", (org_id,)).fetchone() is None:
                raise NotFound(f"no organisation with id {org_id}")
            if conn.execute("SELECT 1 FROM api_keys WHERE prefix = ?", (prefix,)).fetchone() is not None:
                raise Conflict(f"an API key with prefix {prefix!r} already exists")
            (key_id,) = conn.execute(
                "INSERT INTO api_keys (org_id, role, prefix, secret_hash, created_at)"
                " VALUES (?, ?, ?, ?, ?) RETURNING id",
                (org_id, role, prefix, secret_hash, now()),
            ).fetchone()
            self._audit(conn, org_id, None, "key.create", f"key:{key_id}", json.dumps({"role": role}))
        return self._keys("k.id = ?", (key_id,))[0]

    def _keys(self, where: str, params: Sequence[Any]) -> list[ApiKey]:
        rows = self._rows(
            "SELECT k.*, o.name AS org_name FROM api_keys k JOIN orgs o ON o.id = k.org_id"
            f" WHERE {where} ORDER BY k.id",
            params,
        )
        return [api_key_from_row(r) for r in rows]

    def find_api_key(self, prefix: str) -> ApiKey | None:
        keys = self._keys("k.prefix = ?", (prefix,))
        return keys[0] if keys else None

    def key_revoked(self, key_id: int) -> bool:
        """True if the key is revoked or gone: one primary-key read, for cached key checks."""
        rows = self._rows("SELECT revoked_at FROM api_keys WHERE id = ?", (key_id,))
        return not rows or rows[0]["revoked_at"] is not None

    def list_api_keys(self) -> list[ApiKey]:
        return self._keys("1 = 1", ())

    def revoke_api_key(self, key_id: int, actor: Principal) -> ApiKey:
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?", (now(), key_id)
            )
            if cursor.rowcount == 0:
                raise NotFound(f"no API key with id {key_id}")
            self._audit(conn, actor.org_id, actor.key_id, "key.revoke", f"key:{key_id}", "")
        return self._keys("k.id = ?", (key_id,))[0]
