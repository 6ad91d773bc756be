"""Choose an index implementation for a deployment's size; no index state lives here."""

from __future__ import annotations

from hashdb.index.base import HashIndex
from hashdb.index.linear import LinearIndex

# Up to this many hashes numpy brute force answers a query in tens of microseconds, and the
# process never starts FAISS's OpenMP runtime (nothing to go wrong in forked workers, nothing
# to tune). Past it, FaissIndex is faster; it switches itself from a flat scan to multi-index
# hashing at faiss_index.LARGE_MIN_SIZE live hashes, so the caller only picks between the two.
LINEAR_MAX_SIZE = 2_000


def make_index(bits: int, expected_size: int, *, large_min_size: int | None = None) -> HashIndex:
    """A fresh, empty index suited to about `expected_size` hashes of `bits` bits.

    The choice is made once: call this again (a rebuild from the store) when the size has
    moved past LINEAR_MAX_SIZE in either direction.
    """
    if expected_size <= LINEAR_MAX_SIZE:
        return LinearIndex(bits)
    # FAISS is imported only here and when a saved FAISS index is loaded: commands that
    # never search (hashing a folder) start without it.
    from hashdb.index.faiss_index import LARGE_MIN_SIZE, FaissIndex

    return FaissIndex(bits, large_min_size=LARGE_MIN_SIZE if large_min_size is None else large_min_size)
