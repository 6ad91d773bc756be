"""Test data for the index tests: random codes with planted near-duplicates, and an oracle that
shares no code with hashdb (Python ints and int.bit_count)."""

from __future__ import annotations

import numpy as np

from hashdb.index.faiss_index import FaissIndex
from hashdb.index.mih import compiled_search_available


def random_codes(rng: np.random.Generator, n: int, bits: int) -> np.ndarray:
    return rng.integers(0, 256, size=(n, bits // 8), dtype=np.uint8)


def flip_bits(rng: np.random.Generator, code: np.ndarray, k: int) -> np.ndarray:
    """A copy of `code` with exactly k distinct bits flipped, so its distance to `code` is k."""
    out = code.copy()
    for bit in rng.choice(code.shape[0] * 8, size=k, replace=False).tolist():
        out[bit // 8] ^= np.uint8(1 << (bit % 8))
    return out


def planted(
    rng: np.random.Generator, n: int, bits: int, distances: list[int], nqueries: int
) -> tuple[np.ndarray, np.ndarray]:
    """(stored codes, query codes): about half the stored codes sit at an exact distance from
    one of the queries (drawn from `distances`), the rest are random."""
    queries = random_codes(rng, nqueries, bits)
    stored = random_codes(rng, n, bits)
    if nqueries:
        for i in range(0, n, 2):
            k = distances[int(rng.integers(len(distances)))]
            stored[i] = flip_bits(rng, queries[int(rng.integers(nqueries))], min(k, bits))
    return stored, queries


def as_int(code: np.ndarray) -> int:
    return int(code.tobytes().hex(), 16) if code.size else 0


def oracle(
    stored: dict[int, int], queries: np.ndarray, radius: int
) -> list[list[tuple[int, int]]]:
    """Brute force on Python ints: {id: code as int} -> per query sorted (id, distance)."""
    out = []
    for query in queries:
        q = as_int(query)
        hits = [(key, (q ^ value).bit_count()) for key, value in stored.items()]
        out.append(sorted(((k, d) for k, d in hits if d <= radius), key=lambda kd: (kd[1], kd[0])))
    return out


def search_both(index: FaissIndex, queries: np.ndarray, radius: int) -> list[list[tuple[int, int]]]:
    """The index's answers by its numpy path and, when it was built, its compiled search: each
    is the other's oracle, so they must agree (and the caller compares them to brute force)."""
    index.compiled = False
    by_numpy = index.search(queries, radius)
    if compiled_search_available():
        index.compiled = True
        assert index.search(queries, radius) == by_numpy
    return by_numpy
