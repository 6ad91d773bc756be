"""Bucket offsets in their compact layouts: every layout answers exactly what plain offsets do,
crowded chunk values move a table to a larger layout, and searches stay exact in each."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _index_data import as_int, flip_bits, oracle, random_codes, search_both
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hashdb.index._buckets import BucketOffsets, OffsetsBuilder
from hashdb.index.base import load_index
from hashdb.index.faiss_index import FaissIndex

hyp = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def plain_offsets(keys: np.ndarray, width: int) -> np.ndarray:
    """(chunks, 2**width + 1) running counts of each chunk's keys, computed here directly."""
    out = np.zeros((keys.shape[0], 2**width + 1), dtype=np.uint32)
    for c, row in enumerate(keys):
        out[c, 1:] = np.cumsum(np.bincount(row, minlength=2**width))
    return out


def crowded_keys(rng: np.random.Generator, chunks: int, width: int, count: int, crowd: list[int]) -> np.ndarray:
    """Random keys, except that chunk c puts crowd[c] of its codes on one value."""
    keys = rng.integers(0, 2**width, size=(chunks, count)).astype(np.uint32)
    for c, many in enumerate(crowd):
        keys[c, :many] = rng.integers(0, 2**width)
    return keys


def assert_same_as_plain(offsets: BucketOffsets, plain: np.ndarray) -> None:
    chunks, buckets = plain.shape[0], plain.shape[1] - 1
    keys = np.tile(np.arange(buckets, dtype=np.uint32), (chunks, 1)).T  # every bucket of every chunk
    starts, lengths = offsets.lookup(np.arange(chunks, dtype=np.int64), keys)
    assert np.array_equal(starts.astype(np.int64), plain[:, :-1].T.astype(np.int64))
    assert np.array_equal(lengths.astype(np.int64), np.diff(plain.astype(np.int64), axis=1).T)
    for c in range(chunks):
        assert np.array_equal(offsets.chunk_offsets(c), plain[c])


@hyp
@given(seed=st.integers(0, 2**32 - 1), width=st.sampled_from((3, 6, 9, 12)), count=st.integers(0, 3000),
       chunks=st.integers(1, 4))
def test_every_layout_equals_plain_offsets(seed: int, width: int, count: int, chunks: int) -> None:
    rng = np.random.default_rng(seed)
    keys = crowded_keys(rng, chunks, width, count, [int(rng.integers(0, count + 1)) for _ in range(chunks)])
    plain = plain_offsets(keys, width)
    offsets = BucketOffsets.from_full(plain)
    assert_same_as_plain(offsets, plain)
    # The layout is the smallest whose blocks hold fewer rows than its low part can count.
    fullest64 = np.diff(plain[:, :: min(64, 2**width)].astype(np.int64), axis=1).max()
    expected = 8 if fullest64 < 256 else 16
    assert offsets.low_bits == expected


@pytest.mark.parametrize(("crowd", "low_bits"), [([0, 0, 0], 8), ([0, 300, 0], 16), ([0, 0, 70_000], 0)])
def test_a_crowded_chunk_moves_the_whole_table_to_a_larger_layout(crowd: list[int], low_bits: int) -> None:
    rng = np.random.default_rng(len(crowd) + sum(crowd))
    width, count = 16, 80_000  # about 1.2 codes per bucket
    keys = crowded_keys(rng, 3, width, count, crowd)
    plain = plain_offsets(keys, width)
    builder = OffsetsBuilder(3, width)
    for c in range(3):
        builder.add(c, plain[c])
    offsets = builder.finish()
    assert offsets.low_bits == low_bits
    assert_same_as_plain(offsets, plain)
    assert offsets.valid(count)
    assert offsets.nbytes < plain.nbytes or low_bits == 0


def test_offsets_that_decrease_or_overrun_are_invalid() -> None:
    rng = np.random.default_rng(3)
    plain = plain_offsets(crowded_keys(rng, 2, 8, 500, [0, 0]), 8)
    assert BucketOffsets.from_full(plain).valid(500)
    assert not BucketOffsets.from_full(plain).valid(501)
    broken = plain.copy()
    broken[1, 100] = broken[1, 99] - 1 if broken[1, 99] else 7
    assert not BucketOffsets.from_full(broken).valid(500)


def tiles_rows(offsets: BucketOffsets, count: int) -> bool:
    """The property valid() promises, from lookup of every bucket: each chunk's buckets run
    from row 0 to `count`, each starting where the one before ends; the stored total (the
    offsets' last entry, which chunk_offsets reads) is `count`; and in a compact layout each
    block's first bucket starts at its block's stored offset. (A block's first low entry
    raised by one still tiles the rows: the bucket before it reads one row more, its own first
    row, which a search of its own key then misses.)"""
    buckets = 1 << offsets.width
    keys = np.tile(np.arange(buckets, dtype=np.uint32), (offsets.chunks, 1)).T
    starts, lengths = offsets.lookup(np.arange(offsets.chunks, dtype=np.int64), keys)
    starts, ends = starts.astype(np.int64), starts.astype(np.int64) + lengths.astype(np.int64)
    firsts_agree = offsets.low is None or np.array_equal(
        starts[::1 << offsets.block_log2].T, offsets.high[:, :-1].astype(np.int64))
    return bool((starts[0] == 0).all() and (ends[-1] == count).all() and (starts[1:] == ends[:-1]).all()
                and (offsets.high[:, -1] == count).all() and firsts_agree)


