"""Lookups and health checks answered on the worker's loop (hashdb/api/inline.py): the parser
takes only what gunicorn's own parser reads the same way, builds the environ gunicorn would, and
a live server answers byte for byte as its threads do, also while every thread is held."""

from __future__ import annotations

import io
import json
import random
import select
import socket
import sqlite3
import time

import pytest
from gunicorn.config import Config
from gunicorn.http.parser import RequestParser
from gunicorn.http.wsgi import create

from hashdb.api import inline
from serverproc import seeded_database, start_server
from support import flip, random_pdq

GENEROUS = 15.0
# Objects, not values: compared by what they hold, or not at all.
_OBJECTS = {"wsgi.input", "wsgi.errors", "wsgi.file_wrapper", "gunicorn.socket", "wsgi.early_hints"}


def _config() -> Config:
    cfg = Config()
    cfg.set("workers", 2)
    return cfg


def _head_end(raw: bytes) -> int:
    return raw.index(b"\r\n\r\n") + 4


def _gunicorns(raw: bytes, cfg: Config) -> tuple[dict, bytes, bool]:
    """The environ, body and close decision gunicorn's own parser gives for `raw`."""
    req = next(RequestParser(cfg, iter([raw]), ("127.0.0.1", 5000)))
    _, environ = create(req, None, ("127.0.0.1", 5000), ("127.0.0.1", 8000), cfg)
    environ["wsgi.multithread"] = True  # what gthread's handle_request sets
    return environ, environ["wsgi.input"].read(), req.should_close()


TAKEN = [
    b"GET /v1/lookup?signal=pdq&hash=ab HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n\r\n",
    b"GET /v1/lookup? HTTP/1.1\r\nHost: x\r\nAccept: */*\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET /readyz HTTP/1.0\r\n\r\n",
    b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\nUser-Agent:  spaced  value \t\r\n\r\n",
    b"POST /v1/lookup HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 27\r\n"
    b"Empty:\r\n\r\n" + b'{"items":[{"signal":"md5"}]}'[:27],
]


@pytest.mark.parametrize("raw", TAKEN)
def test_what_is_taken_reads_as_gunicorn_reads_it(raw):
    cfg = _config()
    request = inline.parse(raw, _head_end(raw), inline.Limits.of(cfg))
    assert request is not None
    ours = inline.environ(request, ("127.0.0.1", 5000), ("127.0.0.1", 8000), cfg, None)
    theirs, body, close = _gunicorns(raw, cfg)
    assert ours["wsgi.input"].read() == body
    assert request.close == close
    assert {k: v for k, v in ours.items() if k not in _OBJECTS} == {k: v for k, v in theirs.items() if k not in _OBJECTS}


DECLINED = {
    "another path": b"GET /v1/hashes HTTP/1.1\r\nHost: x\r\n\r\n",
    "a path percent-encoded": b"GET /v1/%6cookup HTTP/1.1\r\nHost: x\r\n\r\n",
    "POST of a health check": b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    "HEAD": b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    "a fragment": b"GET /v1/lookup?a=1#f HTTP/1.1\r\nHost: x\r\n\r\n",
    "HTTP/2 text": b"GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n",
    "an underscore in a name": b"GET /healthz HTTP/1.1\r\nX_Thread: 1\r\n\r\n",
    "a repeated header": b"GET /healthz HTTP/1.1\r\nAccept: a\r\nAccept: b\r\n\r\n",
    "a folded line": b"GET /healthz HTTP/1.1\r\nAccept: a\r\n b\r\n\r\n",
    "a control character": b"GET /healthz HTTP/1.1\r\nAccept: a\x01b\r\n\r\n",
    "a non-ASCII value": b"GET /healthz HTTP/1.1\r\nAccept: caf\xc3\xa9\r\n\r\n",
    "chunked": b"POST /v1/lookup HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
    "Expect": b"POST /v1/lookup HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n",
    "Upgrade": b"GET /healthz HTTP/1.1\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n",
    "a scheme header": b"GET /healthz HTTP/1.1\r\nX-Forwarded-Proto: https\r\n\r\n",
    "an odd Connection": b"GET /healthz HTTP/1.1\r\nConnection: close, TE\r\n\r\n",
    "a GET with a body": b"GET /healthz HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
    "a bad length": b"POST /v1/lookup HTTP/1.1\r\nContent-Length: +2\r\n\r\n{}",
    "a large body": b"POST /v1/lookup HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % (inline.INLINE_MAX_BODY + 1)
                    + b" " * (inline.INLINE_MAX_BODY + 1),
    "a pipelined request behind": b"GET /healthz HTTP/1.1\r\n\r\nGET /healthz HTTP/1.1\r\n\r\n",
    "a long line": b"GET /healthz HTTP/1.1\r\nAccept: " + b"a" * 9000 + b"\r\n\r\n",
}


@pytest.mark.parametrize("raw", DECLINED.values(), ids=DECLINED.keys())
def test_anything_unusual_goes_to_gunicorns_parser(raw):
    assert inline.parse(raw, _head_end(raw), inline.Limits.of(_config())) is None


def test_more_fields_than_gunicorn_allows_are_declined():
    cfg = _config()
    fields = b"".join(b"X-F%d: v\r\n" % i for i in range(cfg.limit_request_fields + 1))
    raw = b"GET /healthz HTTP/1.1\r\n" + fields + b"\r\n"
    assert inline.parse(raw, _head_end(raw), inline.Limits.of(cfg)) is None
    raw = b"GET /healthz HTTP/1.1\r\n" + fields.split(b"\r\n", 1)[1] + b"\r\n"
    assert inline.parse(raw, _head_end(raw), inline.Limits.of(cfg)) is not None


