"""The HashIndex Protocol the service relies on, hex <-> code conversion, and loading a saved index.

An index is derived data: the store is the truth and an index is rebuilt from it. No store access here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from hashdb.errors import InvalidHash
from hashdb.index._bits import check_bits


@runtime_checkable
class HashIndex(Protocol):
    """Exact Hamming range search over fixed-width binary hashes keyed by store record ids."""

    bits: int

    def __len__(self) -> int:
        """Number of live (added and not removed) ids."""
        ...

    def add(self, ids: Sequence[int] | np.ndarray, codes: np.ndarray) -> None:
        """Add codes (uint8, shape (n, bits // 8)); re-adding an existing id replaces its code."""
        ...

    def remove(self, ids: Iterable[int]) -> None:
        """Remove ids; unknown ids are ignored."""
        ...

    def search(self, codes: np.ndarray, max_distance: int) -> list[list[tuple[int, int]]]:
        """Per query, every (id, distance) with distance <= max_distance, sorted by (distance, id)."""
        ...

    def save(self, path: Path, covers_seq: int) -> None:
        """Write atomically; `covers_seq` is the store change-log sequence this index reflects."""
        ...


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


def load_index(path: Path) -> tuple[HashIndex, int]:
    """Load what `HashIndex.save` wrote: the index and the change-log sequence it covers.

    Raises `IndexStale` when there is no readable index at `path` (the remedy is a rebuild).
    """
    from hashdb.index._files import read_manifest

    manifest = read_manifest(Path(path))
    if manifest.kind == "linear":
        from hashdb.index.linear import LinearIndex

        return LinearIndex.load(Path(path), manifest), manifest.covers_seq
    from hashdb.index.faiss_index import FaissIndex

    return FaissIndex.load(Path(path), manifest), manifest.covers_seq
