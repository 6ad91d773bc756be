"""A chunked request body's framing: where it ends, found by the worker's loop as its bytes
arrive (ChunkedBody, which also bounds the framing), and its sizes checked against the body
limit as each chunk-size line is read on the thread (LimitedChunkedReader), from what the loop
gathered only (Gathered). Framing only: what the body says is the app's to read."""

from __future__ import annotations

from typing import Any

from gunicorn.http.body import ChunkedReader
from gunicorn.http.errors import InvalidChunkSize, ParseException
from gunicorn.http.message import DEFAULT_MAX_HEADERFIELD_SIZE, MAX_HEADERS
from werkzeug.exceptions import RequestEntityTooLarge

from hashdb.api.errors import body_too_large

# A chunk size past 64 bits is no size any client means (16 hex digits, leading zeros aside):
# refused as malformed, as llhttp and nginx refuse it, not weighed against the limit.
MAX_SIZE_BITS = 64
# What the framing (size lines, chunk extensions, CRLFs, trailers) may add to a body of the
# limit, and so what the loop may hold of one past it: an eighth of the limit and 64 KiB more.
# A client's chunks of 64 bytes or more fit (6 to 8 bytes of framing each); 1-byte chunks
# (five bytes of framing for each byte of body) or kilobytes of extensions do not: each chunk
# costs a few microseconds of Python on the loop and again on the thread, and a 4 MiB body in
# 1-byte chunks would have cost seconds.
FRAMING_FRACTION = 8
FRAMING_FLOOR = 64 * 1024

_SIZE_LINE, _DATA, _DATA_END, _TRAILERS = range(4)


def framing_allowance(limit: int) -> int:
    return FRAMING_FLOOR + limit // FRAMING_FRACTION


def reader_limits(cfg: Any) -> tuple[int, int]:
    """The longest size line and trailer section gunicorn's ChunkedReader reads under `cfg`: a
    request's limit_request_field_size and max_buffer_headers, as its Request works them out."""
    field_size = cfg.limit_request_field_size if cfg.limit_request_field_size > 0 else DEFAULT_MAX_HEADERFIELD_SIZE
    fields = cfg.limit_request_fields if 0 < cfg.limit_request_fields <= MAX_HEADERS else MAX_HEADERS
    return field_size, fields * (field_size + 2) + 4


class FramingTooLarge(Exception):
    """The framing of a chunked body still arriving is past framing_allowance (answered 413)."""


class FramingRefused(Exception):
    """Framing the loop refuses itself (answered 400): a size line ended by a bare LF, or a
    chunk followed by one, which gunicorn's reader would wait on for a CRLF until the body's
    deadline; a size line longer than the reader's line limit, which it took or refused
    depending on how the bytes were cut; a chunk followed by anything else but CRLF."""


class LimitedChunkedReader(ChunkedReader):  # type: ignore[misc]
    """gunicorn's ChunkedReader, refusing a chunk whose declared size takes the body past
    `limit` as soon as its size line is read.

    gunicorn's reader waits for a chunk's bytes before anyone counts them: a size line of
    `ffffffffffff` followed by nothing held the thread until its socket read timed out
    (gathering.IO_TIMEOUT, 30 s), and was then answered 400 as a client gone away (found in trial)."""

    def __init__(self, req: Any, unreader: Any, limit: int) -> None:
        super().__init__(req, unreader)
        self.limit = limit
        self.declared = 0

    def read(self, size: int) -> bytes:
        try:
            data: bytes = super().read(size)
        except Exception:
            # Where the next request starts is unknown now: the answer says the connection
            # closes (gunicorn closes it after a body read that raised, without saying so).
            self.req.force_close()
            raise
        return data

    def parse_chunk_size(self, unreader: Any, data: bytes | None = None) -> tuple[int, bytes | None]:
        size, rest = super().parse_chunk_size(unreader, data)
        if size.bit_length() > MAX_SIZE_BITS:
            raise InvalidChunkSize(b"chunk size over 16 hex digits")
        self.declared += size
        if self.declared > self.limit:
            raise RequestEntityTooLarge(body_too_large(self.limit))
        return size, rest


class Gathered:
    """A connection's unreader without its socket, for a chunked body's reader on a thread: the
    loop gathered the body (ChunkedBody) before the thread got the request, so a read past what
    it gathered is a body cut short (gunicorn's NoMoreData, a 400), never a wait on the client."""

    def __init__(self, unreader: Any) -> None:
        self.unreader = unreader

    def read(self, size: int | None = None, read_ahead: int | None = None) -> bytes:
        # ChunkedReader asks for "the next piece" only (size None): all that is buffered.
        data: bytes = self.unreader.take_buffered()
        return data

    def unread(self, data: bytes) -> None:
        self.unreader.unread(data)


class _Nothing:
    """An unreader with nothing in it: parse_chunk_size, handed a size line whole and an empty
    trailer section after it, reads nothing further."""

    def read(self, size: int | None = None, read_ahead: int | None = None) -> bytes:
        return b""

    def unread(self, data: bytes) -> None:
        pass


