"""Slow and hostile HTTP clients, for the serving tests and scripts/bench_hostile.py.

Three kinds, in turn: half a request head and then nothing; a head announcing a 10 GB body
followed by 2 bytes of it; a connection that sends nothing at all. `HostileCrowd` keeps
`count` of them open, re-opening any the server closes, until stopped.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Callable

KINDS = ("half_head", "huge_body", "silent")


def hostile_connection(port: int, kind: str, key: str | None = None) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        if kind == "half_head":
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slo")
        elif kind == "huge_body":
            auth = f"Authorization: Bearer {key}\r\n".encode() if key else b""
            sock.sendall(b"POST /v1/lookup HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                         + auth + b"Content-Length: 10000000000\r\n\r\n{\"")
    except OSError:
        sock.close()
        raise
    return sock


class HostileCrowd:
    def __init__(self, port: int, count: int, key: str | None = None) -> None:
        self.port = port
        self.count = count
        self.key = key
        self.socks: list[socket.socket] = []
        self.opened = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._keep_open, daemon=True)

    def __enter__(self) -> HostileCrowd:
        for n in range(self.count):
            self.socks.append(hostile_connection(self.port, KINDS[n % len(KINDS)], self.key))
        self.opened = self.count
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        for sock in self.socks:
            sock.close()

    def _keep_open(self) -> None:
        # A socket the server closed reads as EOF (or a 413 then EOF): replace it.
        while not self._stop.wait(0.5):
            for n, sock in enumerate(self.socks):
                try:
                    sock.setblocking(False)
                    data = sock.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if data:
                    continue
                sock.close()
                try:
                    self.socks[n] = hostile_connection(self.port, KINDS[n % len(KINDS)], self.key)
                    self.opened += 1
                except OSError:
                    pass


def timed_requests(port: int, requests: int, method: str, path: str, headers: dict[str, str],
                   timeout: float = 30.0, check: Callable[[int], bool] = lambda status: status == 200) -> list[float]:
    """Send `requests` requests over one kept-alive connection; seconds each took. Raises if
    one is not answered within `timeout` or gets a status `check` refuses."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    took = []
    try:
        for _ in range(requests):
            start = time.perf_counter()
            conn.request(method, path, headers=headers)
            response = conn.getresponse()
            response.read()
            took.append(time.perf_counter() - start)
            if not check(response.status):
                raise AssertionError(f"{method} {path} answered {response.status}")
    finally:
        conn.close()
    return took
