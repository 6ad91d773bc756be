"""Webhooks: members are told at once about new hashes under an open incident.

A submission only writes outbox rows (HashDB.submit); sending happens in delivery.py, in a
delivery pass (`hashdb webhook deliver`) or background threads the server starts, so a slow
or dead subscriber can never block or fail a submission. Each POST is signed:

    X-Hashdb-Timestamp: <unix seconds>
    X-Hashdb-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + raw body)>
    X-Hashdb-Delivery:  <outbox id, the same on every retry: deduplicate on it>

The timestamp is inside the MAC, so a captured request cannot be replayed later under a
fresh timestamp; a subscriber refuses timestamps older than a few minutes (see `verify`).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import socket
import ssl
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from hashdb.config import Settings
from hashdb.errors import InvalidInput
from hashdb.store.base import HashStore
from hashdb.trust import addresses
from hashdb.types import HashRecord, Incident, NewRecord, SubmitOutcome


SIGNATURE_HEADER = "X-Hashdb-Signature"
TIMESTAMP_HEADER = "X-Hashdb-Timestamp"
DELIVERY_HEADER = "X-Hashdb-Delivery"
REPLAY_WINDOW_SECONDS = 300
MAX_URL = 2_000
ERROR_CHARS = 500


def check_url(url: str, settings: Settings) -> str:
    """https to a public address; plain http only to loopback (tests, a local relay) unless
    allowed; loopback itself only when the operator allows it (webhook_allow_loopback)."""
    url = url.strip()
    if len(url) > MAX_URL or any(ch.isspace() or not ch.isprintable() for ch in url):
        raise InvalidInput("webhook URL is too long or contains spaces or control characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"webhook URL must be http(s)://host/...: got {url!r}")
    if parts.username or parts.password:
        raise InvalidInput("webhook URL must not carry credentials: the signature authenticates us")
    try:
        given = parts.port
    except ValueError as exc:
        raise InvalidInput(f"webhook URL has a bad port: {exc}") from exc
    if given == 0:  # read as "no port" below, it would be delivered to 443 or 80 unasked
        raise InvalidInput("webhook URL has port 0, which no server listens on: give a port from 1 to 65535")
    port = given or (443 if parts.scheme == "https" else 80)
    if parts.scheme == "http" and not settings.webhook_allow_http and not _loopback(parts.hostname, port):
        raise InvalidInput("webhook URL must use https (payloads carry hash values)")
    addresses.check_registration(parts.hostname, port, settings.webhook_allow_loopback)
    return url


def _loopback(host: str, port: int) -> bool:
    try:
        found = addresses.resolve(host, port)
    except (OSError, UnicodeError):
        return False
    return bool(found) and all(ip.is_loopback for ip in found)


def signing_secret(server_secret: bytes, salt: str) -> str:
    """Derived, never stored: a copy of the database alone cannot forge deliveries."""
    return hmac.new(server_secret, b"hashdb-webhook:" + salt.encode(), hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str, now: float | None = None,
           window: int = REPLAY_WINDOW_SECONDS) -> bool:
    """What a subscriber runs on each request: the MAC holds and the timestamp is recent."""
    if not timestamp.isascii() or not timestamp.isdigit():
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > window:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def payload(record: HashRecord, incident: Incident, frames: Sequence[tuple[str, int | None]] = ()) -> str:
    """What a member needs to act on a new hash (subscribers are members: hash values included)."""
    doc: dict[str, Any] = {
        "event": "hash.added",
        "incident": {"id": incident.id, "name": incident.name},
        "hash": {
            "id": record.id,
            "signal": record.signal,
            "hash": record.value,
            "quality": record.quality,
            "media_type": record.media_type,
            "labels": list(record.labels),
            "status": record.status,
            "created_at": record.created_at,
        },
    }
    if frames:
        doc["hash"]["frames"] = [{"pdq": h, "quality": q} for h, q in frames]
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


def with_labels(payload_text: str, labels: tuple[str, ...] | None) -> str:
    """A queued payload with the record's labels of now: one relabelled between its submission
    and its delivery went out with the labels it had been shared with (found in trial)."""
    if labels is None:
        return payload_text
    doc = json.loads(payload_text)
    if doc.get("hash", {}).get("labels") == list(labels):
        return payload_text
    doc["hash"]["labels"] = list(labels)
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


def announce(store: HashStore, records: Sequence[NewRecord], outcomes: Sequence[SubmitOutcome],
             by_name: Mapping[str, Incident]) -> None:
    """Queue the webhook payloads for a submission's new active records under an open incident."""
    # Outbox rows only: sending is the delivery worker's job, so no subscriber can slow or
    # fail a submission. Quarantined records are not announced.
    fresh = [(o.id, str(r.incident)) for r, o in zip(records, outcomes)
             if not o.duplicate and o.status == "active" and r.incident in by_name]
    _enqueue(store, fresh, by_name)


def announce_released(store: HashStore, record: HashRecord, incident: Incident) -> None:
    """A record released from quarantine to active under an open incident: announced now (held
    at submission, it was not; found in trial), and a delivery not sent while it was held, or
    given up, is due again."""
    _enqueue(store, [(record.id, incident.name)], {incident.name: incident}, again=True)


def _enqueue(store: HashStore, pairs: Sequence[tuple[int, str]], by_name: Mapping[str, Incident],
             again: bool = False) -> None:
    if not pairs:
        return
    stored = store.get_records([record_id for record_id, _ in pairs])
    frames = store.video_frames([i for i, _ in pairs if stored[i].signal == "vpdq"])
    store.enqueue_deliveries([
        (i, payload(stored[i], by_name[name], [(h, q) for _, h, q in frames.get(i, [])])) for i, name in pairs
    ], again=again)


class _PinnedHTTP(http.client.HTTPConnection):
    """Connects to the address that was checked, whatever the name resolves to by now."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """The same for https; the certificate is still checked against the host's name (SNI)."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        self.tls = ssl.create_default_context()
        super().__init__(host, port, timeout=timeout, context=self.tls)
        self.address = address

    def connect(self) -> None:
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self.tls.wrap_socket(sock, server_hostname=self.host)


def post(url: str, body: bytes, headers: dict[str, str], timeout: float,
         allow_loopback: bool = False) -> tuple[int | None, str]:
    """(status code or None, error text); any answer but 2xx is an error. The host is resolved
    and checked at every delivery (it may point elsewhere since registration), and a redirect
    is never followed: it would re-send a signed payload somewhere nobody registered."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        address = addresses.delivery_address(host, port, allow_loopback)
        kind = _PinnedHTTPS if parts.scheme == "https" else _PinnedHTTP
        conn = kind(host, port, str(address), timeout)
        try:
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            conn.request("POST", target, body=body, headers={
                "Content-Type": "application/json", "User-Agent": "hashdb-webhooks", **headers})
            response = conn.getresponse()
            response.read(65_536)
            if 200 <= response.status < 300:
                return int(response.status), ""
            return int(response.status), f"HTTP {response.status} {response.reason}"[:ERROR_CHARS]
        finally:
            conn.close()
    except InvalidInput as exc:
        return None, f"refused: {exc.message}"[:ERROR_CHARS]
    except (OSError, http.client.HTTPException, ValueError) as exc:
        return None, f"{type(exc).__name__}: {exc}"[:ERROR_CHARS]