@hyp
@given(seed=st.integers(0, 2**32 - 1), width=st.sampled_from((3, 6, 9, 12)), crowd=st.sampled_from((0, 300)),
       part=st.sampled_from(("low", "high", "none")), where=st.floats(0, 1), delta=st.integers(1, 255))
def test_valid_is_true_exactly_when_the_buckets_tile_the_rows(seed: int, width: int, crowd: int, part: str,
                                                               where: float, delta: int) -> None:
    # Damage one stored value of a compact table (any position, the last low entry included),
    # or none: valid() must agree with reading every bucket back.
    rng = np.random.default_rng(seed)
    count = 2 * 2**width + crowd
    offsets = BucketOffsets.from_full(plain_offsets(crowded_keys(rng, 2, width, count, [crowd, 0]), width))
    if part != "none" and offsets.low is not None:
        array = offsets.low if part == "low" else offsets.high
        flat = array.reshape(-1)
        at = min(int(where * flat.size), flat.size - 1)
        flat[at] = (int(flat[at]) + delta) % (1 << (8 * flat.itemsize))
    assert offsets.valid(count) == tiles_rows(offsets, count)
    if part == "none":
        assert offsets.valid(count)


def test_a_raised_first_entry_of_a_block_is_invalid() -> None:
    # Found by the property above (seed 0, width 9, the low entry a quarter of the way in, +1):
    # the buckets still tile the rows, but one of them lost its first row to the bucket before.
    rng = np.random.default_rng(0)
    offsets = BucketOffsets.from_full(plain_offsets(crowded_keys(rng, 2, 9, 1024, [0, 0]), 9))
    assert offsets.low is not None and offsets.valid(1024)
    offsets.low[0, 4 << offsets.block_log2] += 1
    assert not offsets.valid(1024)
    assert not tiles_rows(offsets, 1024)


def test_a_damaged_last_low_entry_is_invalid() -> None:
    # The last bucket's length is read from the last low entry, which the check once skipped.
    rng = np.random.default_rng(5)
    offsets = BucketOffsets.from_full(plain_offsets(crowded_keys(rng, 2, 8, 500, [0, 0]), 8))
    assert offsets.low is not None and offsets.valid(500)
    offsets.low[1, -1] += 3
    assert not offsets.valid(500)


@pytest.mark.parametrize(("copies", "low_bits"), [(0, 8), (400, 16), (70_000, 0)])
def test_search_is_exact_in_every_layout_and_survives_a_reload(copies: int, low_bits: int, tmp_path: Path) -> None:
    """Many stored copies of one code crowd its chunk values; queries near it get every copy."""
    rng = np.random.default_rng(copies)
    crowded = random_codes(rng, 1, 256)[0]
    codes = np.concatenate([np.repeat(crowded[None, :], copies, axis=0), random_codes(rng, 2_000, 256)])
    ids = rng.choice(10**9, size=len(codes), replace=False).astype(np.int64)
    index = FaissIndex(256, large_min_size=1_000, chunk_bits=12, chunks=8, mih_work_divisor=0)
    index.add(ids, codes)
    assert index.structure == "mih"
    mih = index._mih
    assert mih is not None and mih.offsets.low_bits == low_bits
    queries = np.stack([flip_bits(rng, crowded, 5), flip_bits(rng, codes[-1], 30), random_codes(rng, 1, 256)[0]])
    expected = oracle({int(k): as_int(c) for k, c in zip(ids, codes)}, queries, 31)
    assert search_both(index, queries, 31) == expected
    index.save(tmp_path / "pdq.index", 1)
    loaded, _ = load_index(tmp_path / "pdq.index")
    assert isinstance(loaded, FaissIndex) and loaded._mih is not None
    assert loaded._mih.offsets.low_bits == low_bits
    assert search_both(loaded, queries, 31) == expected


@pytest.mark.parametrize("bits", [64, 72, 128, 256])
def test_distances_up_to_every_bit_are_exact(bits: int) -> None:
    """Complements are `bits` away: the verification's modulo-256 filter must not wrap them to 0."""
    rng = np.random.default_rng(bits)
    codes = random_codes(rng, 300, bits)
    codes[:3] = ~codes[3:6]
    ids = np.arange(300, dtype=np.int64)
    index = FaissIndex(bits, large_min_size=100, chunk_bits=8, mih_work_divisor=0)
    index.add(ids, codes)
    assert index.structure == "mih"
    truth = {int(k): as_int(c) for k, c in zip(ids, codes)}
    for radius in (bits - 1, bits):
        assert search_both(index, codes[3:6], radius) == oracle(truth, codes[3:6], radius)
    assert (0, bits) in index.search(codes[3:4], bits)[0]


@hyp
@given(seed=st.integers(0, 2**32 - 1), width=st.sampled_from((3, 6, 9, 12)), count=st.integers(0, 2000),
       added=st.integers(0, 1000), chunks=st.integers(1, 4))
def test_grown_offsets_equal_the_offsets_of_all_keys(seed: int, width: int, count: int, added: int,
                                                    chunks: int) -> None:
    # Appended rows may crowd a block past its layout: then the layout must grow, as a build's would.
    rng = np.random.default_rng(seed)
    keys = crowded_keys(rng, chunks, width, count, [int(rng.integers(0, count + 1)) for _ in range(chunks)])
    more = crowded_keys(rng, chunks, width, added, [int(rng.integers(0, added + 1)) for _ in range(chunks)])
    grown = BucketOffsets.from_full(plain_offsets(keys, width)).grown(list(more))
    everything = plain_offsets(np.concatenate([keys, more], axis=1), width)
    assert_same_as_plain(grown, everything)
    assert grown.low_bits == BucketOffsets.from_full(everything).low_bits

