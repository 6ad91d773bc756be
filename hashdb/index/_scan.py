"""FaissIndex's search kernels over raw code arrays: candidate verification by XOR and popcount,
FAISS's exhaustive range scan, and grouping hits per query. Pure numpy and FAISS, no state.
"""

from __future__ import annotations

from collections.abc import Callable

import faiss
import numpy as np

from hashdb.bits import popcount
from hashdb.index.mih import CandidateGroup

# FAISS's exhaustive binary range search over raw code arrays (what IndexBinaryFlat.range_search
# runs); the faiss-cpu type stubs do not list it.
_hamming_range_search: Callable[..., None] = faiss.hamming_range_search  # type: ignore[attr-defined]


def words(codes: np.ndarray) -> np.ndarray:
    """(n, nbytes) uint8 codes as 64-bit words when the width allows (fewer, wider XORs).

    Codes mapped from a saved FAISS file start wherever its header ends, rarely on an 8-byte
    boundary, and numpy's unaligned paths are several times slower: those stay bytes here,
    and `verify` widens the gathered (aligned) copy instead."""
    if codes.shape[1] % 8 or codes.ctypes.data % 8:
        return codes
    return codes.view(np.uint64)


def verify(
    words: np.ndarray, qwords: np.ndarray, tiled: np.ndarray, group: CandidateGroup, radius: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(query number, row, distance) of the group's candidates within `radius` of their query."""
    # np.take on a 2-D array is several times faster than fancy indexing for row gathers.
    x = np.take(words, group.rows, axis=0)
    if x.dtype != qwords.dtype:
        x = x.view(qwords.dtype)
    width = qwords.shape[1]
    tile = tiled.shape[1] // width
    bounds = group.bounds.tolist()
    for i in range(len(bounds) - 1):
        lo, hi = bounds[i], bounds[i + 1]
        whole = lo + (hi - lo) // tile * tile
        if whole > lo:
            block = x[lo:whole].reshape(-1, tiled.shape[1])
            np.bitwise_xor(block, tiled[group.first + i], out=block)
        if hi > whole:
            np.bitwise_xor(x[whole:hi], qwords[group.first + i], out=x[whole:hi])
    counts = popcount(x)
    near = np.flatnonzero(wrapped_sums(counts) <= radius)
    # The filter summed modulo 256; the few rows it kept get their exact distance.
    dist = counts[near].sum(axis=1, dtype=np.int32)
    near, dist = near[dist <= radius], dist[dist <= radius]
    qnum = np.searchsorted(group.bounds, near, side="right") - 1 + group.first
    return qnum, group.rows[near].astype(np.int64), dist


def wrapped_sums(counts: np.ndarray) -> np.ndarray:
    """Row sums of (n, k) uint8 popcounts modulo 256: never above the true sum when it is below 256."""
    k = counts.shape[1]
    if k == 1:
        return counts[:, 0]
    if k in (2, 4) and counts.flags.c_contiguous:
        # Each row's k bytes as one integer times 0x0101...: its top byte is the sum of the
        # bytes. No lower byte carries into it: with word popcounts (<= 64) each lower partial
        # sum is at most 64 * 3 < 256. Two numpy passes instead of k - 1 strided additions.
        wide = np.dtype(np.uint16 if k == 2 else np.uint32)
        packed: np.ndarray = counts.view(wide).reshape(-1) * np.array(0x0101 if k == 2 else 0x01010101, dtype=wide)
        packed >>= np.array(8 * (k - 1), dtype=wide)
        return packed
    total = counts[:, 0].copy()
    for j in range(1, k):
        total += counts[:, j]
    return total


def range_search(queries: np.ndarray, codes: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(query number, row of `codes`, distance) within `radius`, by FAISS's exhaustive binary scan."""
    result = faiss.RangeSearchResult(len(queries))
    # FAISS keeps distances strictly below its radius argument.
    _hamming_range_search(
        faiss.swig_ptr(queries), faiss.swig_ptr(codes), len(queries), len(codes),
        radius + 1, codes.shape[1], result,
    )
    lims = faiss.rev_swig_ptr(result.lims, len(queries) + 1).copy()
    found = int(lims[-1])
    rows = faiss.rev_swig_ptr(result.labels, found).astype(np.int64)
    dist = faiss.rev_swig_ptr(result.distances, found).astype(np.int32)
    qnum = np.repeat(np.arange(len(queries), dtype=np.int64), np.diff(lims).astype(np.int64))
    return qnum, rows, dist


# Up to this many rows, one query's answer is sorted in Python (see group).
SMALL_GROUP = 64


def _by_distance(pair: tuple[int, int]) -> tuple[int, int]:
    return pair[1], pair[0]


def group(
    nqueries: int, qnum: np.ndarray, ids: np.ndarray, dist: np.ndarray
) -> list[list[tuple[int, int]]]:
    """Per query, (id, distance) pairs sorted by (distance, id)."""
    if nqueries == 1 and len(ids) <= SMALL_GROUP:
        # A single lookup (the API's GET) finds a handful of rows: sorting them as Python pairs
        # skips the numpy calls below, whose fixed cost was about 10-15 us of the 100-140 us
        # a single query took in the index at 1M (BENCHMARKS.md, "API").
        return [sorted(zip(ids.tolist(), dist.tolist()), key=_by_distance)]
    order = np.lexsort((ids, dist, qnum))
    ids_list = ids[order].tolist()
    dist_list = dist[order].tolist()
    bounds = np.searchsorted(qnum[order], np.arange(nqueries + 1)).tolist()
    return [
        list(zip(ids_list[bounds[q] : bounds[q + 1]], dist_list[bounds[q] : bounds[q + 1]]))
        for q in range(nqueries)
    ]
