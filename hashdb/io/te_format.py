"""python-threatexchange's local-file lines, `<signal type> <signal>`: which of our signals pytx
has a type for, under what name, and its vPDQ signal string. Pure text; pytx is not imported."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

from hashdb.errors import InvalidHash
from hashdb.hashing.registry import VIDEO_SIGNAL, parse_hash
from hashdb.types import FrameHash, HashValue

# pytx's names for our exact hashes of a video file (its md5/sha256 types are for video only).
VIDEO_EXACT = {"video_md5": "md5", "video_sha256": "sha256"}


def pytx_name(signal: str, media_type: str) -> str | None:
    """The pytx signal type that carries one of our records, or None (phash, an image's md5...)."""
    if signal in ("pdq", VIDEO_SIGNAL):
        return signal
    if media_type == "video" and signal in ("md5", "sha256"):
        return f"video_{signal}"
    return None


def is_pytx_name(name: str) -> bool:
    return name in ("pdq", VIDEO_SIGNAL) or name in VIDEO_EXACT


def vpdq_signal(frames: Sequence[FrameHash]) -> str:
    """pytx's vPDQ signal string: a JSON list of "pdq_hex,quality,seconds", one a frame."""
    return json.dumps([f"{f.hash.hex},{f.hash.quality or 0},{f.timestamp:.3f}" for f in frames])


def parse_vpdq_signal(text: str) -> tuple[FrameHash, ...]:
    try:
        items = json.loads(text)
    except ValueError as exc:
        raise InvalidHash(f"vpdq: not pytx's vPDQ format (a JSON list of \"hex,quality,seconds\"): {exc}") from None
    if not isinstance(items, list) or not items:
        raise InvalidHash("vpdq: expected a non-empty JSON list of \"hex,quality,seconds\"")
    frames = []
    for n, item in enumerate(items):
        parts = item.split(",") if isinstance(item, str) else []
        if len(parts) != 3:
            raise InvalidHash(f"vpdq frame {n}: expected \"hex,quality,seconds\", got {item!r}")
        try:
            quality, seconds = int(parts[1]), float(parts[2])
        except ValueError:
            raise InvalidHash(f"vpdq frame {n}: quality and seconds must be numbers, got {item!r}") from None
        if not math.isfinite(seconds) or seconds < 0:
            raise InvalidHash(f"vpdq frame {n}: seconds must be a number >= 0, got {parts[2]!r}")
        frames.append(FrameHash(n, seconds, parse_hash("pdq", parts[0], quality)))
    return tuple(frames)


def parse_line(text: str) -> tuple[str, tuple[HashValue, ...], tuple[FrameHash, ...]]:
    """One `<signal type> <signal>` line as (media type, hashes, frames). pytx's own names are
    read (video_md5, video_sha256, vpdq) besides ours (`pdq`, `md5`, ...)."""
    name, _, rest = text.strip().partition(" ")
    name, rest = name.lower(), rest.strip()
    if not rest:
        raise InvalidHash("expected `SIGNAL HEX`")
    if name == VIDEO_SIGNAL:
        return "video", (), parse_vpdq_signal(rest)
    if name in VIDEO_EXACT:
        return "video", (parse_hash(VIDEO_EXACT[name], rest.split()[0]),), ()
    return "image", (parse_hash(name, rest.split()[0]),), ()
