"""Bit-level helpers shared by the indexes: input checks, Hamming distances, bit fields.

Pure numpy, no I/O. Codes are uint8 rows of `bits // 8` bytes, in the byte order of the hex.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from hashdb.bits import popcount
from hashdb.errors import InvalidInput

# Store row ids: non-negative so they can never collide with -1, FAISS's "no result" label.
_MAX_ID = 2**63 - 1

def check_codes(codes: object, bits: int) -> np.ndarray:
    """Return `codes` as a C-contiguous uint8 array of shape (n, bits // 8), or raise."""
    nbytes = bits // 8
    if not isinstance(codes, np.ndarray):
        raise InvalidInput(f"codes must be a numpy uint8 array, got {type(codes).__name__}")
    if codes.dtype != np.uint8:
        raise InvalidInput(f"codes must have dtype uint8, got {codes.dtype}")
    if codes.ndim != 2 or codes.shape[1] != nbytes:
        raise InvalidInput(
            f"codes must have shape (n, {nbytes}) for {bits}-bit hashes, got {codes.shape}"
        )
    return np.ascontiguousarray(codes)


def check_ids(ids: Sequence[int] | np.ndarray | Iterable[int], count: int | None = None) -> np.ndarray:
    """Return ids as an int64 array; refuse non-integers, negatives and (if given) a wrong count."""
    if isinstance(ids, np.ndarray):
        arr = ids
    else:
        items = list(ids)
        if any(isinstance(i, bool) or not isinstance(i, (int, np.integer)) for i in items):
            raise InvalidInput("index ids must be integers")
        if any(not 0 <= int(i) <= _MAX_ID for i in items):
            raise InvalidInput(f"index ids must be from 0 to {_MAX_ID}")
        arr = np.array(items, dtype=np.int64)
    if arr.ndim != 1:
        raise InvalidInput(f"ids must be one-dimensional, got shape {arr.shape}")
    if arr.size and arr.dtype.kind not in "iu":
        raise InvalidInput(f"ids must be integers, got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or (arr.dtype.kind == "u" and int(arr.max()) > _MAX_ID)):
        raise InvalidInput(f"index ids must be from 0 to {_MAX_ID}")
    if count is not None and arr.shape[0] != count:
        raise InvalidInput(f"got {arr.shape[0]} ids for {count} codes")
    return arr.astype(np.int64, copy=False)


def check_radius(max_distance: object, bits: int) -> int:
    if (
        isinstance(max_distance, bool)
        or not isinstance(max_distance, (int, np.integer))
        or not 0 <= max_distance <= bits
    ):
        raise InvalidInput(f"max_distance must be an integer from 0 to {bits}, got {max_distance!r}")
    return int(max_distance)


def word_view(codes: np.ndarray) -> np.ndarray:
    """View (n, nbytes) uint8 codes as 64-bit words when the width allows, else keep bytes.

    Native byte order is fine here: XOR and popcount do not care how bits are grouped into
    words, only that both operands are grouped the same way.
    """
    if codes.shape[1] % 8 == 0 and codes.flags.c_contiguous:
        return codes.view(np.uint64)
    return codes


def hamming_to_all(query: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Hamming distance from one code (nbytes,) to each row of `codes` (int32)."""
    q = word_view(np.ascontiguousarray(query).reshape(1, -1))
    x = np.bitwise_xor(word_view(codes), q)
    dist: np.ndarray = popcount(x).sum(axis=1, dtype=np.int32)
    return dist


def bit_field(codes: np.ndarray, start: int, width: int) -> np.ndarray:
    """Bits [start, start + width) of each code as uint32 (width <= 32), in the hex's numbering.

    Bit 0 is the most significant bit of byte 0, i.e. of the first hex digit. Only the (at most
    five) byte columns holding the field are read, so no widened copy of all codes is made.
    """
    first = start // 8
    last = (start + width - 1) // 8
    acc = np.zeros(codes.shape[0], dtype=np.uint64)
    for column in range(first, last + 1):
        acc <<= np.uint64(8)
        acc |= codes[:, column]
    acc >>= np.uint64((last + 1) * 8 - (start + width))
    acc &= np.uint64((1 << width) - 1)
    return acc.astype(np.uint32)
