"""The worker's main loop reading each connection's next request without blocking, under
deadlines, until it is whole (head, then a Content-Length or chunked body, with Expect:
100-continue answered); refusals answered and drained, answers made on the loop sent, closes
lingered. Why, and the rules it keeps, are in worker.py's docstring; a whole request is the
worker's to hand on (RequestGatherer's `dispatch`), and nothing here runs on a thread."""

from __future__ import annotations

import re
import selectors
import socket
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from gunicorn.workers.gthread import TConn

from hashdb.api.chunked import ChunkedBody, FramingRefused, FramingTooLarge, reader_limits
from hashdb.api.errors import DRAIN_BYTES, body_too_large, error_answer

HEADER_TIMEOUT = 10.0
BODY_TIMEOUT = 30.0
# Per blocking socket call of a thread (sendall: the whole answer), so a client that stops
# reading its answer frees the thread in time; the loop gives one of its own answers as long to
# be taken. A thread reads nothing the loop has not.
IO_TIMEOUT = 30.0
# Request heads larger than this are answered 431 (no request of this API comes close).
MAX_HEAD = 64 * 1024
READ_SIZE = 64 * 1024
DEFAULT_MAX_BODY = 4 * 1024 * 1024

# After an early 413 the refused body is read and dropped as after the app's (errors.DRAIN_BYTES
# of it), for at most this long.
DRAIN_TIMEOUT = 5.0
# Closing a connection after its last answer: what the client may still send is read and
# dropped, up to this much for this long (gunicorn's own limits for the same close).
LINGER_BYTES = 64 * 1024
LINGER_TIMEOUT = 2.0

# A TLS record of type handshake (22), protocol major version 3: what a ClientHello starts with,
# and what no HTTP/1.x request line does.
TLS_HANDSHAKE = b"\x16\x03"
_CONTENT_LENGTH = re.compile(rb"^content-length[ \t]*:[ \t]*(\S*)[ \t]*\r?$", re.IGNORECASE | re.MULTILINE)
_EXPECT_CONTINUE = re.compile(rb"^expect[ \t]*:[ \t]*100-continue[ \t]*\r?$", re.IGNORECASE | re.MULTILINE)
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_TRANSFER_ENCODING = re.compile(rb"^transfer-encoding[ \t]*:([^\r\n]*)", re.IGNORECASE | re.MULTILINE)


# The longest Transfer-Encoding value an answer repeats back.
MAX_CODING_SHOWN = 64


def _codings(values: list[bytes]) -> list[bytes]:
    """A head's Transfer-Encoding values as one list of codings, in order, lower case."""
    return [coding.strip(b" \t").lower() for value in values for coding in value.split(b",")]


def coding_refusal(values: list[bytes]) -> tuple[int, str, str, str] | None:
    """How a head's Transfer-Encoding is refused (status, reason, code, message), or None for
    plain chunked, the one coding read. gunicorn's parser answered an unknown coding 501 (a 5xx
    for the client's mistake), and took gzip or deflate before chunked and ignored it: the body
    was read as if plain, a gzip one then refused as "not UTF-8"."""
    codings = _codings(values)
    if codings == [b"chunked"]:
        return None
    shown = b", ".join(value.strip(b" \t") for value in values).decode("latin-1")[:MAX_CODING_SHOWN]
    if codings[-1] == b"chunked" and b"chunked" not in codings[:-1]:
        # The body's length can be told, but not what it holds: as for a Content-Encoding
        # the API does not take (bodies.json_body), 415.
        return (415, "Unsupported Media Type", "unsupported_media_type",
                f"Transfer-Encoding {shown!r} is not accepted: only chunked is; send the body "
                "uncompressed, with Transfer-Encoding: chunked alone or a Content-Length")
    # RFC 9112 section 6.3: codings that do not end in chunked (once) leave a request's body
    # without a length, which the server MUST answer 400.
    return (400, "Bad Request", "invalid_input",
            f"Transfer-Encoding {shown!r} is not accepted: only chunked is, once and last, "
            "or the body's length cannot be told")


def _setting(app: Any, name: str) -> Any:
    """The app's config value `name`, or None (unset, or an app without a config)."""
    config = getattr(app, "config", None)
    return config.get(name) if config is not None else None


def body_limit(app: Any) -> int:
    """The app's MAX_CONTENT_LENGTH, the most a request body may hold."""
    limit = _setting(app, "MAX_CONTENT_LENGTH")
    return int(limit) if limit else DEFAULT_MAX_BODY


def body_timeout(app: Any) -> float:
    """The app's BODY_TIMEOUT (HASHDB_BODY_TIMEOUT): how long a body may take after its head."""
    timeout = _setting(app, "BODY_TIMEOUT")
    return float(timeout) if timeout else BODY_TIMEOUT


