"""Lookups answered on the worker's main loop, without a thread.

A single lookup costs about 0.4 ms of CPU in the service and the lean adapter (lean.py). Handing
it to a thread and back cost more than that: gunicorn's Python request parser, its Response
object, a future and its callback, and two hand-offs of the GIL between the loop and the thread.
So a request the loop has read whole (gathering.py) that is a plain HTTP/1.x GET or small POST of
/v1/lookup, or a GET of /healthz or /readyz (what load balancers poll), is parsed here and
answered by the WSGI app on the loop itself.

Only requests that are unambiguous by every rule gunicorn's parser applies are taken: a strict
request line, token header names without underscores (gunicorn drops those), visible-ASCII
values, no repeated header, no Transfer-Encoding, Expect, Upgrade or forwarded-scheme header,
limits no larger than gunicorn's, the bytes of exactly one request. Anything else returns None
and goes to a thread as before, where gunicorn's parser accepts it or answers its error, so
the fast path changes no answer, only who computes it. A lookup is bounded work (an index
search and a few store reads), so the loop's other connections wait at most that long; batches
larger than INLINE_MAX_BODY go to threads.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any

from gunicorn import SERVER, SERVER_SOFTWARE

LOOKUP = "/v1/lookup"
# About 20 PDQ hashes of a POST batch, a few milliseconds of index work at 10M hashes: the most
# one request may hold the loop. Larger batches gain nothing here (the server's share of their
# CPU is small) and are answered by a thread.
INLINE_MAX_BODY = 2 * 1024

_REQUEST_LINE = re.compile(rb"(GET|POST) ((/v1/lookup|/healthz|/readyz)(?:\?([\x21\x22\x24-\x7e]*))?) HTTP/1\.([01])")
# RFC 9110 tokens, less "_": gunicorn drops header names with underscores (its header_map).
_FIELD = re.compile(rb"([!#$%&'*+\-.^`|~0-9A-Za-z]+):[ \t]*((?:[\x21-\x7e](?:[\x20-\x7e\t]*[\x21-\x7e])?)?)[ \t]*")
_REFUSED = frozenset({"TRANSFER-ENCODING", "EXPECT", "UPGRADE", "HTTP2-SETTINGS"})


@dataclass(frozen=True, slots=True)
class InlineRequest:
    method: str
    target: str  # as sent: path and query
    path: str
    query: str
    minor: int  # HTTP/1.minor
    headers: tuple[tuple[str, str], ...]  # names upper-case, as gunicorn gives them
    body: bytes
    close: bool  # the client asked to close after this answer (or HTTP/1.0 did not ask to keep)


@dataclass(frozen=True, slots=True)
class Limits:
    """What parse needs of gunicorn's settings, read once per worker: they do not change while
    it runs, and rebuilding the set of scheme headers cost every request a few microseconds."""

    request_line: int  # 0: no limit, as in gunicorn
    fields: int
    field_size: int  # 0: no limit
    scheme_headers: frozenset[str]  # upper-case

    @classmethod
    def of(cls, cfg: Any) -> Limits:
        return cls(cfg.limit_request_line, cfg.limit_request_fields, cfg.limit_request_field_size,
                   frozenset(name.upper() for name in cfg.secure_scheme_headers))


def parse(data: bytes | bytearray, head_end: int, limits: Limits) -> InlineRequest | None:
    """The one request in `data` (its head ends at `head_end`), or None if a thread should take it."""
    head = bytes(data[: head_end - 4])
    lines = head.split(b"\r\n")
    line = lines[0]
    if limits.request_line and len(line) > limits.request_line:
        return None
    match = _REQUEST_LINE.fullmatch(line)
    if match is None or len(lines) - 1 > limits.fields:
        return None
    secure = limits.scheme_headers
    field_limit = limits.field_size
    headers: list[tuple[str, str]] = []
    seen: set[str] = set()
    length = 0
    for raw in lines[1:]:
        if field_limit and len(raw) > field_limit:
            return None
        field = _FIELD.fullmatch(raw)
        if field is None:
            return None
        name = field.group(1).decode("ascii").upper()
        if name in seen or name in _REFUSED or name in secure:
            return None
        seen.add(name)
        value = field.group(2).decode("ascii")
        if name == "CONTENT-LENGTH":
            if not value.isdigit():
                return None
            length = int(value)
        headers.append((name, value))
    method, target, path = (match.group(i).decode("ascii") for i in (1, 2, 3))
    if method == "POST" and path != LOOKUP:
        return None
    if length > INLINE_MAX_BODY or len(data) != head_end + length or (method == "GET" and length):
        return None
    minor = int(match.group(5))
    connection = next((value.lower() for name, value in headers if name == "CONNECTION"), None)
    if connection not in (None, "close", "keep-alive"):
        return None
    close = connection == "close" or (minor == 0 and connection != "keep-alive")
    query = (match.group(4) or b"").decode("ascii")
    return InlineRequest(method, target, path, query, minor, tuple(headers), bytes(data[head_end:]), close)


def environ(request: InlineRequest, client: Any, server: Any, cfg: Any, errors: Any) -> dict[str, Any]:
    """The WSGI environ gunicorn's wsgi.create builds for the same request."""
    env: dict[str, Any] = {
        "wsgi.errors": errors,
        "wsgi.version": (1, 0),
        "wsgi.multithread": True,
        "wsgi.multiprocess": cfg.workers > 1,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,
        "wsgi.input": io.BytesIO(request.body),
        "wsgi.url_scheme": "http",
        "SERVER_SOFTWARE": SERVER_SOFTWARE,
        "REQUEST_METHOD": request.method,
        "QUERY_STRING": request.query,
        "RAW_URI": request.target,
        "SERVER_PROTOCOL": f"HTTP/1.{request.minor}",
        "PATH_INFO": request.path,
        "SCRIPT_NAME": "",
    }
    for name, value in request.headers:
        if name == "CONTENT-TYPE":
            env["CONTENT_TYPE"] = value
        elif name == "CONTENT-LENGTH":
            env["CONTENT_LENGTH"] = value
        else:
            env["HTTP_" + name.replace("-", "_")] = value
    if isinstance(client, (str, bytes)):
        env["REMOTE_ADDR"] = client.decode() if isinstance(client, bytes) else client
    else:
        env["REMOTE_ADDR"], env["REMOTE_PORT"] = client[0], str(client[1])
    if isinstance(server, str):
        parts = server.split(":")
        env["SERVER_NAME"], env["SERVER_PORT"] = parts[0], parts[1] if len(parts) > 1 else ""
    else:
        env["SERVER_NAME"], env["SERVER_PORT"] = server[0], str(server[1])
    return env


class DateHeader:
    """gunicorn's Date value, formatted once a second rather than once a request."""

    def __init__(self) -> None:
        self._second = -1
        self._value = ""

    def __call__(self, now: float) -> str:
        second = int(now)
        if second != self._second:
            self._second, self._value = second, formatdate(second, usegmt=True)
        return self._value


@dataclass(slots=True)
class Answer:
    """What the app answered, as gunicorn would have sent it."""

    status: str = ""
    headers: list[tuple[str, str]] | None = None
    sent: int = 0  # body bytes, for the access log

    def start_response(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        self.status, self.headers = status, headers

    def encode(self, request: InlineRequest, body: bytes, close: bool, date: str) -> bytes:
        self.sent = len(body)
        lines = [f"HTTP/1.{request.minor} {self.status}\r\nServer: {SERVER}\r\nDate: {date}\r\n"
                 f"Connection: {'close' if close else 'keep-alive'}\r\n"]
        lines.extend(f"{name}: {value}\r\n" for name, value in self.headers or ())
        lines.append("\r\n")
        return "".join(lines).encode("latin-1") + body
