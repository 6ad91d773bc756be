"""A real `hashdb serve` over PostgreSQL when the database drops its sessions (a restart, a
failover, an administrator's pg_terminate_backend): requests keep being answered, never a 500."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from serverproc import make_keys, start_server

from psycopg.conninfo import make_conninfo

pytestmark = pytest.mark.postgres

SECRET = "s" * 40
MD5 = "0" * 31 + "1"


def terminate_sessions(dsn: str, application: str) -> int:
    """End the server's sessions (only those: other tests share the database), waiting for each."""
    with psycopg.connect(dsn, autocommit=True) as admin:
        rows = admin.execute("SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                             "WHERE application_name = %s AND pid <> pg_backend_pid()", (application,)).fetchall()
    return len(rows)


def test_requests_after_the_database_dropped_the_sessions_are_answered(postgres_dsn: str, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HASHDB_SECRET", SECRET)
    application = f"hashdb-test-{tmp_path.name}"[:60]
    dsn = make_conninfo(postgres_dsn, application_name=application)
    keys = {name: key for name, (key, _) in make_keys(dsn, {"reader": ("alpha", "consumer"),  # type: ignore[arg-type]
                                                            "writer": ("alpha", "contributor")}).items()}
    server = start_server(tmp_path / "pg", workers=1, dsn=dsn,
                          env={"HASHDB_SECRET": SECRET, "HASHDB_RATE_LIMIT": "0"})
    try:
        lookup = f"/v1/lookup?signal=md5&hash={MD5}"
        assert server.request("GET", lookup, key=keys["reader"]).status == 200
        assert terminate_sessions(postgres_dsn, application) >= 1
        # A read (the key check, then the lookup) is retried once on a new connection.
        reply = server.request("GET", lookup, key=keys["reader"])
        assert reply.status == 200, reply.body
        assert terminate_sessions(postgres_dsn, application) >= 1
        # A write on a session the server already ended starts on a new one: nothing was sent.
        body = {"items": [{"signal": "md5", "hash": MD5, "labels": ["glorification"]}]}
        reply = server.request("POST", "/v1/hashes", body=body, key=keys["writer"])
        assert reply.status == 201, reply.body
        assert server.request("GET", lookup, key=keys["reader"]).json()["matches"]
    finally:
        server.stop()
    assert "Traceback" not in server.log.read_text()
