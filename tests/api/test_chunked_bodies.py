"""End to end against a real `hashdb serve`, over raw sockets: chunked bodies.

A chunked body is gathered by the worker's loop, as one with a Content-Length is, before a
thread sees the request: clients that trickle one hold no thread, and one that stops is closed
after BODY_TIMEOUT. A chunk declared past the body limit is answered 413 as soon as its size
line arrives, a size line that is no size 400, framing past its allowance (one-byte chunks,
long extensions) 413, a line ended by a bare LF or a size line over the line limit 400, a
transfer coding other than chunked 415 or 400, each closing the connection; bodies up to the limit are read, and the
connection serves on after them. The socket timeouts are far under the 30 s a thread's read
may wait (worker.IO_TIMEOUT), which is what such a request could hold a thread for before:
a refusal or an answer that waits for the client fails them."""

from __future__ import annotations

import http.client
import json
import random
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from serverproc import TEST_MAX_CONTENT_LENGTH, make_keys, start_server
from support import random_pdq

# Far under worker.IO_TIMEOUT (30 s): a limit against waiting for the chunk, not a speed target.
PROMPT = 5.0
TOO_LARGE = f"request body larger than {TEST_MAX_CONTENT_LENGTH} bytes"
PDQ = "f" * 64


def head(key: str, path: str = "/v1/lookup", extra: str = "", coding: str = "chunked") -> bytes:
    auth = f"Authorization: Bearer {key}\r\n" if key else ""
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\n"
            f"Transfer-Encoding: {coding}\r\n{extra}\r\n").encode()


def chunked(body: bytes, size: int) -> bytes:
    """`body` in chunks of `size` bytes, and the last chunk."""
    pieces = (body[i:i + size] for i in range(0, len(body), size))
    return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"


def lookup_body(length: int) -> bytes:
    """A lookup of one hash, padded with leading spaces (JSON allows them) to `length` bytes."""
    doc = json.dumps({"items": [{"signal": "pdq", "hash": PDQ}]}).encode()
    return b" " * (length - len(doc)) + doc


def answers(sock: socket.socket) -> list[tuple[int, dict[str, str], bytes]]:
    """Every answer the server sends until it closes the connection, each (status, headers, body)."""
    data = b""
    while chunk := sock.recv(65536):  # a server that does not close fails here, after PROMPT
        data += chunk
    out = []
    while data:
        top, _, rest = data.partition(b"\r\n\r\n")
        status_line, *lines = top.decode("latin-1").split("\r\n")
        headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
        length = int(headers["content-length"])
        out.append((int(status_line.split(" ")[1]), headers, rest[:length]))
        data = rest[length:]
    return out


def refused(port: int, sent: bytes) -> tuple[int, dict[str, str], dict[str, str]]:
    """Send `sent` and then nothing more, the connection left open: the one answer (status,
    headers, error), which must come and be followed by the server's close within PROMPT."""
    with socket.create_connection(("127.0.0.1", port), timeout=PROMPT) as sock:
        sock.sendall(sent)
        [(status, headers, body)] = answers(sock)
    assert headers["content-type"] == "application/json"
    error = json.loads(body)["error"]
    assert set(error) == {"code", "message"}
    return status, headers, error


def still_serving(port: int, key: str) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=PROMPT)
    try:
        conn.request("GET", f"/v1/lookup?signal=pdq&hash={PDQ}", headers={"Authorization": f"Bearer {key}"})
        response = conn.getresponse()
        assert response.status == 200, response.read()
    finally:
        conn.close()


@pytest.fixture
def consumer(live_keys):
    return live_keys["consumer"][0]


