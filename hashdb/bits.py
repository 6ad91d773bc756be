"""Hex <-> uint8 codes and popcount: the numpy-level bit helpers that `hashing` (video frame
matching) and `index` (every Hamming index) share, so both read a hash's bits the same way.

Pure numpy, no I/O. Codes are uint8 rows of `bits // 8` bytes, in the byte order of the hex.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hashdb.errors import InvalidHash, InvalidInput

# 256-entry popcount table for numpy < 2.0, which lacks np.bitwise_count.
_POPCOUNT8 = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)
_HAS_BITWISE_COUNT = hasattr(np, "bitwise_count")


def check_bits(bits: object) -> int:
    if isinstance(bits, bool) or not isinstance(bits, int) or bits <= 0 or bits % 8:
        raise InvalidInput(f"hash width in bits must be a positive multiple of 8, got {bits!r}")
    return bits


# Byte order of codes. `bytes.fromhex` makes hex digits 0-1 byte 0, digits 2-3 byte 1, and so
# on; inside a byte the first hex digit is the high nibble, so the hex's first bit is the most
# significant bit of byte 0. FAISS reads the same bytes (its own bit numbering inside a byte
# starts from the least significant bit, so it calls that bit 7 of byte 0). Neither detail
# changes a Hamming distance: it is the popcount of a XOR, and XOR works bit by bit, so any
# fixed permutation of bit positions applied to both the stored and the query side leaves every
# distance unchanged. What matters is only that the store, the index and the queries all go
# through these two functions.


def hex_to_codes(hexes: Sequence[str], bits: int) -> np.ndarray:
    """Hex strings (bits // 4 digits each) -> uint8 array of shape (n, bits // 8)."""
    check_bits(bits)
    nbytes = bits // 8
    items = list(hexes)
    if not items:
        return np.zeros((0, nbytes), dtype=np.uint8)
    if any(not isinstance(h, str) for h in items):
        raise InvalidHash("hashes must be strings of hex digits")
    lengths = set(map(len, items))
    if lengths != {bits // 4}:
        bad = sorted(lengths - {bits // 4})[0]
        raise InvalidHash(f"a {bits}-bit hash has {bits // 4} hex digits, got one with {bad}")
    try:
        raw = bytes.fromhex("".join(items))
    except ValueError:
        raise InvalidHash(f"a {bits}-bit hash contains a character that is not hex") from None
    # fromhex skips ASCII whitespace between byte pairs, so a right-length string with a
    # space in it would shift every later hash: the byte count catches that.
    if len(raw) != len(items) * nbytes:
        raise InvalidHash(f"a {bits}-bit hash contains whitespace or a character that is not hex")
    return np.frombuffer(raw, dtype=np.uint8).reshape(len(items), nbytes).copy()


def codes_to_hex(codes: np.ndarray) -> list[str]:
    """uint8 codes of shape (n, nbytes) -> lowercase hex strings, the inverse of hex_to_codes."""
    if codes.ndim != 2 or codes.dtype != np.uint8:
        raise InvalidHash(f"codes must be a 2-D uint8 array, got {codes.dtype} {codes.shape}")
    width = codes.shape[1] * 2
    text = np.ascontiguousarray(codes).tobytes().hex()
    return [text[i : i + width] for i in range(0, len(text), width)]


def popcount(words: np.ndarray) -> np.ndarray:
    """Per-element popcount of an unsigned integer array (uint8 result)."""
    if _HAS_BITWISE_COUNT:
        counts: np.ndarray = np.bitwise_count(words)
        return counts
    return popcount_by_table(words)


def popcount_by_table(words: np.ndarray) -> np.ndarray:
    """The numpy < 2.0 path of `popcount`: a 256-entry table lookup per byte."""
    as_bytes = np.ascontiguousarray(words).view(np.uint8).reshape(*words.shape, words.dtype.itemsize)
    counts: np.ndarray = _POPCOUNT8[as_bytes].sum(axis=-1, dtype=np.uint8)
    return counts
