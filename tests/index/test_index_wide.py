"""Codes wider than 256 bits: the multi-index's candidate filter sums popcounts modulo 256, so at
512 and 1024 bits a code 256 + d bits away wraps to d. Only the exact re-count may return it."""

from __future__ import annotations

import numpy as np
import pytest
from _index_data import as_int, oracle, planted, random_codes, search_both

from hashdb.index.faiss_index import FaissIndex


def flip_outside_first_chunk(rng: np.random.Generator, code: np.ndarray, k: int, keep_bits: int) -> np.ndarray:
    """`code` with k distinct bits flipped, none among its first `keep_bits`: that chunk still
    equals the query's, so the multi-index proposes the row as a candidate."""
    out = code.copy()
    for bit in rng.choice(np.arange(keep_bits, code.shape[0] * 8), size=k, replace=False).tolist():
        out[bit // 8] ^= np.uint8(1 << (bit % 8))
    return out


@pytest.mark.parametrize("bits", [512, 1024])
@pytest.mark.parametrize("radius", [0, 10, 31])
def test_wrapped_distances_are_not_matches(bits: int, radius: int) -> None:
    rng = np.random.default_rng(bits + radius)
    query = random_codes(rng, 1, bits)[0]
    chunk_bits = 16
    # 256 + d and 512 + d bits away: both sum to d modulo 256. Then honest near ones.
    wrapped = [flip_outside_first_chunk(rng, query, 256 + d, chunk_bits) for d in (0, radius // 2, radius)]
    if bits == 1024:
        wrapped += [flip_outside_first_chunk(rng, query, 512 + d, chunk_bits) for d in (0, radius)]
    near = [flip_outside_first_chunk(rng, query, d, chunk_bits) for d in sorted({0, radius // 2, radius})]
    codes = np.concatenate([np.stack(wrapped + near), random_codes(rng, 200, bits)])
    ids = np.arange(len(codes), dtype=np.int64) + 7

    index = FaissIndex(bits, large_min_size=1, chunk_bits=chunk_bits, mih_work_divisor=0)
    index.add(ids, codes)
    assert index.structure == "mih"
    got = search_both(index, query[None, :], radius)
    expected = oracle({int(k): as_int(c) for k, c in zip(ids, codes)}, query[None, :], radius)
    assert got == expected
    assert {k for k, _ in got[0]} == {7 + len(wrapped) + i for i in range(len(near))}


@pytest.mark.parametrize("bits", [512, 1024])
@pytest.mark.parametrize("structure", ["flat", "mih"])
def test_wide_codes_equal_the_oracle_on_random_data(bits: int, structure: str) -> None:
    rng = np.random.default_rng(bits)
    codes, queries = planted(rng, 300, bits, [0, 5, 31, 32, 250, 256, 261, 287, 512, 540], nqueries=8)
    ids = rng.choice(10**9, size=len(codes), replace=False).astype(np.int64)
    index = FaissIndex(bits, large_min_size=1 if structure == "mih" else 10**9, mih_work_divisor=0)
    index.add(ids, codes)
    assert index.structure == structure
    stored = {int(k): as_int(c) for k, c in zip(ids, codes)}
    for radius in (0, 31, 32):
        assert search_both(index, queries, radius) == oracle(stored, queries, radius)
