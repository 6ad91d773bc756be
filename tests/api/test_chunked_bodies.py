"""End to end against a real `hashdb serve`, over raw sockets: a chunked body's size lines.

A chunk declared past the body limit is answered 413 as soon as its size line arrives, a size
line that is no size 400, each closing the connection; bodies up to the limit are read. The
socket timeouts are far under the 30 s a thread's read may wait (worker.IO_TIMEOUT), which
is what such a request waited before: a refusal that waits for the chunk fails them."""

from __future__ import annotations

import http.client
import json
import socket

import pytest

from serverproc import TEST_MAX_CONTENT_LENGTH

# Far under worker.IO_TIMEOUT (30 s): a limit against waiting for the chunk, not a speed target.
PROMPT = 5.0
TOO_LARGE = f"request body larger than {TEST_MAX_CONTENT_LENGTH} bytes"
PDQ = "f" * 64


def head(key: str, path: str = "/v1/lookup", extra: str = "") -> bytes:
    auth = f"Authorization: Bearer {key}\r\n" if key else ""
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\n"
            f"Transfer-Encoding: chunked\r\n{extra}\r\n").encode()


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
    sent = head(consumer, extra="Connection: close\r\n") + chunked(lookup_body(length), size)
    with socket.create_connection(("127.0.0.1", live.port), timeout=PROMPT) as sock:
        sock.sendall(sent)
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
