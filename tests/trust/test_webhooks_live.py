"""The crisis protocol end to end: a real server delivers signed webhooks on its own."""

from __future__ import annotations

import hashlib
import hmac
import time

from hashdb.config import Settings
from hashdb.service.local import open_database
from hashdb.types import Principal

from serverproc import make_keys, start_server
from test_webhooks import Receiver


def test_a_running_server_delivers_a_signed_webhook_for_a_crisis_submission(tmp_path):
    db = tmp_path / "live.sqlite"
    receiver = Receiver([200])
    service = open_database(db, Settings(webhook_allow_loopback=True))
    try:
        ops = service.store.ensure_org("ops")
        admin = Principal(ops.id, ops.name, "admin")
        service.create_key("subscriber", "partner", admin)  # webhooks carry hash values: a partner's
        service.open_incident("attack-1", admin, "live stream")
        secret, _ = service.add_webhook("subscriber", receiver.url, admin)
    finally:
        service.store.close()
    keys = make_keys(db, {"contributor": ("member", "contributor")})
    server = start_server(db, workers=1, env={"HASHDB_WEBHOOK_ALLOW_LOOPBACK": "1"})
    try:
        md5 = "0123456789abcdef0123456789abcdef"
        reply = server.request("POST", "/v1/hashes", key=keys["contributor"][0], body={
            "items": [{"signal": "md5", "hash": md5, "labels": ["attacker_manifesto"], "incident": "attack-1"}]})
        assert reply.status in (200, 201), reply.body
        deadline = time.monotonic() + 20
        while not receiver.requests and time.monotonic() < deadline:
            time.sleep(0.1)
        assert receiver.requests, "no webhook delivered within 20 s"
        headers, body = receiver.requests[0]
        assert md5.encode() in body
        timestamp = headers["x-hashdb-timestamp"]
        expected = "sha256=" + hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["x-hashdb-signature"], expected)
    finally:
        server.stop()
        receiver.close()