# -- a live server ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    db = tmp_path_factory.mktemp("inline") / "db.sqlite"
    rng = random.Random(5)
    value = random_pdq(rng)
    keys = seeded_database(db, {"consumer": ("gamma", "consumer"), "alpha": ("alpha", "contributor")}, value)
    # One worker with one thread: a request that holds the thread shows who answers the rest.
    server = start_server(db, workers=1, env={"HASHDB_RATE_LIMIT": "0"}, threads=1)
    yield server, keys, flip(value, 6, rng)
    server.stop()


def _read_answer(sock: socket.socket, buffered: bytearray) -> bytes:
    """One whole answer (head and Content-Length body) from a kept-alive connection."""
    while b"\r\n\r\n" not in buffered:
        chunk = sock.recv(65536)
        assert chunk, "connection closed before an answer"
        buffered += chunk
    end = buffered.index(b"\r\n\r\n") + 4
    length = next(int(line.split(b":", 1)[1]) for line in buffered[:end].split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(buffered) < end + length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed inside an answer"
        buffered += chunk
    answer = bytes(buffered[: end + length])
    del buffered[: end + length]
    return answer


def _without_date(answer: bytes) -> bytes:
    return b"\r\n".join(line for line in answer.split(b"\r\n") if not line.lower().startswith(b"date:"))


def _exchange(port: int, requests: list[bytes]) -> list[bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=GENEROUS) as sock:
        buffered = bytearray()
        answers = []
        for raw in requests:
            sock.sendall(raw)
            answers.append(_without_date(_read_answer(sock, buffered)))
        return answers


def test_answers_are_the_threads_answers_byte_for_byte(served):
    server, keys, probe = served
    auth = f"Authorization: Bearer {keys['consumer']}\r\n".encode()
    body = json.dumps({"items": [{"signal": "pdq", "hash": probe}, {"signal": "md5", "hash": "0" * 32}]}).encode()
    requests = [
        b"GET /v1/lookup?signal=pdq&hash=%s HTTP/1.1\r\nHost: x\r\n%s\r\n" % (probe.encode(), auth),
        b"GET /v1/lookup?signal=pdq&hash=nothex HTTP/1.1\r\nHost: x\r\n%s\r\n" % auth,
        b"GET /v1/lookup?signal=pdq&hash=%s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\n\r\n" % probe.encode(),
        b"POST /v1/lookup HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n%s"
        % (auth, len(body), body),
        b"POST /v1/lookup HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n%sContent-Length: 3\r\n\r\n{x}"
        % auth,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n",
    ]
    inline_answers = _exchange(server.port, requests)
    # gunicorn drops header names with an underscore, so this one changes nothing but the path
    # the request takes: the parser here declines it, a thread answers.
    threaded = _exchange(server.port, [raw.replace(b"Host: x\r\n", b"Host: x\r\nX_Thread: 1\r\n") for raw in requests])
    assert [a.split(b"\r\n", 1)[0] for a in inline_answers] == [
        b"HTTP/1.1 200 OK", b"HTTP/1.1 400 BAD REQUEST", b"HTTP/1.1 401 UNAUTHORIZED", b"HTTP/1.1 200 OK",
        b"HTTP/1.1 400 BAD REQUEST", b"HTTP/1.1 200 OK", b"HTTP/1.1 200 OK"]
    assert json.loads(inline_answers[0].split(b"\r\n\r\n", 1)[1])["matched"] is True
    assert inline_answers == threaded


def test_a_client_asking_to_close_gets_its_answer_then_the_close(served):
    server, keys, probe = served
    with socket.create_connection(("127.0.0.1", server.port), timeout=GENEROUS) as sock:
        sock.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.0 200 OK") and b"Connection: close" in answer
    assert answer.endswith(b'{"status":"ok"}\n')


def test_lookups_are_answered_while_the_only_thread_is_held(served):
    server, keys, probe = served
    # A submit waits on a thread for the database's write lock, which another process holds:
    # the worker's only thread is held. Lookups and health checks on other connections are
    # answered meanwhile, before it.
    other = sqlite3.connect(str(server.db), isolation_level=None)
    holder = socket.create_connection(("127.0.0.1", server.port), timeout=GENEROUS)
    try:
        other.execute("BEGIN IMMEDIATE")
        body = json.dumps({"items": [{"signal": "pdq", "hash": random_pdq(random.Random(8)), "quality": 100,
                                      "labels": ["glorification"]}]}).encode()
        holder.sendall(b"POST /v1/hashes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       b"Authorization: Bearer %s\r\nContent-Length: %d\r\n\r\n%s"
                       % (keys["alpha"].encode(), len(body), body))
        time.sleep(0.5)  # the thread has taken it, and waits for the lock (up to 5 s, WRITE_TIMEOUT)
        auth = f"Authorization: Bearer {keys['consumer']}\r\n".encode()
        answers = _exchange(server.port, [
            b"GET /v1/lookup?signal=pdq&hash=%s HTTP/1.1\r\nHost: x\r\n%s\r\n" % (probe.encode(), auth),
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"])
        assert all(a.startswith(b"HTTP/1.1 200 OK") for a in answers)
        assert select.select([holder], [], [], 0)[0] == [], "the submit was answered first: no thread was held"
        other.execute("ROLLBACK")  # the lock is free: the submit goes on
        assert holder.recv(65536).startswith(b"HTTP/1.1 201")
    finally:
        if other.in_transaction:
            other.execute("ROLLBACK")
        other.close()
        holder.close()
