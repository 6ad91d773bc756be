"""The loop's view of a chunked body (hashdb/api/chunked.py, ChunkedBody) against the thread's
reader (gunicorn's ChunkedReader as LimitedChunkedReader) on the same bytes, however they
arrive: the loop stops where the reader needs nothing more, neither sooner nor later."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from gunicorn.config import Config
from gunicorn.http.errors import ParseException
from gunicorn.http.parser import RequestParser
from gunicorn.http.unreader import Unreader
from werkzeug.exceptions import RequestEntityTooLarge

import pytest

from hashdb.api.chunked import (ChunkedBody, FramingRefused, FramingTooLarge, Gathered, LimitedChunkedReader,
                                reader_limits)

LIMIT = 64
HEAD = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"


class WantsMore(Exception):
    """The reader asked for bytes past those gathered."""


class GatheredSoFar(Unreader):  # type: ignore[misc]
    """What the loop gathered; a read past it (through Gathered, which takes what is buffered)
    raises WantsMore where the worker's reader would find the body cut short."""

    def __init__(self, data: bytes) -> None:
        super().__init__()
        self.buf.write(data)

    def take_buffered(self) -> bytes:
        data: bytes = super().take_buffered()
        if not data:
            raise WantsMore
        return data

    def chunk(self, size_hint: int | None = None) -> bytes:
        raise WantsMore


def small_limits() -> Config:
    cfg = Config()
    cfg.set("limit_request_field_size", 40)  # size lines of up to 40 bytes
    cfg.set("limit_request_fields", 2)  # a trailer section of up to 2 * 42 + 4 bytes
    return cfg


def reader_on(gathered: bytes, cfg: Config) -> tuple[LimitedChunkedReader, Unreader]:
    req = next(RequestParser(cfg, iter([HEAD]), ("127.0.0.1", 5000)))
    unreader = GatheredSoFar(gathered)
    return LimitedChunkedReader(req, Gathered(unreader), LIMIT), unreader


def read_all(reader: LimitedChunkedReader) -> bytes:
    out = b""
    while data := reader.read(7):
        out += data
    return out


def loop_end(pieces: list[bytes], cfg: Config) -> tuple[int | None, bytes]:
    """Where the loop stops (None: it waits for more) and what it had gathered by then."""
    body = ChunkedBody(0, LIMIT, *reader_limits(cfg))
    buffer = bytearray()
    for piece in pieces:
        buffer += piece
        end = body.advance(buffer)
        if end is not None:
            return end, bytes(buffer)
    return None, bytes(buffer)


# Mostly well-formed, with each thing either side refuses now and then (lists repeat what should
# come up more often).
BAD_SIZES = [b"zz", b"", b"-1", b" 5", b"f" * 17, b"0" * 30 + b"1"]
EXTENSIONS = [b""] * 20 + [b";a=b", b" ;q=\"x y\"", b";bad ext", b";" + b"e" * 40, b"\r"]
TRAILERS = [b""] * 8 + [b"X-T: 1\r\n", b"X-T: 1\nX-U: 2\r\n", b"T: " + b"t" * 100 + b"\r\n", b"bad\r\n"]


@st.composite
def chunked_bodies(draw: st.DrawFn) -> bytes:
    out = b""
    for _ in range(draw(st.integers(0, 5))):
        size = draw(st.integers(1, 30))
        line = b"%x" % size if draw(st.integers(0, 19)) else draw(st.sampled_from(BAD_SIZES))
        end = draw(st.sampled_from([b"\r\n"] * 20 + [b"XX", b"\n"]))
        out += line + draw(st.sampled_from(EXTENSIONS)) + b"\r\n" + b"d" * size + end
    out += b"0" + draw(st.sampled_from(EXTENSIONS)) + b"\r\n" + draw(st.sampled_from(TRAILERS))
    out += draw(st.sampled_from([b"\r\n"] * 4 + [b"\n", b""]))
    if not draw(st.integers(0, 3)):
        out = out[:draw(st.integers(0, len(out)))]  # the client stops part-way
    return out + draw(st.sampled_from([b"", b"GET / HTTP/1.1\r\n\r\n"]))


def pieces_of(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(data), *(cut % (len(data) + 1) for cut in cuts)})
    return [data[a:b] for a, b in zip(points, points[1:])]