@pytest.mark.parametrize("start", [
    b"ffffffffffff\r\n{\"",  # 256 TB announced, two bytes of it sent
    b"%x\r\n{\"" % (100 * 1024 * 1024),  # 100 MB
    b"%x\r\n{\"" % (TEST_MAX_CONTENT_LENGTH + 1),  # one byte over
    b"10\r\n" + b" " * 16 + b"\r\n%x\r\n" % TEST_MAX_CONTENT_LENGTH,  # over only with the chunk before it
    b"ffffffffffffffff\r\n",  # the largest size there is (64 bits)
])
def test_a_chunk_declared_over_the_limit_is_413_at_once(live, consumer, start):
    status, headers, error = refused(live.port, head(consumer) + start)
    assert status == 413 and error == {"code": "too_large", "message": TOO_LARGE}
    assert headers["connection"] == "close"
    still_serving(live.port, consumer)


@pytest.mark.parametrize("line", [
    b"f" * 17,  # past 64 bits
    b"1" + b"0" * 16,  # 2**64
    b"f" * 40,
    b"zz",
    b"12g4",
])
def test_a_size_line_that_is_no_size_is_400_at_once(live, consumer, line):
    status, headers, error = refused(live.port, head(consumer) + line + b"\r\n")
    assert status == 400 and error["code"] == "invalid_input", error
    assert headers["connection"] == "close"
    still_serving(live.port, consumer)


@pytest.mark.parametrize("start", [b"ffffffffffff\r\n{\"", b"zz\r\n"])
def test_a_body_left_unread_gets_one_answer_and_the_close(live, start):
    # No key: answered 401 before the body is read. gunicorn then read the body to drop it:
    # it waited 5 s for the chunk, or wrote a 400 behind the 401, to no request.
    with socket.create_connection(("127.0.0.1", live.port), timeout=PROMPT) as sock:
        sock.sendall(head("") + start)
        replies = answers(sock)
    assert [status for status, _, _ in replies] == [401]


@pytest.mark.parametrize(("length", "size"), [
    (100, 7),  # small, in many chunks
    (TEST_MAX_CONTENT_LENGTH, TEST_MAX_CONTENT_LENGTH),  # exactly the limit, one chunk
    (TEST_MAX_CONTENT_LENGTH, 8192),  # exactly the limit, many chunks
])
def test_a_chunked_body_up_to_the_limit_is_read(live, consumer, length, size):
    assert_looked_up(live, consumer, chunked(lookup_body(length), size))


def assert_looked_up(live, consumer, framed: bytes) -> None:
    """A batch lookup sent with this chunked body is answered 200 with its result."""
    with socket.create_connection(("127.0.0.1", live.port), timeout=PROMPT) as sock:
        sock.sendall(head(consumer, extra="Connection: close\r\n") + framed)
        [(status, _, body)] = answers(sock)
    assert status == 200, body
    assert json.loads(body)["results"][0]["input"] == f"pdq:{PDQ}"


def test_a_chunked_body_a_byte_over_the_limit_in_small_chunks_is_413(live, consumer):
    sent = head(consumer) + chunked(lookup_body(TEST_MAX_CONTENT_LENGTH + 1), 8192)
    status, headers, error = refused(live.port, sent)
    assert status == 413 and error == {"code": "too_large", "message": TOO_LARGE}


def test_the_connection_serves_on_after_a_chunked_body(live, consumer):
    conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=PROMPT)
    try:
        for _ in range(2):
            body = lookup_body(300)
            conn.request("POST", "/v1/lookup", body=[body[:100], body[100:]], encode_chunked=True,
                         headers={"Authorization": f"Bearer {consumer}", "Content-Type": "application/json"})
            response = conn.getresponse()
            assert response.status == 200 and response.getheader("Connection") != "close"
            assert json.loads(response.read())["results"][0]["input"] == f"pdq:{PDQ}"
        conn.request("GET", "/healthz")
        assert conn.getresponse().status == 200
    finally:
        conn.close()


# -- transfer codings other than chunked ---------------------------------------------------------


