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
import tempfile
from pathlib import Path

from hashdb.errors import InvalidInput, Unauthorized

KEY_PREFIX = "hdb"
# Characters of server secret at least (HASHDB_SECRET, or the .secret file: 64 hex digits).
MIN_SECRET = 32


def generate() -> tuple[str, str]:
    """A new key and its public prefix."""
    prefix = secrets.token_hex(6)
    return f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}", prefix


def prefix_of(key: str) -> str:
    parts = key.split("_", 2)  # the secret is urlsafe base64 and may contain "_" itself
    if len(parts) != 3 or parts[0] != KEY_PREFIX or len(parts[1]) != 12 or not parts[2]:
        raise Unauthorized("malformed API key")
    return parts[1]


def presented(authorization: str) -> str | None:
    """The public part of the key an Authorization header presents (`hdb_<prefix>`), or None:
    what names a key in logs. Claimed, not checked; never the secret."""
    scheme, _, key = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return None
    try:
        prefix = prefix_of(key.strip())
    except Unauthorized:
        return None
    # Hex digits only (generate()'s): a claimed prefix is written to the log as it came.
    return f"{KEY_PREFIX}_{prefix}" if all(c in "0123456789abcdef" for c in prefix) else None


def secret_hash(server_secret: bytes, key: str) -> str:
    return hmac.new(server_secret, key.encode(), hashlib.sha256).hexdigest()


def matches(server_secret: bytes, key: str, stored_hash: str) -> bool:
    return hmac.compare_digest(secret_hash(server_secret, key), stored_hash)


def load_server_secret(env_value: str | None, secret_file: Path) -> bytes:
    """HASHDB_SECRET if set; otherwise a random secret kept (mode 0600) beside the database."""
    if env_value:
        if len(env_value) < MIN_SECRET:
            raise InvalidInput(f"HASHDB_SECRET must be at least {MIN_SECRET} characters")
        return env_value.encode()
    if not secret_file.exists():
        _create_secret_file(secret_file)
    value = secret_file.read_bytes().strip()
    if len(value) < MIN_SECRET:
        # Never serve under an empty or cut secret: every key would be checked against it.
        raise InvalidInput(f"the server secret file {secret_file} is empty or too short; restore it from "
                           "a backup (a new secret invalidates every API key) or set HASHDB_SECRET")
    return value


def _create_secret_file(secret_file: Path) -> None:
    """Write a fresh secret under a private name, then link it into place: the final name only
    ever holds a whole secret, and when several processes start at once the first link wins
    and the others read the winner's (os.link refuses to replace an existing file)."""
    secret_file.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=secret_file.name + ".", suffix=".tmp", dir=secret_file.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(secrets.token_hex(32).encode())
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, secret_file)
        except FileExistsError:
            pass  # another process created it first: use theirs
    finally:
        os.unlink(tmp)
