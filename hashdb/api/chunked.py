"""A chunked request body's sizes checked against the body limit as each chunk-size line is
read, so a body declared over the limit is refused at once rather than waited for. Framing
only: what the body says is the app's to read."""

from __future__ import annotations

from typing import Any

from gunicorn.http.body import ChunkedReader
from gunicorn.http.errors import InvalidChunkSize
from werkzeug.exceptions import RequestEntityTooLarge

from hashdb.api.errors import body_too_large

# A chunk size past 64 bits is no size any client means (16 hex digits, leading zeros aside):
# refused as malformed, as llhttp and nginx refuse it, not weighed against the limit.
MAX_SIZE_BITS = 64


class LimitedChunkedReader(ChunkedReader):  # type: ignore[misc]
    """gunicorn's ChunkedReader, refusing a chunk whose declared size takes the body past
    `limit` as soon as its size line is read.

    gunicorn's reader waits for a chunk's bytes before anyone counts them: a size line of
    `ffffffffffff` followed by nothing held the thread until its socket read timed out
    (worker.IO_TIMEOUT, 30 s), and was then answered 400 as a client gone away (found in trial)."""

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