@pytest.mark.parametrize("coding", ["x-foo, chunked", "gzip, chunked", "deflate,chunked", "identity, chunked"])
def test_a_coding_before_chunked_is_415_at_once(live, consumer, coding):
    # gunicorn answered x-foo "501 Bad Request" (a 5xx for the client's mistake) and read a
    # gzip one as if plain: a plain body sent so was looked up, a gzip one refused as not UTF-8.
    status, headers, error = refused(live.port, head(consumer, coding=coding) + chunked(lookup_body(100), 50))
    assert status == 415 and error["code"] == "unsupported_media_type", error
    assert coding.split(",")[0] in error["message"] and "only chunked" in error["message"], error
    assert headers["connection"] == "close"
    still_serving(live.port, consumer)


@pytest.mark.parametrize("coding", ["x-foo", "gzip", "chunked, gzip", "chunked, chunked", "",
                                    "chunked\r\nTransfer-Encoding: chunked"])
def test_codings_that_do_not_end_in_one_chunked_are_400_at_once(live, consumer, coding):
    # RFC 9112 section 6.3: no length can be told for such a body. x-foo and an empty value were
    # gunicorn's 501 too; the others its 400 naming only the header.
    status, headers, error = refused(live.port, head(consumer, coding=coding))
    assert status == 400 and error["code"] == "invalid_input", error
    assert "only chunked" in error["message"], error
    assert headers["connection"] == "close"
    still_serving(live.port, consumer)


# -- lines of chunked framing -------------------------------------------------------------------


@pytest.mark.parametrize("sent", [
    b"5\nhello\n0\n\n",  # every line ended by LF alone
    b"5\n",
    b"5;a=b\n",
    b"5;a\nb\r\nhello\r\n0\r\n\r\n",  # an LF inside the line, a CRLF later
])
def test_a_size_line_ended_by_a_bare_lf_is_400_at_once(live, consumer, sent):
    # gunicorn's reader waits for a CRLF: the connection was closed at HASHDB_BODY_TIMEOUT
    # without a word (or, with a CRLF later, an LF inside an extension was taken).
    status, headers, error = refused(live.port, head(consumer) + sent)
    assert status == 400 and error["code"] == "invalid_input", error
    assert "bare LF" in error["message"], error
    assert headers["connection"] == "close"
    still_serving(live.port, consumer)


def test_chunk_data_followed_by_a_bare_lf_is_400_at_once(live, consumer):
    # The reader's refusal of a chunk without its CRLF came once a second byte followed.
    status, headers, error = refused(live.port, head(consumer) + b"5\r\nhello\n")
    assert status == 400 and error["code"] == "invalid_input", error
    assert "not followed by CRLF" in error["message"], error
    assert headers["connection"] == "close"
    still_serving(live.port, consumer)


# gunicorn's limit_request_field_size, which `hashdb serve` leaves at its default: the reader's
# longest chunk-size line.
LINE_LIMIT = 8190


@pytest.mark.parametrize("extension", [100_000, 9_000, LINE_LIMIT - 1])
def test_a_size_line_over_the_line_limit_is_400_saying_so(live, consumer, extension):
    # Within the framing allowance, so no 413. The reader refused a line over the limit only
    # when it came in more than one read: a 9 KB line was taken in one, a 100 KB one never is.
    framed = b"1;" + b"e" * extension + b"\r\n \r\n0\r\n\r\n"
    status, headers, error = refused(live.port, head(consumer) + framed)
    assert status == 400 and error["code"] == "invalid_input", error
    assert f"longer than {LINE_LIMIT} bytes" in error["message"], error
    assert headers["connection"] == "close"
    still_serving(live.port, consumer)


def test_a_size_line_at_the_line_limit_is_read(live, consumer):
    body = lookup_body(100)
    line = b"%x;" % len(body)
    framed = line + b"e" * (LINE_LIMIT - len(line)) + b"\r\n" + body + b"\r\n0\r\n\r\n"
    assert_looked_up(live, consumer, framed)


# -- gathered on the loop, not read by a thread ------------------------------------------------

