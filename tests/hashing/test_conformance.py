"""One suite over every registered signal: a new signal is tested here without new code.

Image signals must hold resized and recompressed variants of each fixture original within
their default threshold and keep distinct originals beyond it; every signal parses strictly,
round-trips hex, and measures distance as a metric equal to an independent popcount.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hashdb.errors import InvalidHash, UnknownSignal
from hashdb.hashing.base import BytesSignal, ImageSignal, Signal
from hashdb.hashing.media import decode_image, read_file
from hashdb.hashing.registry import SIGNALS, parse_hash_argument, signal_names
from hashdb.types import HashValue

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "media"
IMAGE_EXTS = {".jpg", ".png", ".gif"}
# The edits a matcher must survive; _hflip/_rotation are the dihedral variants, matched (for
# PDQ only) by hashing the query's rotations, so they are not expected to be near.
NEAR_VARIANTS = ("resize", "jpeg30")

ORIGINALS = sorted(p for p in FIXTURES.iterdir() if p.suffix in IMAGE_EXTS and "_" not in p.stem)
IMAGE_SIGNALS = [s for s in SIGNALS if isinstance(s, ImageSignal)]
BYTES_SIGNALS = [s for s in SIGNALS if isinstance(s, BytesSignal)]


def by_name(signals: list[Signal] | tuple[Signal, ...]) -> list[object]:
    return [pytest.param(s, id=s.name) for s in signals]


def variant(original: Path, name: str) -> Path:
    (path,) = FIXTURES.glob(f"{original.stem}_{name}.*")
    return path


_cache: dict[tuple[str, Path], HashValue] = {}


def image_hash(signal: ImageSignal, path: Path) -> HashValue:
    key = (signal.name, path)
    if key not in _cache:
        _cache[key] = signal.compute(decode_image(read_file(path)).rgb)
    return _cache[key]


def popcount_distance(a: str, b: str) -> int:
    """Hamming distance computed byte by byte, independently of Signal.distance."""
    return sum(bin(x ^ y).count("1") for x, y in zip(bytes.fromhex(a), bytes.fromhex(b), strict=True))


def test_fixtures_have_originals_with_variants() -> None:
    assert len(ORIGINALS) >= 4
    for original in ORIGINALS:
        for name in NEAR_VARIANTS:
            assert variant(original, name).is_file()


def test_signal_names_are_unique_and_registered() -> None:
    names = [s.name for s in SIGNALS]
    assert len(names) == len(set(names))
    assert tuple(names) == signal_names()


# --- image signals ------------------------------------------------------------------------


@pytest.mark.parametrize("signal", by_name(IMAGE_SIGNALS))
@pytest.mark.parametrize("original", ORIGINALS, ids=lambda p: p.stem)
@pytest.mark.parametrize("edit", NEAR_VARIANTS)
def test_variants_are_within_threshold(signal: ImageSignal, original: Path, edit: str) -> None:
    near = signal.distance(image_hash(signal, original).hex, image_hash(signal, variant(original, edit)).hex)
    assert near <= signal.default_threshold, f"{signal.name}: {original.stem}_{edit} is {near} away"


@pytest.mark.parametrize("signal", by_name(IMAGE_SIGNALS))
def test_distinct_originals_are_beyond_threshold(signal: ImageSignal) -> None:
    for a, b in itertools.combinations(ORIGINALS, 2):
        far = signal.distance(image_hash(signal, a).hex, image_hash(signal, b).hex)
        assert far > signal.default_threshold, f"{signal.name}: {a.stem} and {b.stem} are only {far} apart"


@pytest.mark.parametrize("signal", by_name(IMAGE_SIGNALS))
def test_computed_image_hashes_round_trip(signal: ImageSignal) -> None:
    for original in ORIGINALS:
        value = image_hash(signal, original)
        assert value.signal == signal.name
        assert signal.parse(value.hex, value.quality) == value
        assert signal.parse(value.hex.upper()).hex == value.hex


# --- exact signals ------------------------------------------------------------------------


@pytest.mark.parametrize("signal", by_name(BYTES_SIGNALS))
def test_exact_signals_equal_only_for_identical_bytes(signal: BytesSignal) -> None:
    data = ORIGINALS[0].read_bytes()
    same = signal.compute_bytes(bytes(bytearray(data)))
    assert signal.compute_bytes(data) == same
    assert signal.distance(same.hex, signal.compute_bytes(data).hex) == 0
    one_bit = bytearray(data)
    one_bit[len(one_bit) // 2] ^= 1
    others = [bytes(one_bit), data[:-1], variant(ORIGINALS[0], "jpeg30").read_bytes()]
    for other in others:
        value = signal.compute_bytes(other)
        assert value.hex != same.hex
        assert signal.distance(value.hex, same.hex) > signal.default_threshold
        assert signal.parse(value.hex) == value


# --- every signal: parsing and distance ---------------------------------------------------


@pytest.mark.parametrize("signal", by_name(SIGNALS))
def test_examples_parse(signal: Signal) -> None:
    assert signal.examples
    for example in signal.examples:
        assert signal.parse(example).hex == example.lower()


def hex_values(signal: Signal) -> st.SearchStrategy[str]:
    size = signal.bits // 8
    return st.binary(min_size=size, max_size=size).map(bytes.hex)


@pytest.mark.parametrize("signal", by_name(SIGNALS))
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_parse_round_trips_random_hex(signal: Signal, data: st.DataObject) -> None:
    text = data.draw(hex_values(signal))
    assert signal.parse(text).hex == text
    assert signal.parse(text.upper()).hex == text
    mixed = "".join(c.upper() if i % 2 else c for i, c in enumerate(text))
    assert signal.parse(mixed).hex == text


@pytest.mark.parametrize("signal", by_name(SIGNALS))
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_distance_is_a_metric(signal: Signal, data: st.DataObject) -> None:
    a, b, c = (data.draw(hex_values(signal)) for _ in range(3))
    assert signal.distance(a, a) == 0
    assert signal.distance(a, b) == signal.distance(b, a)
    assert signal.distance(a, c) <= signal.distance(a, b) + signal.distance(b, c)
    assert 0 <= signal.distance(a, b) <= signal.bits
    if signal.exact:
        assert signal.distance(a, b) == (0 if a == b else signal.bits)
    else:
        assert signal.distance(a, b) == popcount_distance(a, b)


@pytest.mark.parametrize("signal", by_name([s for s in SIGNALS if not s.exact]))
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_distance_counts_flipped_bits(signal: Signal, data: st.DataObject) -> None:
    a = data.draw(hex_values(signal))
    flips = data.draw(st.sets(st.integers(0, signal.bits - 1), max_size=signal.bits))
    b = f"{int(a, 16) ^ sum(1 << i for i in flips):0{signal.hex_length()}x}"
    assert signal.distance(a, b) == len(flips)


# --- bad hash strings ---------------------------------------------------------------------

PDQ_HEX = "accb6d39648035f8125c8ce6ba65007de7b54c67a2d93ef7b8f33b0611306715"


def pdq() -> Signal:
    (signal,) = [s for s in SIGNALS if s.name == "pdq"]
    return signal


@pytest.mark.parametrize(
    ("text", "named"),
    [
        (PDQ_HEX[:63], "got 63"),
        (PDQ_HEX + "a", "got 65"),
        (PDQ_HEX + "\n", "whitespace"),
        (" " + PDQ_HEX[1:], "' '"),
        (PDQ_HEX[:10] + "\u0663" + PDQ_HEX[11:], "U+0663"),  # Arabic-Indic digit three
        (PDQ_HEX[:10] + "\uff21" + PDQ_HEX[11:], "U+FF21"),  # fullwidth capital A
        (PDQ_HEX[:10] + "g" + PDQ_HEX[11:], "'g'"),
        ("", "got 0"),
        (0x1234, "got int"),
        (None, "got NoneType"),
        ([PDQ_HEX], "got list"),
        ({"hash": PDQ_HEX}, "got dict"),
        (PDQ_HEX.encode(), "got bytes"),
    ],
    ids=["63", "65", "newline", "space", "arabic-indic", "fullwidth", "g", "empty", "int", "none", "list",
         "dict", "bytes"],
)
def test_bad_hash_strings_are_invalid_with_a_reason(text: object, named: str) -> None:
    with pytest.raises(InvalidHash) as excinfo:
        pdq().parse(text)
    message = str(excinfo.value)
    assert named in message and "\n" not in message


@pytest.mark.parametrize("signal", by_name(SIGNALS))
def test_every_signal_refuses_wrong_length_and_non_hex(signal: Signal) -> None:
    good = "0" * signal.hex_length()
    for bad in (good[:-1], good + "0", "z" + good[1:], "\u0663" + good[1:], "\uff21" + good[1:], "\u212a" + good[1:]):
        with pytest.raises(InvalidHash):
            signal.parse(bad)


def test_hash_argument_is_case_insensitive() -> None:
    assert parse_hash_argument("PDQ:" + PDQ_HEX.upper()) == HashValue("pdq", PDQ_HEX)
    assert parse_hash_argument("md5:D41D8CD98F00B204E9800998ECF8427E").hex == "d41d8cd98f00b204e9800998ecf8427e"


def test_unknown_signal_lists_the_known_ones() -> None:
    with pytest.raises(UnknownSignal) as excinfo:
        parse_hash_argument("sha1:da39a3ee5e6b4b0d3255bfef95601890afd80709")
    message = str(excinfo.value)
    assert "sha1" in message
    assert all(name in message for name in signal_names())


def test_hash_argument_without_a_signal_is_invalid() -> None:
    with pytest.raises(InvalidHash):
        parse_hash_argument(PDQ_HEX)
