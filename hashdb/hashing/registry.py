"""The one list of signals; names are checked unique here and in a test."""

from __future__ import annotations

from hashdb.errors import InvalidHash, UnknownSignal
from hashdb.hashing.base import BytesSignal, ImageSignal, Signal
from hashdb.hashing.exact import Md5Signal, Sha256Signal
from hashdb.hashing.imagehashes import DHashSignal, PHashSignal
from hashdb.hashing.pdq import PdqSignal
from hashdb.types import HashValue

SIGNALS: tuple[Signal, ...] = (PdqSignal(), PHashSignal(), DHashSignal(), Md5Signal(), Sha256Signal())
# Computed by `hashdb hash` when --signals is not given.
DEFAULT_SIGNALS = ("md5", "sha256", "pdq", "phash")
# Video: PDQ per sampled frame, matched with the vPDQ rule; not a single hex value.
VIDEO_SIGNAL = "vpdq"
# Video: TMK+PDQF, a float feature file scored by similarity (hashing/tmk.py); not hex either.
TMK_SIGNAL = "tmk"


def _check_unique(signals: tuple[Signal, ...]) -> dict[str, Signal]:
    by_name: dict[str, Signal] = {}
    for signal in signals:
        if signal.name in by_name:
            raise RuntimeError(f"two signals are named {signal.name!r}")
        by_name[signal.name] = signal
    return by_name


_BY_NAME = _check_unique(SIGNALS)


def signal_names() -> tuple[str, ...]:
    return tuple(_BY_NAME)


def get_signal(name: object) -> Signal:
    if isinstance(name, str) and name in _BY_NAME:
        return _BY_NAME[name]
    raise UnknownSignal(f"unknown signal {name!r}; known: {', '.join(_BY_NAME)}")


def image_signals() -> tuple[ImageSignal, ...]:
    return tuple(s for s in SIGNALS if isinstance(s, ImageSignal))


def bytes_signals() -> tuple[BytesSignal, ...]:
    return tuple(s for s in SIGNALS if isinstance(s, BytesSignal))


def parse_hash(signal: object, text: object, quality: int | None = None) -> HashValue:
    """A signal is named in any case, as its hex digits may be: `PDQ` is how ThreatExchange
    and other tools print it, and the CLI's `PDQ:hex` and the API's "PDQ" are the same hash."""
    if isinstance(signal, str) and signal not in _BY_NAME and signal.lower() in _BY_NAME:
        signal = signal.lower()
    return get_signal(signal).parse(text, quality)


def looks_like_hash_argument(arg: str) -> bool:
    """`SIGNAL:HEX` with a known signal name is a hash; anything else is a path."""
    prefix, sep, _ = arg.partition(":")
    return bool(sep) and prefix.lower() in _BY_NAME


def parse_hash_argument(arg: str) -> HashValue:
    prefix, sep, rest = arg.partition(":")
    if not sep:
        raise InvalidHash(f"expected SIGNAL:HEX, got {arg!r}")
    return parse_hash(prefix.lower(), rest)
