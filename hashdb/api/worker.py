"""The gunicorn worker `hashdb serve` runs: gunicorn's threaded worker, except that a
request reaches a thread only once it has arrived whole.

gunicorn's gthread worker hands a connection to a thread as soon as its first bytes arrive;
the thread then blocks reading the rest. Two clients that send half a header and stop hold
two threads for as long as they like, and a body announced as 10 GB holds one until the
client leaves. Here the worker's main loop reads every request head and body (of a
Content-Length, or chunked) without blocking, alongside every other connection, under a
deadline; a thread gets only requests it can answer at once. So slow or hostile clients cost
a buffer and a poll slot each, never a thread:

- the head must arrive within HEADER_TIMEOUT of the first wait, the body within BODY_TIMEOUT
  (the app's BODY_TIMEOUT, HASHDB_BODY_TIMEOUT); otherwise the connection is closed;
- a body announced larger than the app's MAX_CONTENT_LENGTH is answered 413 at once, unread,
  and a head over MAX_HEAD 431;
- a chunked body's framing is followed as its bytes arrive (chunked.ChunkedBody): a thread
  gets the request once its last chunk and trailers are in, or as soon as a size line arrives
  that the thread's reader refuses (a chunk declared past the limit 413, a size that is no
  size 400), and that reader reads only what was gathered; framing past its allowance
  (one-byte chunks, kilobytes of extensions) is answered 413 on the loop, a line ended by a
  bare LF or a size line over gunicorn's line limit 400, and a Transfer-Encoding other than
  plain chunked 415 or 400 as soon as the head is in;
- a client that asks `Expect: 100-continue` is answered "100 Continue" once its head is in;
- a request pipelined behind another is gathered the same way once a thread has answered the
  one before; a thread's own socket writes (a client that does not read its answer) time out
  after IO_TIMEOUT;
- each worker holds at most `worker_connections` connections (`hashdb serve --max-connections`);
  past that it stops accepting until one closes, and the kernel's backlog queues the rest.

The loop's side of that, reading and refusing (and the limits named above), is gathering.py's
RequestGatherer; this module is the gunicorn Worker that wires it in: what it accepts, which
whole request goes to a thread and which is answered on the loop, and gunicorn's thread side.

A plain lookup or health check read whole is answered on the main loop itself (inline.py):
for a request that costs well under a millisecond, the hand-off to a thread and gunicorn's
parser cost more than the answer. Everything else goes to a thread as described above.

Connections are kept alive between requests (`keepalive` seconds), so a client that reuses
its connection pays no TCP handshake per lookup; a worker takes new connections only while no
other worker holds fewer (balance.py), so a few kept-alive clients keep every core busy.
"""

from __future__ import annotations

import errno
import gc
import os
import socket
import time
from concurrent.futures import Future
from datetime import timedelta
from typing import Any

from gunicorn import util as gunicorn_util
from gunicorn.http.body import Body, ChunkedReader
from gunicorn.http.errors import ParseException
from gunicorn.http.wsgi import WSGIErrorsWrapper
from gunicorn.workers.gthread import ThreadWorker, TConn
from werkzeug.exceptions import HTTPException

from hashdb.api import inline, readiness
from hashdb.api.balance import ConnectionShares
from hashdb.api.chunked import Gathered, LimitedChunkedReader
from hashdb.api.errors import code_for, error_answer
from hashdb.api.gathering import IO_TIMEOUT, Gathering, RequestGatherer, body_limit

# While another worker holds fewer connections, how often (seconds) a worker looks again: its
# own poll may have nothing else to wake it.
BALANCE_RECHECK = 0.05
# The main loop runs once per batch of socket events, many times a second under load: the
# arbiter's heartbeat (a file's mtime, one syscall) and the scan of gathering connections for
# missed deadlines need not run every time. Deadlines are seconds long; the heartbeat's
# timeout is `hashdb serve`'s --timeout (60 s).
HOUSEKEEPING_EVERY = 0.2
# The longest a replacing worker waits for its own index before it accepts (see
# HashdbWorker._wait_for_index_if_replacing); a 10M index maps in about 2 s.
REPLACING_WAIT = 20.0
# How often (seconds) a worker busy answering looks for new connections between answers.
ACCEPT_EVERY = 0.005


