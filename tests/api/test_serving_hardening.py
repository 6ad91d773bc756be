"""A real `hashdb serve` under slow and hostile clients, and beside another process holding
the database's write lock.

The default run holds a bounded crowd of hostile connections and checks that /healthz and
lookups are answered meanwhile; the slow-marked test holds 200. Timeouts here are generous
limits against hanging, not speed targets (scripts/bench_hostile.py measures latencies).
"""

from __future__ import annotations

import http.client
import json
import random
import sqlite3

import pytest

from hashdb.partners.client import Client, ServerError
from hostile import HostileCrowd, hostile_connection, timed_requests
from serverproc import seeded_database, start_server
from support import flip, random_pdq

GENEROUS = 15.0


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    db = tmp_path_factory.mktemp("hardening") / "db.sqlite"
    rng = random.Random(11)
    value = random_pdq(rng)
    keys = seeded_database(db, {"alpha": ("alpha", "contributor"), "consumer": ("gamma", "consumer"),
                                "partner": ("delta", "partner")}, value)
    server = start_server(db, workers=2, env={"HASHDB_RATE_LIMIT": "0", "HASHDB_WRITE_TIMEOUT": "1"})
    yield server, keys, flip(value, 6, rng)
    server.stop()


def lookup_path(value: str) -> str:
    return f"/v1/lookup?signal=pdq&hash={value}"


def assert_serving(port: int, key: str, probe: str, requests: int) -> list[float]:
    took = timed_requests(port, requests, "GET", "/healthz", {}, timeout=GENEROUS)
    took += timed_requests(port, requests, "GET", lookup_path(probe), {"Authorization": f"Bearer {key}"},
                           timeout=GENEROUS)
    return took


def test_answers_while_hostile_connections_are_held(served):
    server, keys, probe = served
    with HostileCrowd(server.port, 30, keys["consumer"]):
        assert_serving(server.port, keys["consumer"], probe, 20)


def test_a_body_announced_far_over_the_limit_is_refused_without_waiting_for_it(served):
    server, keys, _ = served
    sock = hostile_connection(server.port, "huge_body", keys["consumer"])
    try:
        sock.settimeout(GENEROUS)
        answer = sock.recv(4096)  # the client has sent 2 of 10,000,000,000 bytes and waits
    finally:
        sock.close()
    assert answer.startswith(b"HTTP/1.1 413"), answer[:100]
    assert b'"too_large"' in answer


def test_a_head_past_64_kib_is_refused_before_it_ends(served):
    server, _, _ = served
    sock = hostile_connection(server.port, "silent")
    try:
        sock.settimeout(GENEROUS)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 70_000)  # no end of head
        answer = sock.recv(4096)
    finally:
        sock.close()
    assert answer.startswith(b"HTTP/1.1 431"), answer[:100]
    assert b'"headers_too_large"' in answer


def test_a_half_sent_head_holds_no_worker(served):
    server, keys, probe = served
    # Two more half heads than the server has threads in all (2 workers x 4 threads).
    socks = [hostile_connection(server.port, "half_head") for _ in range(10)]
    try:
        assert_serving(server.port, keys["consumer"], probe, 5)
    finally:
        for sock in socks:
            sock.close()


def test_clients_that_ask_to_close_and_keep_their_end_open_hold_nobody_up(served):
    server, keys, probe = served
    # Each answer is followed by a close that waits up to 2 s for the client's own: 12 such
    # clients a worker, waited for in turn, would hold its other connections past GENEROUS.
    socks = []
    try:
        for _ in range(24):
            sock = hostile_connection(server.port, "silent")
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            socks.append(sock)
        assert_serving(server.port, keys["consumer"], probe, 5)
        for sock in socks:  # each got its whole answer, then the server's end of the connection
            sock.settimeout(GENEROUS)
            answer = b""
            while chunk := sock.recv(4096):
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b'{"status":"ok"}\n'), answer[-200:]
    finally:
        for sock in socks:
            sock.close()


@pytest.mark.parametrize(("head", "status"), [
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\nIdempotency-Key: " + b"k" * 10_000 + b"\r\n\r\n", 431),
    (b"POST /v1/lookup HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400),
    (b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n", 400),
])
def test_what_the_http_parser_refuses_is_answered_in_json(served, head, status):
    server, _, _ = served
    sock = hostile_connection(server.port, "silent")
    try:
        sock.settimeout(GENEROUS)
        sock.sendall(head)
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    finally:
        sock.close()
    top, _, body = answer.partition(b"\r\n\r\n")
    assert top.startswith(b"HTTP/1.1 %d" % status), answer[:200]
    assert b"content-type: application/json" in top.lower()
    assert set(json.loads(body)["error"]) == {"code", "message"}


def test_an_https_client_at_the_http_port_is_told_at_once(served):
    server, keys, _ = served
    # Well inside the 10 s a silent half head is given: the handshake is refused when it arrives.
    client = Client(f"https://127.0.0.1:{server.port}", keys["consumer"], timeout=5.0)
    with pytest.raises(ServerError, match=f"use http://127.0.0.1:{server.port}"):
        client.stats()


def test_reads_go_on_and_writes_are_503_while_another_process_holds_the_write_lock(served):
    server, keys, probe = served
    other = sqlite3.connect(str(server.db), isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=GENEROUS)
        auth = {"Authorization": f"Bearer {keys['consumer']}"}
        for _ in range(5):  # spread over both workers and past a webhook poll (every 2 s)
            conn.request("GET", lookup_path(probe), headers=auth)
            response = conn.getresponse()
            assert response.status == 200 and b'"matched":true' in response.read().replace(b" ", b"")
            conn.request("GET", "/v1/export", headers={"Authorization": f"Bearer {keys['partner']}"})
            response = conn.getresponse()
            assert response.status == 200, response.read()
            response.read()
        write = {"Authorization": f"Bearer {keys['alpha']}", "Content-Type": "application/json"}
        conn.request("POST", "/v1/hashes", headers=write,
                     body=b'{"items": [{"signal": "pdq", "hash": "' + random_pdq(random.Random(5)).encode()
                     + b'", "quality": 100, "labels": ["glorification"]}]}')
        response = conn.getresponse()
        body = response.read()
        assert response.status == 503, body
        assert response.getheader("Retry-After") and b'"busy"' in body
        conn.close()
    finally:
        other.execute("ROLLBACK")
        other.close()


@pytest.mark.slow
def test_answers_while_200_hostile_connections_are_held(served):
    server, keys, probe = served
    with HostileCrowd(server.port, 200, keys["consumer"]) as crowd:
        took = assert_serving(server.port, keys["consumer"], probe, 500)
        assert crowd.opened >= 200
    took.sort()
    print(f"p50 {took[len(took) // 2] * 1000:.1f} ms, p99 {took[int(len(took) * 0.99)] * 1000:.1f} ms")
