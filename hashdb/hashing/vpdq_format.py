"""Meta's vPDQ per-frame text format: `frame_number,quality,pdq_hex,timestamp_seconds` a line.

Parsing is strict (every bad line is refused with its line number); no decoding, no matching.
Also a video item's identity: the digest of its frame hashes.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Sequence

from hashdb.errors import InvalidHash, InvalidInput
from hashdb.hashing.pdq import PdqSignal
from hashdb.types import FrameHash, HashValue

# ASCII only: `\d` and float() would accept other scripts' digits, "nan", "1e3" and "_".
_INT = re.compile(r"[0-9]+")
_SECONDS = re.compile(r"[0-9]+(\.[0-9]+)?")


def read_vpdq(text: str) -> tuple[FrameHash, ...]:
    """Parse vPDQ lines; frame numbers must increase and timestamps must not go back."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline ends the last line, it does not open a new one
    if not lines:
        raise InvalidInput("vPDQ text has no frame lines")
    frames: list[FrameHash] = []
    for number, line in enumerate(lines, start=1):
        frame = _parse_line(line.removesuffix("\r"), number)
        if frames and frame.frame_number <= frames[-1].frame_number:
            raise InvalidInput(
                f"vPDQ line {number}: frame number {frame.frame_number} does not follow "
                f"{frames[-1].frame_number}"
            )
        if frames and frame.timestamp < frames[-1].timestamp:
            raise InvalidInput(f"vPDQ line {number}: timestamp {frame.timestamp} goes back in time")
        frames.append(frame)
    return tuple(frames)


def _parse_line(line: str, number: int) -> FrameHash:
    fields = line.split(",")
    if len(fields) != 4:
        raise InvalidInput(
            f"vPDQ line {number}: expected 4 comma-separated fields "
            f"(frame_number,quality,pdq_hex,timestamp_seconds), got {len(fields)}"
        )
    frame_text, quality_text, hex_text, seconds_text = fields
    if not _INT.fullmatch(frame_text):
        raise InvalidInput(f"vPDQ line {number}: frame number {frame_text!r} is not a non-negative integer")
    if not _INT.fullmatch(quality_text) or int(quality_text) > 100:
        raise InvalidHash(f"vPDQ line {number}: quality {quality_text!r} is not an integer from 0 to 100")
    if not _SECONDS.fullmatch(seconds_text) or not math.isfinite(float(seconds_text)):
        raise InvalidInput(f"vPDQ line {number}: timestamp {seconds_text!r} is not a number of seconds")
    try:
        value = PdqSignal.parse(hex_text, int(quality_text))
    except InvalidHash as exc:
        raise InvalidHash(f"vPDQ line {number}: {exc}") from exc
    return FrameHash(int(frame_text), float(seconds_text), value)


def write_vpdq(frames: Iterable[FrameHash]) -> str:
    """The lines Meta's vPDQ writes: timestamps with 3 decimals, one line per frame."""
    out: list[str] = []
    for frame in frames:
        value = frame.hash
        if value.signal != PdqSignal.name or value.quality is None:
            raise InvalidInput(
                f"frame {frame.frame_number}: vPDQ needs a PDQ hash with its quality, got {value}"
            )
        out.append(f"{frame.frame_number},{value.quality},{value.hex},{frame.timestamp:.3f}\n")
    return "".join(out)


def video_digest(frames: Sequence[FrameHash]) -> HashValue:
    """A video item's identity: the digest of its frame hashes (same frames, same item). The
    service stores a video under it and the safelist screens by it, so both must agree."""
    body = "\n".join(f.hash.hex for f in frames).encode()
    return HashValue("vpdq", hashlib.sha256(body).hexdigest())