class ChunkedBody:
    """Where a chunked body that starts at `start` of a growing buffer ends, found as its bytes
    arrive, without decoding it: the worker's loop gathers the body with it before a thread
    sees the request (gathering.py).

    advance() stops at the body's end (after its trailers), or at the first thing the thread's
    reader refuses: a size line that is no size or takes the body past `limit`, a trailer
    section longer than gunicorn reads, a trailer line ended by a bare LF. Either way that
    reader finds all it reads before it answers or refuses in what was gathered. Size lines
    are checked by the reader's own code (LimitedChunkedReader), so the two cannot disagree on
    a chunk's size. What the reader would wait on, or take or refuse depending on how the
    bytes were cut, the loop refuses itself (FramingRefused): a size line ended by a bare LF
    or longer than gunicorn reads, a chunk not followed by CRLF."""

    def __init__(self, start: int, limit: int, line_limit: int, trailer_limit: int) -> None:
        self.start = start
        self.allowance = framing_allowance(limit)
        self.line_limit = line_limit  # gunicorn's limit_request_field_size
        self.trailer_limit = trailer_limit  # gunicorn's max_buffer_headers
        self._sizes = LimitedChunkedReader(None, _Nothing(), limit)
        self._state = _SIZE_LINE
        self._pos = self._searched = self._lf_checked = start
        self._left = 0  # bytes of the current chunk still to come
        self._data = 0  # bytes of chunk data so far: the rest is framing

    def advance(self, buffer: bytes | bytearray) -> int | None:
        """The index just past the body, or just past what the reader refuses, once `buffer`
        holds it; else None. FramingTooLarge once the framing up to there is past the allowance."""
        while True:
            before = (self._state, self._pos)
            end = self._step(buffer)
            if end is not None or (self._state, self._pos) == before:  # found, or waiting for bytes
                break
        # Whether the body's last bytes came in the same read or not: the answer does not
        # depend on how the client's bytes were cut into packets.
        if (len(buffer) if end is None else end) - self.start - self._data > self.allowance:
            raise FramingTooLarge(f"a chunked request body's framing (chunk sizes, extensions, trailers) "
                                  f"larger than {self.allowance} bytes: send larger chunks")
        return end

    def _step(self, buffer: bytes | bytearray) -> int | None:
        if self._state == _SIZE_LINE:
            return self._size_line(buffer)
        if self._state == _DATA:
            return self._chunk_data(buffer)
        if self._state == _DATA_END:
            return self._chunk_end(buffer)
        return self._trailers(buffer)

    def _size_line(self, buffer: bytes | bytearray) -> int | None:
        # Up to the first LF, which a CR must precede: the reader looks for CRLF only, so a line
        # ended by a bare LF was no line to it, and the client's answer never came.
        lf = buffer.find(b"\n", self._searched)
        if lf < 0:
            if len(buffer) - self._pos > self.line_limit + 1:  # a CR may end it: +1
                raise FramingRefused(self._too_long())
            self._searched = len(buffer)
            return None
        if lf == self._pos or buffer[lf - 1] != ord("\r"):
            raise FramingRefused("a chunked request body's chunk-size line ends in a bare LF: "
                                 "each line of chunked framing ends in CRLF")
        end = lf - 1
        if end - self._pos > self.line_limit:
            raise FramingRefused(self._too_long())
        try:
            size, _ = self._sizes.parse_chunk_size(_Nothing(), bytes(buffer[self._pos:end]) + b"\r\n\r\n")
        except (ParseException, RequestEntityTooLarge):
            return end + 2
        self._pos = self._searched = self._lf_checked = end + 2
        self._state, self._left = (_DATA, size) if size else (_TRAILERS, 0)
        return None

    def _too_long(self) -> str:
        return (f"a chunked request body's chunk-size line (size and extensions) is longer than "
                f"{self.line_limit} bytes")

    def _chunk_data(self, buffer: bytes | bytearray) -> int | None:
        taken = min(self._left, len(buffer) - self._pos)
        self._pos += taken
        self._data += taken
        self._left -= taken
        if not self._left:
            self._state = _DATA_END
        return None

    def _chunk_end(self, buffer: bytes | bytearray) -> int | None:
        # Refused at its first wrong byte: a client that ends its lines in a bare LF sends no
        # second byte until it is answered, and the reader would wait for one.
        after = bytes(buffer[self._pos:self._pos + 2])
        if not b"\r\n".startswith(after):
            raise FramingRefused("a chunk of a chunked request body is not followed by CRLF "
                                 "(each line of chunked framing ends in CRLF)")
        if len(after) < 2:
            return None
        self._pos = self._searched = self._pos + 2
        self._state = _SIZE_LINE
        return None

    def _trailers(self, buffer: bytes | bytearray) -> int | None:
        # As gunicorn's parse_trailers reads them: none (a CRLF at once), or up to a blank line.
        if buffer[self._pos:self._pos + 2] == b"\r\n":
            return self._pos + 2
        end = buffer.find(b"\r\n\r\n", self._searched)
        if end >= 0:
            return end + 4
        if len(buffer) - self._pos > self.trailer_limit or self._bare_lf(buffer):
            return len(buffer)  # what the reader refuses before it reads on
        self._searched = max(self._pos, len(buffer) - 3)
        return None

    def _bare_lf(self, buffer: bytes | bytearray) -> bool:
        at = buffer.find(b"\n", self._lf_checked)
        while at >= 0:
            if at == self._pos or buffer[at - 1] != ord("\r"):
                return True
            at = buffer.find(b"\n", at + 1)
        self._lf_checked = len(buffer)
        return False