# The live server's threads in all (2 workers x 4 threads), twice over: every thread of both
# workers would be held, whichever worker each connection reaches.
TRICKLERS = 16
TRICKLE_EVERY = 0.3


@contextmanager
def trickling(port: int, key: str, count: int, behind: bytes) -> Iterator[list[socket.socket]]:
    """`count` connections each sending a chunked body (after `behind`, a request sent whole
    first) a byte every TRICKLE_EVERY seconds, under the body's declared size, until the block ends."""
    socks = [socket.create_connection(("127.0.0.1", port), timeout=PROMPT) for _ in range(count)]
    stop = threading.Event()

    def trickle() -> None:
        while not stop.wait(TRICKLE_EVERY):
            for sock in socks:
                try:
                    sock.send(b" ")
                except OSError:
                    pass

    sender = threading.Thread(target=trickle, daemon=True)
    try:
        for sock in socks:
            sock.sendall(behind + head(key, path="/v1/hashes") + b"400\r\n{")
        sender.start()
        time.sleep(1.0)  # each has been read, and handed to a thread where that is how it is read
        yield socks
    finally:
        stop.set()
        if sender.is_alive():
            sender.join(PROMPT)
        for sock in socks:
            sock.close()


def batch_lookup(port: int, key: str) -> int:
    # 40 items: past what the loop answers itself (inline.INLINE_MAX_BODY, 2 KiB), so a thread must.
    rng = random.Random(3)
    body = json.dumps({"items": [{"signal": "pdq", "hash": random_pdq(rng)} for _ in range(40)]}).encode()
    assert len(body) > 2048
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=PROMPT)
    try:
        conn.request("POST", "/v1/lookup", body=body,
                     headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        response = conn.getresponse()
        assert len(json.loads(response.read())["results"]) == 40
        return response.status
    finally:
        conn.close()


@pytest.mark.parametrize("behind", [b"", b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"], ids=["first", "pipelined"])
def test_trickling_chunked_bodies_hold_no_thread(live, consumer, behind):
    # Each trickle outlasts PROMPT (the lookup's socket timeout): read by a thread, as before,
    # they held every thread for as long as they kept sending, and the lookup was not answered.
    with trickling(live.port, consumer, TRICKLERS, behind):
        assert batch_lookup(live.port, consumer) == 200
        still_serving(live.port, consumer)


@pytest.mark.parametrize("size", [64, 100, 1000])
@pytest.mark.parametrize("length", [TEST_MAX_CONTENT_LENGTH, TEST_MAX_CONTENT_LENGTH - 1])
def test_a_body_at_or_under_the_limit_in_many_small_chunks_is_read(live, consumer, length, size):
    assert_looked_up(live, consumer, chunked(lookup_body(length), size))


def test_chunk_extensions_and_trailers_are_read_past(live, consumer):
    body = lookup_body(5000)
    pieces = (body[i:i + 500] for i in range(0, len(body), 500))
    framed = b"".join(b"%x;n=%d;q=\"a b\"\r\n%s\r\n" % (len(piece), n, piece) for n, piece in enumerate(pieces))
    assert_looked_up(live, consumer, framed + b"0;end\r\nX-Checksum: 1\r\nX-More: 2\r\n\r\n")


@pytest.mark.parametrize("framed", [
    chunked(lookup_body(30_000), 1),  # one-byte chunks: five bytes of framing a byte
    b"".join(b"1;x=%s\r\n \r\n" % (b"e" * 8000) for _ in range(20)),  # 160 KB of chunk extensions
])
def test_framing_past_its_allowance_is_413_at_once(live, consumer, framed):
    # The allowance is an eighth of the limit and 64 KiB (chunked.framing_allowance): 128 KiB here.
    status, headers, error = refused(live.port, head(consumer) + framed)
    assert status == 413 and error["code"] == "too_large" and "framing" in error["message"], error
    assert headers["connection"] == "close"
    still_serving(live.port, consumer)


def test_requests_pipelined_behind_a_chunked_body_are_answered(live, consumer):
    first = head(consumer) + chunked(lookup_body(3000), 1000)
    second = head(consumer) + chunked(lookup_body(200), 7)
    last = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", live.port), timeout=PROMPT) as sock:
        sock.sendall(first + second + last)
        replies = answers(sock)
    assert [status for status, _, _ in replies] == [200, 200, 200], replies
    assert [json.loads(body)["results"][0]["input"] for _, _, body in replies[:2]] == [f"pdq:{PDQ}"] * 2


# -- BODY_TIMEOUT, shortened for the test -----------------------------------------------------

BODY_TIMEOUT = 1.0


@pytest.fixture(scope="module")
def impatient(tmp_path_factory):
    """A server whose bodies must arrive within BODY_TIMEOUT, and a consumer's key for it."""
    db = tmp_path_factory.mktemp("impatient") / "db.sqlite"
    key = make_keys(db, {"consumer": ("gamma", "consumer")})["consumer"][0]
    server = start_server(db, workers=1, env={"HASHDB_RATE_LIMIT": "0", "HASHDB_BODY_TIMEOUT": str(BODY_TIMEOUT)})
    yield server, key
    server.stop()


def closed_after(sock: socket.socket, trickle: bool) -> tuple[float, bytes]:
    """Seconds until the server closes the connection (a byte sent every 0.2 s meanwhile with
    `trickle`), and what it sent first; fails after PROMPT * 2."""
    started = time.monotonic()
    received = b""
    sock.settimeout(0.2)
    while time.monotonic() - started < PROMPT * 2:
        try:
            if trickle:
                sock.send(b" ")
            data = sock.recv(65536)
        except TimeoutError:
            continue
        except OSError:  # reset: closed with the trickle's last bytes unread
            return time.monotonic() - started, received
        if not data:
            return time.monotonic() - started, received
        received += data
    raise AssertionError(f"still open after {PROMPT * 2} s; received {received[:200]!r}")


@pytest.mark.parametrize("sent", [b"", b"4", b"400\r\n{", b"5\r\nhello\r\n0\r\nX-T"],
                         ids=["head", "size_line", "chunk", "trailers"])
@pytest.mark.parametrize("trickle", [False, True], ids=["stopped", "trickling"])
def test_a_chunked_body_not_whole_within_the_body_timeout_is_closed(impatient, sent, trickle):
    # Read by a thread, each waited up to 30 s a read (worker.IO_TIMEOUT), a trickle for ever.
    server, key = impatient
    with socket.create_connection(("127.0.0.1", server.port), timeout=PROMPT) as sock:
        sock.sendall(head(key) + sent)
        took, received = closed_after(sock, trickle)
    assert received == b"" and took >= BODY_TIMEOUT * 0.9, (took, received)
    still_serving(server.port, key)


@pytest.mark.parametrize("framing", ["chunked", "length"])
def test_a_client_expecting_100_continue_is_told_to_send_its_body_once(live, consumer, framing):
    # curl sends a streamed upload (`-T -`, chunked) or one over 1 MB this way, then waits a
    # second for "100 Continue" before it sends the body anyway. The loop waits for the body,
    # so it says it; the thread, which said it before, would only repeat it.
    body = lookup_body(3000)
    if framing == "chunked":
        sent_head, rest = head(consumer, extra="Expect: 100-continue\r\nConnection: close\r\n"), chunked(body, 1000)
    else:
        sent_head = (f"POST /v1/lookup HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {consumer}\r\n"
                     f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                     "Expect: 100-continue\r\nConnection: close\r\n\r\n").encode()
        rest = body
    with socket.create_connection(("127.0.0.1", live.port), timeout=PROMPT) as sock:
        sock.sendall(sent_head)
        assert sock.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(rest)
        answer = b""
        while data := sock.recv(65536):
            answer += data
    assert answer.startswith(b"HTTP/1.1 200 OK") and b"100 Continue" not in answer, answer[:300]
