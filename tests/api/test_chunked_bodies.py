"""End to end against a real `hashdb serve`, over raw sockets: chunked bodies up to the limit
are read."""

from __future__ import annotations

import http.client
import json
import socket

import pytest

from serverproc import TEST_MAX_CONTENT_LENGTH

# A limit against hanging, not a speed target.
PROMPT = 5.0
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


@pytest.fixture
def consumer(live_keys):
    return live_keys["consumer"][0]


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
