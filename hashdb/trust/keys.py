"""API keys: random, shown once, stored only as an HMAC under the server secret.

A key reads `hdb_<prefix>_<secret>`: the prefix is public (it names the key in logs and
lists), the secret carries 256 random bits. The store holds HMAC-SHA256(server secret, key),
so a stolen database alone cannot be used to call the API.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from hashdb.errors import InvalidInput, Unauthorized

KEY_PREFIX = "hdb"


def generate() -> tuple[str, str]:
    """A new key and its public prefix."""
    prefix = secrets.token_hex(6)
    return f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}", prefix


def prefix_of(key: str) -> str:
    parts = key.split("_", 2)  # the secret is urlsafe base64 and may contain "_" itself
    if len(parts) != 3 or parts[0] != KEY_PREFIX or len(parts[1]) != 12 or not parts[2]:
        raise Unauthorized("malformed API key")
    return parts[1]


def secret_hash(server_secret: bytes, key: str) -> str:
    return hmac.new(server_secret, key.encode(), hashlib.sha256).hexdigest()


def matches(server_secret: bytes, key: str, stored_hash: str) -> bool:
    return hmac.compare_digest(secret_hash(server_secret, key), stored_hash)


def load_server_secret(env_value: str | None, secret_file: Path) -> bytes:
    """HASHDB_SECRET if set; otherwise a random secret kept (mode 0600) beside the database."""
    if env_value:
        if len(env_value) < 32:
            raise InvalidInput("HASHDB_SECRET must be at least 32 characters")
        return env_value.encode()
    if secret_file.exists():
        return secret_file.read_bytes().strip()
    secret_file.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(32).encode()
    fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(value)
    return value