def _write_json_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    answer = error_answer(status_int, reason, code_for(status_int, reason), mesg or reason)
    gunicorn_util.write_nonblock(sock, answer)


# gunicorn answers a request its parser refuses (a malformed request line, a header line over
# its limit, a Content-Length of -1) with an HTML page: Worker.handle_error calls
# util.write_error. The API promises JSON errors everywhere, so in the processes this module is
# loaded in (`hashdb serve` only) that page is written in the API's shape instead.
gunicorn_util.write_error = _write_json_error


class TimedSocket(socket.socket):
    """A client socket whose "blocking" mode has a timeout: gunicorn's thread code switches
    sockets to blocking, and a read or write it makes must not wait forever either."""

    def setblocking(self, flag: bool) -> None:
        if flag:
            self.settimeout(IO_TIMEOUT)
        else:
            super().setblocking(False)


def _timed(sock: socket.socket) -> TimedSocket:
    return TimedSocket(sock.family, sock.type, sock.proto, fileno=sock.detach())


class HashdbWorker(ThreadWorker):  # type: ignore[misc]
    alive: bool  # gunicorn's, untyped there: False once the worker is stopping
    gatherer: RequestGatherer  # the connections the loop holds itself; made as run() starts

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.shares: ConnectionShares | None = None
        self._accept_wanted = False
        self._notified = self._swept = self._accept_tried = float("-inf")
        self._date = inline.DateHeader()
        self._inline_limits = inline.Limits.of(self.cfg)
        self._wsgi_errors: WSGIErrorsWrapper | None = None

    def init_process(self) -> None:
        self.shares = ConnectionShares.for_server()
        if self.shares is not None:
            self.shares.claim(os.getpid())
        super().init_process()

    def load_wsgi(self) -> None:
        super().load_wsgi()
        self._wait_for_index_if_replacing()
        # The app, its modules and settings live as long as the worker: frozen, the garbage
        # collector's full passes no longer walk them. Unfrozen, each full pass walked some
        # 78,000 objects, a pause of about 100 ms on this loop (on a busy 2-core machine) while
        # every connection of the worker waited: the tail of the latency at 64 connections.
        gc.collect()
        gc.freeze()

    def run(self) -> None:
        # gunicorn's init_process makes the poller, then loads the app, then runs the loop.
        self.gatherer = RequestGatherer(self.poller, self.cfg, self.wsgi, self._dispatch, self._close)
        super().run()

    def _wait_for_index_if_replacing(self) -> None:
        """A worker started while others already serve (a reload's kill -HUP, a worker that
        died or reached max_requests) takes no connection until its index is loaded: the old
        workers stop accepting at once, so every lookup it took meanwhile was a 503 while it
        loaded (at 1M hashes about half a second of them). Connections wait in the listening
        socket's backlog instead. At first start nobody serves yet, and /readyz tells a load
        balancer when to send traffic, so the index loads behind answers there."""
        runtime = getattr(self.wsgi, "extensions", {}).get("hashdb")
        if runtime is None or not readiness.has_served():
            return
        # Under gunicorn's heartbeat timeout, which a worker that never answers would exceed.
        runtime.wait_ready(max(1.0, min(REPLACING_WAIT, self.cfg.timeout / 2)))

    # -- connections arriving -------------------------------------------------------------

    def set_accept_enabled(self, enabled: bool) -> None:
        # gunicorn turns accepting off at worker_connections; the fair share can turn it off too.
        self._accept_wanted = enabled
        super().set_accept_enabled(enabled and self._fair())

    def _fair(self) -> bool:
        return self.shares is None or self.shares.may_accept(self.nr_conns)

    def wait_for_and_dispatch_events(self, timeout: float) -> None:
        if self.shares is not None:
            self.shares.publish(self.nr_conns)
            fair = self._fair()
            if (self._accept_wanted and fair) != self._accepting:
                super().set_accept_enabled(self._accept_wanted and fair)
            if self._accept_wanted and not fair:
                timeout = min(timeout, BALANCE_RECHECK)
        super().wait_for_and_dispatch_events(timeout)

    def accept(self, listener: socket.socket) -> None:
        """Every connection waiting, while this worker may take them. gunicorn accepts one a
        pass of the loop, and a pass of a busy worker answers every ready request first: a
        client pool opening 64 connections at once had some of them wait 2-4 s in the backlog
        for their first answer (the 64-connection rows of BENCHMARKS.md, "API")."""
        while self.nr_conns < self.worker_connections and self._fair():
            try:
                client, address = listener.accept()
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                    raise
                return
            self.nr_conns += 1
            if self.shares is not None:
                self.shares.publish(self.nr_conns)
            conn = TConn(self.cfg, _timed(client), address, listener.getsockname())
            self._gather(conn)

    def on_client_socket_readable(self, conn: TConn, client: socket.socket) -> None:
        """A kept-alive connection has its next request coming: gather it too."""
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self._gather(conn)

    def _gather(self, conn: TConn, ahead: bytes = b"") -> None:
        """Read the connection's next request on this loop; `ahead`: what of it has been read."""
        self.gatherer.gather(conn, ahead)

    def _dispatch(self, conn: TConn, state: Gathering) -> None:
        """The request is whole (or is the parser's to refuse): answered here if it is a plain
        lookup (inline.py), else on to a thread."""
        # A connection a thread has served keeps gunicorn's parser and stays with the threads.
        if conn.parser is None and state.needed >= 0:
            request = inline.parse(state.buffer, state.head_end, self._inline_limits)
            if request is not None:
                self._answer_inline(conn, request)
                return
        self.gatherer.release(conn)
        conn.sock.setblocking(True)
        conn.init()
        conn.parser.unreader.unread(bytes(state.buffer))
        conn.data_ready = True
        self.enqueue_req(conn)

    # -- lookups answered on this loop (inline.py) ---------------------------------------------

    def _answer_inline(self, conn: TConn, request: inline.InlineRequest) -> None:
        started = time.monotonic()
        if self._wsgi_errors is None:
            self._wsgi_errors = WSGIErrorsWrapper(self.cfg)
        environ = inline.environ(request, conn.client, conn.server, self.cfg, self._wsgi_errors)
        answer = inline.Answer()
        # The same rules as gunicorn's handle_request: a worker past max_requests restarts, a
        # stopping worker or a full keep-alive table closes after the answer.
        self.nr += 1
        close = (request.close or not self.alive or not self.cfg.keepalive
                 or len(self.keepalived_conns) + len(self.gatherer) > self.max_keepalived)
        if self.nr >= self.max_requests:
            if self.alive:
                self.log.info("Autorestarting worker after current request.")
                self.alive = False
            close = True
        try:
            result = self.wsgi(environ, answer.start_response)
            try:
                body = b"".join(result)
            finally:
                if hasattr(result, "close"):
                    result.close()
            data = answer.encode(request, body, close, self._date(time.time()))
        except Exception:
            self.log.exception("Error handling request %s %s", request.method, request.path)
            answer.status, close = "500 Internal Server Error", True
            data = error_answer(500, "Internal Server Error", "internal_error", "internal server error")
        if getattr(self.log, "access_log_enabled", True):
            self.log.access(answer, None, environ, timedelta(seconds=time.monotonic() - started))
        if self.gatherer.answer(conn, data, close):
            self._accept_between_answers()

    def _accept_between_answers(self) -> None:
        """Take waiting connections between answers too, not only once a pass: a pass answers
        every ready request first (tens of milliseconds at 32 connections), and the fair share
        hands new connections to the workers in turns of one or two, so a burst of 64 took
        about 2 s to be accepted. At most once every ACCEPT_EVERY: an accept that finds
        none costs a system call."""
        now = time.monotonic()
        if now - self._accept_tried < ACCEPT_EVERY or not (self._accept_wanted and self.alive):
            return
        self._accept_tried = now
        for listener in self.sockets:
            self.accept(listener)

    # -- on a thread ----------------------------------------------------------------------------

    def handle_request(self, req: Any, conn: TConn) -> bool:
        """gunicorn's, with a chunked body read by a reader that knows the body limit, from what
        this loop gathered only. The reader is swapped before the app reads a byte: gunicorn's
        builds nothing until read."""
        if type(req.body.reader) is ChunkedReader:
            req.body = Body(LimitedChunkedReader(req, Gathered(req.unreader), body_limit(self.wsgi)))
        # The body is here already: "100 Continue" went from the loop while it was awaited
        # (RequestGatherer._continue), and one more now would only follow it.
        req._expected_100_continue = False
        return bool(super().handle_request(req, conn))

    def _keepalive_after(self, conn: TConn, keepalive: bool) -> bool:
        """After an answer, gunicorn reads and drops a body the app left unread. A chunked one
        broken or over the limit raised out of that read, and gunicorn wrote an error answer
        behind the one already sent, to no request (a 401, then a 400 for a size line of "zz"):
        the connection just closes."""
        try:
            return bool(super()._keepalive_after(conn, keepalive))
        except (ParseException, HTTPException):
            return False

    # -- back on the main loop ------------------------------------------------------------------

    def finish_request(self, conn: TConn, fs: Future[Any]) -> None:
        """A thread is done with a connection. gunicorn closes one that is not kept alive
        gracefully, on this loop: a FIN, then a blocking read of up to 2 s for the client's
        own; a client that asked to close and then kept its end open held every connection of
        the worker for those 2 s. Here the reading is left to the poller (RequestGatherer.linger)."""
        if fs.cancelled() or (fs.exception() is None and not fs.result()):
            self.gatherer.linger(conn)
            return
        if fs.exception() is None and conn.parser is not None:
            ahead = conn.parser.unreader.take_buffered()
            if ahead:
                # The client sent its next request behind the last (pipelined): what this loop
                # read of it waits in gunicorn's parser. It is gathered here as one that arrives
                # later is; gunicorn handed it to a thread as it was, which then read the rest.
                self._gather(conn, ahead)
                return
        super().finish_request(conn, fs)

    def _close(self, conn: TConn) -> None:
        """A connection the loop held is done with (gunicorn's count goes with it)."""
        self.nr_conns -= 1
        conn.close()

    # -- deadlines and shutdown -----------------------------------------------------------

    def notify(self) -> None:
        now = time.monotonic()
        if now - self._notified >= HOUSEKEEPING_EVERY:
            self._notified = now
            super().notify()

    def murder_pending(self) -> None:
        super().murder_pending()
        now = time.monotonic()
        if now - self._swept < HOUSEKEEPING_EVERY:
            return
        self._swept = now
        self.gatherer.drop_expired(now)

    def _cap_keepalive(self, deadline: float) -> None:
        """Stopping (a reload's kill -HUP, SIGTERM): connections this loop holds kept alive after
        an inline answer stay open until `deadline` (gunicorn's linger, 2 s) as gunicorn's own
        kept-alive ones do, those with a request still arriving until it has (or its own
        deadline), and a request that arrives whole meanwhile is answered with "Connection:
        close". Dropped at once, a reload under load reset every client that had just sent its
        next request on a kept-alive connection: 7 to 10 read errors a reload under wrk at 16
        connections."""
        super()._cap_keepalive(deadline)
        self.gatherer.cap_idle(deadline)
