"""A reload (kill -HUP on the master) under traffic: the new workers take no connection until
their index is loaded, so no lookup meets a worker still loading (503 index_stale)."""

from __future__ import annotations

import http.client
import os
import random
import signal
import time
from pathlib import Path

from serverproc import seeded_database, start_server
from support import random_pdq

from hashdb.service.local import open_database
from hashdb.types import HashValue, NewRecord, Principal

# Enough hashes that a worker's index takes a noticeable moment to load: before the change,
# 56 of these lookups (about 28 a reload) were answered 503.
HASHES = 200_000
RELOADS = 2
AFTER_RELOAD_S = 2.5


def test_lookups_through_a_reload_never_meet_a_worker_still_loading(tmp_path: Path) -> None:
    rng = random.Random(5)
    stored = random_pdq(rng)
    db = tmp_path / "db.sqlite"
    key = seeded_database(db, {"consumer": ("gamma", "consumer")}, stored)["consumer"]
    service = open_database(db)
    try:
        org = service.store.ensure_org("bulk")
        bulk = Principal(org.id, org.name, "contributor")
        for _ in range(HASHES // 50_000):
            service.store.add_records([NewRecord(HashValue("pdq", f"{rng.getrandbits(256):064x}", 90), "image",
                                                 ("glorification",)) for _ in range(50_000)], bulk)
    finally:
        service.store.close()
    server = start_server(db, workers=2, env={"HASHDB_RATE_LIMIT": "0"})
    statuses: dict[int, int] = {}
    try:
        for _ in range(RELOADS):
            os.kill(server.process.pid, signal.SIGHUP)
            end = time.monotonic() + AFTER_RELOAD_S
            while time.monotonic() < end:
                conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
                try:
                    conn.request("GET", f"/v1/lookup?signal=pdq&hash={stored}",
                                 headers={"Authorization": f"Bearer {key}"})
                    answer = conn.getresponse()
                    answer.read()
                finally:
                    conn.close()
                statuses[answer.status] = statuses.get(answer.status, 0) + 1
    finally:
        server.stop()
    assert set(statuses) == {200}, statuses