@settings(max_examples=600, deadline=None)
@given(chunked_bodies(), st.lists(st.integers(0, 10_000), max_size=12), st.booleans())
def test_the_loop_stops_where_the_reader_needs_no_more(data, cuts, whole):
    cfg = small_limits()
    try:
        end, gathered = loop_end([data] if whole else pieces_of(data, cuts), cfg)
    except (FramingTooLarge, FramingRefused):
        return  # answered by the loop itself: no reader reads it
    reader, unreader = reader_on(gathered, cfg)
    try:
        read_all(reader)
    except WantsMore:
        assert end is None, f"the loop stopped at {end} of {gathered!r}; the reader wanted more"
        return
    except (ParseException, RequestEntityTooLarge, OSError):
        assert end is not None, f"the loop waits for more of {gathered!r}; the reader refused it"
        return
    assert end is not None, f"the loop waits for more of {gathered!r}; the reader read it whole"
    assert unreader.buf.getvalue() == gathered[end:], "the reader ended the body elsewhere"


@pytest.mark.parametrize(("pieces", "end"), [
    ([b"5\r\nhello\r\n0\r\n\r\n"], 15),
    ([b"5\r\nhel", b"lo\r", b"\n0\r", b"\n\r", b"\n"], 15),
    ([b"5;a=b\r\nhello\r\n0\r\nX-T: 1\r\n\r\nGET"], 27),  # trailers, and the next request's start after them
    ([b"zz\r\n"], 4),  # the reader refuses the size line: stop there
    ([b"%x\r\n" % (LIMIT + 1)], 4),  # declared past the limit
    ([b"20\r\n" + b"d" * 32 + b"\r\n", b"21\r\n"], 42),  # past the limit with the chunk before it
    ([b"2\r\ndd\r"], None),  # a CR: its LF may follow
    ([b"2;" + b"e" * 38 + b"\r", b"\ndd\r\n0\r\n\r\n"], 51),  # a size line of the line limit, 40 bytes
])
def test_where_the_loop_stops(pieces, end):
    assert loop_end(pieces, small_limits())[0] == end


@pytest.mark.parametrize(("pieces", "why"), [
    ([b"2\ndd\n0\n\n"], "bare LF"),  # lines ended by LF alone
    ([b"2;a", b"=b\n"], "bare LF"),
    ([b"2;a\nb\r\ndd\r\n0\r\n\r\n"], "bare LF"),  # an LF inside the line, which the reader takes
    ([b"\n"], "bare LF"),
    ([b"2;" + b"e" * 39 + b"\r\n"], "longer than 40 bytes"),  # one over the line limit, however cut
    ([b"2;" + b"e" * 39, b"\r\n"], "longer than 40 bytes"),
    ([b"2;" + b"e" * 40], "longer than 40 bytes"),  # known before its CRLF
    ([b"2\r\nddXX"], "not followed by CRLF"),  # a chunk without its CRLF
    ([b"2\r\ndd\n"], "not followed by CRLF"),  # ... known by its first byte
    ([b"2\r\ndd", b"\rX"], "not followed by CRLF"),
])
def test_framing_the_loop_refuses_itself(pieces, why):
    with pytest.raises(FramingRefused, match=why):
        loop_end(pieces, small_limits())


def test_framing_past_the_allowance_is_refused_while_it_arrives():
    body = ChunkedBody(0, 1024 * 1024, *reader_limits(Config()))
    buffer = bytearray()
    with pytest.raises(FramingTooLarge, match=f"larger than {body.allowance} bytes"):
        for _ in range(body.allowance):  # one byte a chunk: five bytes of framing each
            buffer += b"1\r\nd\r\n"
            assert body.advance(buffer) is None
    assert len(buffer) < 6 * body.allowance // 5 + 6  # refused as soon as the framing passed it


def test_framing_past_the_allowance_is_refused_however_it_arrives():
    framing = ChunkedBody(0, 1024 * 1024, *reader_limits(Config()))
    body = b"1\r\nd\r\n" * (framing.allowance // 5 + 1) + b"0\r\n\r\n"
    with pytest.raises(FramingTooLarge):
        framing.advance(body)  # the body's end in the same read
