"""A real `hashdb serve` on a loopback port, for end-to-end tests of the API and the CLI's
server mode, and a raw HTTP helper that can send any bytes (chunked too)."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hashdb.service.local import open_database
from hashdb.types import HashValue, Principal, Submission

START_TIMEOUT_S = 60.0
# The API tests' body limit: small enough that an over-limit body is cheap to send, large
# enough for 1,000 items.
TEST_MAX_CONTENT_LENGTH = 512 * 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class LiveServer:
    url: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    db: Path

    def request(self, method: str, path: str, body: Any = None, key: str | None = None,
                headers: Mapping[str, str] | None = None, raw: bytes | Iterable[bytes] | None = None,
                chunked: bool = False) -> Reply:
        """`body` is sent as JSON; `raw` as given (an iterable of chunks with `chunked`)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        all_headers = dict(headers or {})
        if key is not None:
            all_headers["Authorization"] = f"Bearer {key}"
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
        if data is not None:
            all_headers.setdefault("Content-Type", "application/json")
        try:
            conn.request(method, path, body=data, headers=all_headers, encode_chunked=chunked)
            response = conn.getresponse()
            return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
        finally:
            conn.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(db: Path, workers: int = 2, env: Mapping[str, str] | None = None,
                 source: Path | None = None, access_log: str = "-", threads: int | None = None,
                 port: int | None = None, dsn: str | None = None) -> LiveServer:
    """`source`: run the server from another checkout of the code (a benchmark's reference).
    `port`: the port of a server stopped before (a restart at the same URL). `dsn`: serve this
    PostgreSQL database (`--db DSN`) instead; `db` then only names the log."""
    port = port or free_port()
    log = db.with_name(db.name + f".{port}.log")
    command = [sys.executable, "-c", "from hashdb.cli import cli; cli()", "serve", "--db", dsn or str(db),
               "--port", str(port), "--workers", str(workers), "--access-log", access_log]
    if threads is not None:
        command += ["--threads", str(threads)]
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("HASHDB_")}
    full_env.update(env or {})
    if source is not None:
        full_env["PYTHONPATH"] = str(source)
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=full_env, cwd=source)
    server = LiveServer(f"http://127.0.0.1:{port}", port, process, log, db)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"hashdb serve exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if server.request("GET", "/readyz").status == 200:
                return server
        except OSError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"hashdb serve was not ready within {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")


def make_keys(db: Path, roles: Mapping[str, tuple[str, str]]) -> dict[str, tuple[str, int]]:
    """Create keys in the database at `db`: name -> (org, role) gives name -> (key, key id)."""
    service = open_database(db)
    try:
        operator = service.store.ensure_org("operator")
        admin = Principal(operator.id, operator.name, "admin")
        out = {}
        for name, (org, role) in roles.items():
            key, record = service.create_key(org, role, admin)
            out[name] = (key, record.id)
        return out
    finally:
        service.store.close()


def seeded_database(db: Path, roles: Mapping[str, tuple[str, str]], pdq: str) -> dict[str, str]:
    """Keys for `roles` (name -> key), and `pdq` shared by organisation "alpha" so that a
    lookup near it matches: the database the live-server tests start from."""
    keys = {name: key for name, (key, _) in make_keys(db, roles).items()}
    service = open_database(db)
    try:
        org = service.store.ensure_org("alpha")
        service.submit([Submission("seed", ("glorification",), (HashValue("pdq", pdq, 100),))],
                       Principal(org.id, org.name, "contributor"))
    finally:
        service.store.close()
    return keys


@contextmanager
def serving(db: Path, roles: Mapping[str, tuple[str, str]], workers: int = 1,
            env: Mapping[str, str] | None = None) -> Iterator[tuple[LiveServer, dict[str, str]]]:
    """A real `hashdb serve` over `db`, rate limit off, with a key per role: (server, name -> key)."""
    keys = {name: key for name, (key, _) in make_keys(db, roles).items()}
    server = start_server(db, workers=workers, env={"HASHDB_RATE_LIMIT": "0", **(env or {})})
    try:
        yield server, keys
    finally:
        server.stop()
