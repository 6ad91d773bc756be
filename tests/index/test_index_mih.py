"""Multi-index hashing tables: the pigeonhole plan, candidate completeness, and merged tables."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _index_data import as_int, flip_bits, oracle, random_codes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hashdb.index.faiss_index import FaissIndex
from hashdb.index.mih import (
    MIN_CHUNK_BITS,
    TABLE_BYTES_PER_CODE,
    TABLE_FLOOR_BYTES,
    MultiIndexHash,
    chunk_thresholds,
    chunking_for,
)

hyp = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@given(radius=st.integers(0, 64), chunks=st.integers(1, 32))
def test_thresholds_sum_to_radius_plus_one_and_differ_by_at_most_one(radius: int, chunks: int) -> None:
    t = chunk_thresholds(radius, chunks)
    assert len(t) == chunks
    assert sum(x + 1 for x in t) == radius + 1
    assert max(t) - min(t) <= 1 and min(t) >= -1


def _work(count: int, bits: int, chunks: int, width: int) -> float:
    """Probes plus expected random candidates at radius bits // 8 - 1, recomputed here from the
    pigeonhole split: radius + 1 spread as evenly as possible over the chunks."""
    radius = bits // 8 - 1
    per_chunk = [(radius + 1) // chunks + (1 if i < (radius + 1) % chunks else 0) - 1 for i in range(chunks)]
    probes = sum(sum(math.comb(width, k) for k in range(t + 1)) for t in per_chunk)
    return probes * (1 + count / 2**width)


def _table_bytes_per_code(count: int, chunks: int, width: int) -> float:
    """Order arrays (4 bytes per code per chunk) plus bucket offsets as the layout documents
    them for evenly spread codes: uint8 parts with a uint32 every 64 buckets while a bucket
    averages at most 2 codes, else uint16 parts with a uint32 every 256 buckets."""
    buckets = 2**width
    if count / buckets <= 2:
        offsets = (buckets + 1) + 4 * (buckets // min(64, buckets) + 1)
    else:
        offsets = 2 * (buckets + 1) + 4 * (buckets // min(256, buckets) + 1)
    return chunks * (4 * count + offsets) / count


@pytest.mark.parametrize("count", [40_000, 100_000, 1_000_000, 2_000_000, 10_000_000])
@pytest.mark.parametrize("bits", [64, 256])
def test_chunking_fits_the_memory_budget_and_no_neighbour_does_less_work(count: int, bits: int) -> None:
    chunks, width = chunking_for(count, bits)
    assert chunks * width <= bits and MIN_CHUNK_BITS <= width <= 32
    allowance = max(TABLE_BYTES_PER_CODE, TABLE_FLOOR_BYTES / count)
    assert _table_bytes_per_code(count, chunks, width) <= allowance
    for c, w in ((chunks + dc, width + dw) for dc in (-1, 0, 1) for dw in (-1, 0, 1)):
        if c >= 1 and MIN_CHUNK_BITS <= w and c * w <= bits and _table_bytes_per_code(count, c, w) <= allowance:
            assert _work(count, bits, chunks, width) <= _work(count, bits, c, w), (c, w)


def test_small_indexes_use_the_floor_and_large_ones_the_per_code_budget() -> None:
    chunks, width = chunking_for(100_000, 256)
    assert TABLE_BYTES_PER_CODE < _table_bytes_per_code(100_000, chunks, width) <= TABLE_FLOOR_BYTES / 100_000
    chunks, width = chunking_for(2_000_000, 256)
    assert _table_bytes_per_code(2_000_000, chunks, width) <= TABLE_BYTES_PER_CODE


def test_pdq_at_10m_fits_100_bytes_per_hash() -> None:
    chunks, width = chunking_for(10_000_000, 256)
    assert 32 + 4 + _table_bytes_per_code(10_000_000, chunks, width) <= 98


@hyp
@given(seed=st.integers(0, 2**32 - 1), bits=st.sampled_from((64, 256)), width=st.sampled_from((6, 8, 11)),
       radius=st.sampled_from((0, 3, 10, 31, 32)))
def test_candidates_include_every_row_within_the_radius(seed: int, bits: int, width: int, radius: int) -> None:
    rng = np.random.default_rng(seed)
    queries = random_codes(rng, 4, bits)
    codes = random_codes(rng, 300, bits)
    for i in range(0, 300, 3):
        codes[i] = flip_bits(rng, queries[i % 4], int(rng.integers(0, min(radius, bits) + 1)))
    mih = MultiIndexHash.build(codes, bits, width)
    pairs = {(int(q), int(r)) for group in mih.candidates(queries, radius) for q, r in zip(*group.pairs())}
    for q, query in enumerate(queries):
        for row, code in enumerate(codes):
            if (as_int(query) ^ as_int(code)).bit_count() <= radius:
                assert (q, row) in pairs


@hyp
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 400), split=st.floats(0, 1),
       width=st.sampled_from((5, 8, 12, 17)), bits=st.sampled_from((64, 256)))
def test_merged_tables_equal_a_full_build(seed: int, n: int, split: float, width: int, bits: int) -> None:
    rng = np.random.default_rng(seed)
    codes = random_codes(rng, n, bits)
    codes[n // 2 :: 7] = codes[0]  # repeated codes: several rows in one bucket
    head = int(n * split)
    merged = MultiIndexHash.build(codes[:head], bits, width).extended(codes)
    full = MultiIndexHash.build(codes, bits, width)
    a, b = merged.tables(), full.tables()
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].dtype == b[name].dtype and np.array_equal(a[name], b[name]), name


def test_appending_new_higher_ids_merges_instead_of_rebuilding() -> None:
    rng = np.random.default_rng(21)
    codes = random_codes(rng, 400, 256)
    index = FaissIndex(256, large_min_size=100, delta_limit=20, mih_work_divisor=0)
    index.add(np.arange(100) * 10, codes[:100])
    assert (index.full_builds, index.merges) == (1, 0)
    truth = {int(k) * 10: as_int(c) for k, c in zip(range(100), codes[:100])}
    for lo in range(100, 400, 15):  # store-like: each batch's ids above all earlier ones
        ids = np.arange(lo, lo + 15) * 10
        index.add(ids, codes[lo : lo + 15])
        truth.update({int(k): as_int(c) for k, c in zip(ids, codes[lo : lo + 15])})
        queries = np.stack([flip_bits(rng, codes[i], 4) for i in (0, lo, lo + 14)])
        assert index.search(queries, 31) == oracle(truth, queries, 31)
    # 300 rows appended in 20 batches: merges, until the size doubled from 100 (then a rebuild).
    assert index.merges >= 5 and index.full_builds >= 2
    # Removals between submissions stay tombstones: the next refresh is still a merge.
    builds, merges = index.full_builds, index.merges
    index.remove([0, 1500, 3990])
    for key in (0, 1500, 3990):
        del truth[key]
    ids = np.arange(5000, 5025) * 10
    new_codes = random_codes(rng, 25, 256)
    index.add(ids, new_codes)
    truth.update({int(k): as_int(c) for k, c in zip(ids, new_codes)})
    assert (index.full_builds, index.merges) == (builds, merges + 1)
    queries = np.concatenate([codes[[0, 150, 399]], new_codes[:3]])
    assert index.search(queries, 31) == oracle(truth, queries, 31)
    index.add([15], codes[:1])  # a lower id than the newest: the next refresh must rebuild
    builds = index.full_builds
    index.add(np.arange(10_000, 10_030), random_codes(rng, 30, 256))
    assert index.full_builds == builds + 1
