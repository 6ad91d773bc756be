"""The compiled multi-index search (hashdb/index/_mih_kernel.c) against brute force on Python ints
and against the numpy path it replaces: every offsets layout, code widths, unaligned codes,
empty tables, radius 0 to every bit, and each (query, row) reported once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from _index_data import as_int, flip_bits, planted, random_codes
from support import IN_CI

from hashdb.index import _scan
from hashdb.index.mih import MultiIndexHash, compiled_search_available


@pytest.fixture(autouse=True)
def _kernel() -> None:
    # `pip install -e .` builds it when a C compiler is there; CI must have it.
    if not compiled_search_available():
        if IN_CI:
            pytest.fail("the compiled multi-index search (hashdb/index/_mih_kernel.c) is required in CI but was not built")
        pytest.skip("the compiled multi-index search was not built (no C compiler at install time)")


def brute_force(codes: np.ndarray, queries: np.ndarray, radius: int) -> list[tuple[int, int, int]]:
    stored = [as_int(c) for c in codes]
    out = []
    for q, query in enumerate(queries):
        value = as_int(query)
        out += [(q, row, d) for row, code in enumerate(stored) if (d := (value ^ code).bit_count()) <= radius]
    return sorted(out)


def by_kernel(mih: MultiIndexHash, codes: np.ndarray, queries: np.ndarray, radius: int) -> list[tuple[int, int, int]]:
    qnum, rows, dist = mih.search(codes, queries, radius)
    hits = list(zip(qnum.tolist(), rows.tolist(), dist.tolist()))
    assert len(set(hits)) == len(hits)  # once each: no repeats for the caller to remove
    return sorted(hits)


def by_numpy(mih: MultiIndexHash, codes: np.ndarray, queries: np.ndarray, radius: int) -> list[tuple[int, int, int]]:
    words, qwords = _scan.words(codes), _scan.words(queries)
    tiled = np.tile(qwords, (1, max(1, 64 // qwords.shape[1])))
    hits = set()
    for group in mih.candidates(queries, radius):
        qnum, rows, dist = _scan.verify(words, qwords, tiled, group, radius)
        hits |= set(zip(qnum.tolist(), rows.tolist(), dist.tolist()))
    return sorted(hits)


def check(mih: MultiIndexHash, codes: np.ndarray, queries: np.ndarray, radius: int) -> list[tuple[int, int, int]]:
    expected = brute_force(codes, queries, radius)
    assert by_kernel(mih, codes, queries, radius) == expected
    assert by_numpy(mih, codes, queries, radius) == expected
    return expected


@pytest.mark.parametrize("bits", [8, 24, 64, 72, 256, 512])
@pytest.mark.parametrize("radius", [0, 3, 10, 31])
def test_random_and_near_codes_of_every_width(bits: int, radius: int) -> None:
    rng = np.random.default_rng(bits * 100 + radius)
    codes, queries = planted(rng, 600, bits, [0, 1, radius, radius + 1, 31, 32], nqueries=5)
    queries = np.concatenate([queries, codes[:3]])
    width = min(8, bits)
    mih = MultiIndexHash.build(codes, bits, chunk_bits=width, chunks=min(bits // width, 6))
    assert check(mih, codes, queries, radius)


# Past 256 rows the uint8 parts wrap, past 65,536 the uint16 parts: both must be read modulo.
@pytest.mark.parametrize(("copies", "others", "low_bits"),
                         [(0, 1_500, 8), (400, 1_500, 16), (300, 70_000, 16), (70_000, 1_500, 0)])
@pytest.mark.parametrize("radius", [0, 5, 31])
def test_crowded_buckets_in_every_layout(copies: int, others: int, low_bits: int, radius: int) -> None:
    rng = np.random.default_rng(copies + radius)
    crowded = random_codes(rng, 1, 256)[0]
    codes = np.concatenate([np.repeat(crowded[None, :], copies, axis=0), random_codes(rng, others, 256)])
    codes[copies + 3 :: 97] = crowded  # some copies among the others too
    mih = MultiIndexHash.build(codes, 256, chunk_bits=12, chunks=8)
    assert mih.offsets.low_bits == low_bits
    queries = np.stack([crowded, flip_bits(rng, crowded, radius), flip_bits(rng, codes[-1], radius)])
    expected = brute_force(codes, queries, radius)
    assert by_kernel(mih, codes, queries, radius) == expected
    assert len(expected) >= copies


def test_large_radii_up_to_every_bit() -> None:
    rng = np.random.default_rng(5)
    codes = random_codes(rng, 300, 64)
    codes[:3] = ~codes[3:6]  # 64 bits away
    mih = MultiIndexHash.build(codes, 64, chunk_bits=8, chunks=8)
    for radius in (40, 63, 64):
        assert check(mih, codes, codes[3:8], radius)
    assert len(brute_force(codes, codes[3:4], 64)) == 300


def test_codes_that_are_not_aligned() -> None:
    """Codes mapped from a saved FAISS file start where its header ends, at any byte."""
    rng = np.random.default_rng(9)
    codes, queries = planted(rng, 800, 256, [0, 4, 31], nqueries=6)
    mih = MultiIndexHash.build(codes, 256, chunk_bits=10, chunks=12)
    expected = brute_force(codes, queries, 31)
    for shift in range(1, 8):
        raw = np.zeros(codes.size + 8, dtype=np.uint8)
        shifted = raw[shift : shift + codes.size].reshape(codes.shape)
        shifted[:] = codes
        assert shifted.ctypes.data % 8
        assert by_kernel(mih, shifted, queries, 31) == expected


def test_empty_tables_and_no_queries() -> None:
    codes = np.zeros((0, 32), dtype=np.uint8)
    mih = MultiIndexHash.build(codes, 256, chunk_bits=16, chunks=4)
    queries = random_codes(np.random.default_rng(1), 3, 256)
    assert by_kernel(mih, codes, queries, 31) == []
    full = MultiIndexHash.build(queries, 256, chunk_bits=16, chunks=4)
    assert by_kernel(full, queries, queries[:0], 31) == []


def test_rows_after_the_tables_are_left_to_the_caller() -> None:
    """The codes may run past the rows the tables cover (rows appended since): never proposed."""
    rng = np.random.default_rng(3)
    codes = random_codes(rng, 500, 256)
    mih = MultiIndexHash.build(codes[:400], 256, chunk_bits=10, chunks=8)
    queries = codes[[10, 450]]
    assert by_kernel(mih, codes, queries, 0) == [(0, 10, 0)]


def test_tables_pointing_outside_the_codes_are_an_error() -> None:
    rng = np.random.default_rng(4)
    codes = random_codes(rng, 500, 256)
    mih = MultiIndexHash.build(codes, 256, chunk_bits=10, chunks=8)
    with pytest.raises(ValueError, match="outside"):
        mih.search(codes[:100], codes[200:201], 31)


def test_searches_from_several_threads_agree() -> None:
    """The kernel runs without the GIL (the server searches from threads): concurrent searches of
    one index, sharing its tables and codes, get the answers a lone search gets."""
    rng = np.random.default_rng(11)
    codes, queries = planted(rng, 3_000, 256, [0, 7, 31, 32], nqueries=40)
    mih = MultiIndexHash.build(codes, 256, chunk_bits=10, chunks=12)
    expected = by_kernel(mih, codes, queries, 31)
    assert expected == brute_force(codes, queries, 31)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: by_kernel(mih, codes, queries, 31), range(16)))
    assert all(result == expected for result in results)