class Gathering:
    """What the main loop has read of one connection's next request."""

    def __init__(self, now: float) -> None:
        self.buffer = bytearray()
        self.deadline = now + HEADER_TIMEOUT
        self.head_end = -1  # index just past the blank line, once seen
        self.needed = -1  # total bytes of head and body, once known
        self.chunks: ChunkedBody | None = None  # a chunked body's framing, as it arrives
        self.drain_left = -1  # answered already: bytes of the body still to read and drop
        self.idle = False  # kept alive after an inline answer, no byte of the next request yet
        self.outgoing = b""  # an inline answer the socket has not taken yet
        self.close_after = False  # ... and whether the connection ends with it


class RequestGatherer:
    """The connections the loop holds itself, each with its Gathering: a request arriving (or
    awaited on a kept-alive connection), a refused one draining, an answer made on the loop
    still being sent, a close lingering. Every one has a deadline, and drop_expired ends those
    past it."""

    def __init__(self, poller: selectors.BaseSelector, cfg: Any, app: Any,
                 dispatch: Callable[[TConn, Gathering], None],
                 close_connection: Callable[[TConn], None]) -> None:
        """`dispatch`: a request is whole, or is gunicorn's parser's to refuse (the worker answers
        it on the loop, or calls release and hands it to a thread); `close_connection`: one is
        done with, to be closed and no longer counted among the worker's."""
        self.poller = poller
        self.cfg = cfg
        self.app = app
        self.dispatch = dispatch
        self.close_connection = close_connection
        self.chunk_limits = reader_limits(cfg)
        self.states: dict[TConn, Gathering] = {}

    def __len__(self) -> int:
        return len(self.states)

    def gather(self, conn: TConn, ahead: bytes = b"") -> None:
        """Read the connection's next request on this loop; `ahead`: what of it has been read."""
        conn.sock.setblocking(False)
        state = self.states[conn] = Gathering(time.monotonic())
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_readable, conn))
        if ahead:
            state.buffer += ahead
            self._take(conn, state)

    def release(self, conn: TConn) -> None:
        """The worker takes the connection back (its request goes to a thread)."""
        self.poller.unregister(conn.sock)
        del self.states[conn]

    def _on_readable(self, conn: TConn, client: socket.socket) -> None:
        state = self.states.get(conn)
        if state is None:
            return
        try:
            data = conn.sock.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.drop(conn)
            return
        if not data:
            self.drop(conn)
            return
        if state.drain_left >= 0:
            state.drain_left -= len(data)
            if state.drain_left <= 0:
                self.drop(conn)
            return
        if state.idle:
            state.idle = False
            state.deadline = time.monotonic() + HEADER_TIMEOUT
        state.buffer += data
        self._take(conn, state)

    def _take(self, conn: TConn, state: Gathering) -> None:
        """Act on what the buffer holds: wait for more, refuse, or dispatch the request whole."""
        if state.head_end < 0 and state.buffer.startswith(TLS_HANDSHAKE):
            # An https client at a plain-http port: it waits for a server hello that never
            # comes. Closing at once ends its wait with an error instead of HEADER_TIMEOUT.
            self.drop(conn)
            return
        if state.head_end < 0:
            end = state.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(state.buffer) > MAX_HEAD:
                    self._refuse(conn, state, 431, "Request Header Fields Too Large", "headers_too_large",
                                 f"request head larger than {MAX_HEAD} bytes")
                return
            state.head_end = end + 4
            if not self._read_head(conn, state):
                return
        if state.chunks is not None:
            self._take_chunks(conn, state, state.chunks)
        elif len(state.buffer) >= state.needed:
            self.dispatch(conn, state)

    def _read_head(self, conn: TConn, state: Gathering) -> bool:
        """How the body is framed, from the head just arrived, and its deadline; False once the
        request has left the buffer (refused, or dispatched for gunicorn's parser to refuse)."""
        head = bytes(state.buffer[: state.head_end])
        limit = body_limit(self.app)
        codings = _TRANSFER_ENCODING.findall(head)
        lengths = _CONTENT_LENGTH.findall(head)
        refusal = coding_refusal(codings) if codings else None
        if refusal is not None:
            self._refuse(conn, state, *refusal)
            return False
        if codings and not lengths:
            state.chunks = ChunkedBody(state.head_end, limit, *self.chunk_limits)
            state.deadline = time.monotonic() + body_timeout(self.app)
            return self._continue(conn, state, head)
        if codings or len(lengths) > 1 or (lengths and not lengths[0].isdigit()):
            # gunicorn's parser refuses this framing (400) before it reads a byte of the body:
            # chunked with a Content-Length, lengths that disagree.
            self.dispatch(conn, state)
            return False
        length = int(lengths[0]) if lengths else 0
        if length > limit:
            self._refuse(conn, state, 413, "Content Too Large", "too_large", body_too_large(limit))
            return False
        state.needed = state.head_end + length
        state.deadline = time.monotonic() + body_timeout(self.app)
        return not length or self._continue(conn, state, head)

    def _continue(self, conn: TConn, state: Gathering, head: bytes) -> bool:
        """Answer `Expect: 100-continue` (HTTP/1.1) while the body is still to come. The client
        waits for it before it sends the body (curl for a second, then sends anyway), and the
        body is read here: gunicorn says it on the thread, once the body has arrived (see
        HashdbWorker.handle_request). False if the connection is gone."""
        if len(state.buffer) > state.head_end or not _EXPECT_CONTINUE.search(head):
            return True
        if not head.split(b"\r\n", 1)[0].endswith(b" HTTP/1.1"):
            return True  # RFC 9110 section 10.1.1: an HTTP/1.0 client's expectation is ignored
        try:
            sent = conn.sock.send(CONTINUE)
        except (BlockingIOError, InterruptedError):
            return True  # a client that does not read what it is sent: it sends after its wait
        except OSError:
            sent = 0
        if sent != len(CONTINUE):
            self.drop(conn)
            return False
        return True

    def _take_chunks(self, conn: TConn, state: Gathering, chunks: ChunkedBody) -> None:
        """A chunked body: dispatched once the buffer holds its end, or the point where the
        thread's reader refuses it (a size over the limit, a size line that is no size: the
        reader's 413 or 400, or the app's earlier answer, such as a 401); framing past its
        allowance is answered 413 here. The reader reads only what was gathered (Gathered)."""
        try:
            end = chunks.advance(state.buffer)
        except FramingTooLarge as exc:
            self._refuse(conn, state, 413, "Content Too Large", "too_large", str(exc))
            return
        except FramingRefused as exc:
            self._refuse(conn, state, 400, "Bad Request", "invalid_input", str(exc))
            return
        if end is not None:
            self.dispatch(conn, state)

    def _refuse(self, conn: TConn, state: Gathering, status: int, reason: str, code: str, message: str) -> None:
        """Answer now, in the API's error shape, then read and drop what the client is still
        sending (up to DRAIN_BYTES, within DRAIN_TIMEOUT) so it reads the answer, not a reset."""
        answer = error_answer(status, reason, code, message)
        try:
            conn.sock.send(answer)  # non-blocking: a reply this small fits the socket buffer
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self.drop(conn)
            return
        state.buffer.clear()
        state.drain_left = DRAIN_BYTES
        state.deadline = time.monotonic() + DRAIN_TIMEOUT

    # -- answers made on the loop (inline.py) ---------------------------------------------------

    def answer(self, conn: TConn, data: bytes, close: bool) -> bool:
        """Send an answer made on the loop; then the connection awaits its next request, or
        lingers before the close. True if the socket took all of it at once."""
        try:
            sent = conn.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self.drop(conn)
            return False
        if sent < len(data):
            # The socket's buffer is full (a client not reading): the loop sends the rest.
            state = self.states[conn]
            state.outgoing, state.close_after = data[sent:], close
            state.deadline = time.monotonic() + IO_TIMEOUT
            self.poller.modify(conn.sock, selectors.EVENT_WRITE, partial(self._on_writable, conn))
            return False
        self._after_answer(conn, close)
        return True

    def _on_writable(self, conn: TConn, client: socket.socket) -> None:
        state = self.states.get(conn)
        if state is None:
            return
        try:
            sent = conn.sock.send(state.outgoing)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.drop(conn)
            return
        state.outgoing = state.outgoing[sent:]
        if not state.outgoing:
            self.poller.modify(conn.sock, selectors.EVENT_READ, partial(self._on_readable, conn))
            self._after_answer(conn, state.close_after)

    def _after_answer(self, conn: TConn, close: bool) -> None:
        if close:
            self.poller.unregister(conn.sock)
            del self.states[conn]
            self.linger(conn)
            return
        # Kept alive: the socket stays registered for the next request, which has the
        # keep-alive timeout to start arriving, then HEADER_TIMEOUT to arrive whole.
        state = Gathering(time.monotonic())
        state.idle = True
        state.deadline = time.monotonic() + self.cfg.keepalive
        self.states[conn] = state

    # -- closing ----------------------------------------------------------------------------

    def linger(self, conn: TConn) -> None:
        """Close after the last answer as RFC 9112 section 9.6 asks (FIN first, then read what the
        client still sends, so its data does not make the kernel reset the connection and cut
        the answer short), without waiting: the poller reads, drop_expired ends it."""
        try:
            conn.sock.setblocking(False)
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self.close_connection(conn)
            return
        state = Gathering(time.monotonic())
        state.drain_left = LINGER_BYTES
        state.deadline = time.monotonic() + LINGER_TIMEOUT
        self.states[conn] = state
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_readable, conn))

    def drop(self, conn: TConn) -> None:
        self.states.pop(conn, None)
        try:
            self.poller.unregister(conn.sock)
        except (OSError, KeyError, ValueError):
            pass
        self.close_connection(conn)

    def drop_expired(self, now: float) -> None:
        for conn in [c for c, state in self.states.items() if state.deadline <= now]:
            self.drop(conn)

    def cap_idle(self, deadline: float) -> None:
        """Kept-alive connections with no byte of their next request close by `deadline` at the
        latest (a stopping worker, see HashdbWorker._cap_keepalive)."""
        for state in self.states.values():
            # A request still arriving (a large body sent slowly) keeps its own deadline, within
            # gunicorn's graceful timeout: cut at the linger, an upload in progress when the
            # reload came was dropped without an answer (found in trial).
            if state.idle:
                state.deadline = min(state.deadline, deadline)
