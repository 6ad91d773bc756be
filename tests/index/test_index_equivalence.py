"""FaissIndex must return exactly what brute force returns: LinearIndex and a pure-Python oracle."""

from __future__ import annotations

import numpy as np
import pytest
from _index_data import as_int, flip_bits, oracle, planted, random_codes, search_both
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hashdb.index.faiss_index import FaissIndex
from hashdb.index.linear import LinearIndex
from hashdb.index.mih import chunk_thresholds

RADII = (0, 10, 31, 32)
# Crossing the flat -> multi-index switch cheaply: the switch size is a constructor argument.
SWITCH = 40
SIZES = (0, 1, 2, SWITCH - 1, SWITCH, SWITCH + 1, 150)

hyp = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def around(radius: int) -> list[int]:
    return sorted({max(0, d) for d in (0, 1, radius - 1, radius, radius + 1, 31, 32, 33, 40)})


def build(
    bits: int, ids: np.ndarray, codes: np.ndarray, *, forced_mih: bool, chunk_bits: int | None, batches: int
) -> tuple[FaissIndex, LinearIndex]:
    fast = FaissIndex(
        bits, large_min_size=SWITCH, chunk_bits=chunk_bits,
        mih_work_divisor=0 if forced_mih else 16,
    )
    slow = LinearIndex(bits)
    for part in np.array_split(np.arange(len(ids)), batches):
        fast.add(ids[part], codes[part])
        slow.add(ids[part], codes[part])
    if len(fast) >= SWITCH:
        fast.compact()  # the tables cover every row, not just a brute-forced delta
    return fast, slow


@hyp
@given(
    seed=st.integers(0, 2**32 - 1),
    bits=st.sampled_from((64, 256)),
    n=st.sampled_from(SIZES),
    radius=st.sampled_from(RADII),
    forced_mih=st.booleans(),
    chunk_bits=st.sampled_from((None, 5, 8, 13)),
    batches=st.integers(1, 3),
)
def test_faiss_equals_linear_and_python_oracle(
    seed: int, bits: int, n: int, radius: int, forced_mih: bool, chunk_bits: int | None, batches: int
) -> None:
    rng = np.random.default_rng(seed)
    codes, queries = planted(rng, n, bits, around(radius), nqueries=6)
    queries = np.concatenate([queries, codes[: min(n, 3)]])  # stored codes: distance 0 hits
    ids = rng.choice(10**9, size=n, replace=False).astype(np.int64)
    fast, slow = build(bits, ids, codes, forced_mih=forced_mih, chunk_bits=chunk_bits, batches=batches)

    expected = oracle({int(k): as_int(c) for k, c in zip(ids, codes)}, queries, radius)
    assert slow.search(queries, radius) == expected
    assert search_both(fast, queries, radius) == expected
    # One query at a time: the API's single lookup, grouped by its own path (_scan.group).
    for query, wanted in zip(queries, expected):
        assert search_both(fast, query[None, :], radius) == [wanted]
    assert len(fast) == len(slow) == n
    assert fast.structure == ("mih" if n >= SWITCH else "flat")


@pytest.mark.parametrize("bits", [64, 256])
@pytest.mark.parametrize("structure", ["flat", "mih"])
def test_planted_hits_at_the_threshold_are_found_and_one_more_bit_is_not(bits: int, structure: str) -> None:
    rng = np.random.default_rng(7)
    base = random_codes(rng, 1, bits)[0]
    filler = random_codes(rng, 200, bits)
    near = {31: flip_bits(rng, base, 31), 32: flip_bits(rng, base, 32), 0: base.copy()}
    codes = np.concatenate([filler, np.stack([near[0], near[31], near[32]])])
    ids = np.arange(len(codes), dtype=np.int64) + 1000
    index = FaissIndex(bits, large_min_size=SWITCH if structure == "mih" else 10**9, mih_work_divisor=0)
    index.add(ids, codes)
    assert index.structure == structure
    got = {r: search_both(index, base[None, :], r)[0] for r in (30, 31, 32)}
    assert (1200, 0) in got[30] and (1201, 31) not in got[30]
    assert (1201, 31) in got[31] and (1202, 32) not in got[31]
    assert (1201, 31) in got[32] and (1202, 32) in got[32]


@pytest.mark.parametrize("chunk_bits", [12, 16, 17])
@pytest.mark.parametrize("radius", [31, 32])
def test_multi_index_finds_the_pigeonhole_worst_case(chunk_bits: int, radius: int) -> None:
    """Neighbours whose distance is spread as evenly over the chunks as it can be: every chunk
    but one is one bit past its per-chunk threshold, so only that one chunk can find them."""
    bits = 256
    chunks = bits // chunk_bits
    thresholds = chunk_thresholds(radius, chunks)
    assert sum(t + 1 for t in thresholds) == radius + 1
    rng = np.random.default_rng(chunk_bits * 100 + radius)
    query = random_codes(rng, 1, bits)[0]

    def with_chunk_distances(dists: list[int], extra_uncovered: int = 0) -> np.ndarray:
        flips: list[int] = []
        for c, d in enumerate(dists):
            flips += rng.choice(range(c * chunk_bits, (c + 1) * chunk_bits), size=d, replace=False).tolist()
        uncovered = list(range(chunks * chunk_bits, bits))
        flips += rng.choice(uncovered, size=min(extra_uncovered, len(uncovered)), replace=False).tolist()
        out = query.copy()
        for bit in flips:
            out[bit // 8] ^= np.uint8(0x80 >> (bit % 8))
        return out

    neighbours, far = [], []
    for j in range(chunks):
        dists = [t + 1 for t in thresholds]
        dists[j] = thresholds[j]  # the only chunk within its threshold
        if sum(dists) <= radius:
            neighbours.append(with_chunk_distances(dists))
    # Every chunk one bit past its threshold: radius + 1 away, must not be returned.
    far.append(with_chunk_distances([t + 1 for t in thresholds]))
    codes = np.concatenate([np.stack(neighbours + far), random_codes(rng, 100, bits)])
    ids = np.arange(len(codes), dtype=np.int64)

    index = FaissIndex(bits, large_min_size=1, chunk_bits=chunk_bits, mih_work_divisor=0)
    index.add(ids, codes)
    assert index.structure == "mih"
    expected = oracle({int(k): as_int(c) for k, c in zip(ids, codes)}, query[None, :], radius)
    got = search_both(index, query[None, :], radius)
    assert got == expected
    assert {k for k, _ in got[0]} >= set(range(len(neighbours)))
    assert len(neighbours) > 0 and all(d == radius for k, d in got[0] if k < len(neighbours))


@hyp
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.sampled_from((1, 5, SWITCH - 1, SWITCH + 5, 120)),
    forced_mih=st.booleans(),
    remove_fraction=st.floats(0.0, 1.0),
)
def test_removed_ids_never_appear(seed: int, n: int, forced_mih: bool, remove_fraction: float) -> None:
    rng = np.random.default_rng(seed)
    codes, queries = planted(rng, n, 256, [0, 5, 31, 32], nqueries=4)
    queries = np.concatenate([queries, codes[:3]])
    ids = rng.choice(10**6, size=n, replace=False).astype(np.int64)
    fast, slow = build(256, ids, codes, forced_mih=forced_mih, chunk_bits=None, batches=2)
    gone = rng.choice(ids, size=int(n * remove_fraction), replace=False)
    unknown = np.array([10**7, 10**7 + 1], dtype=np.int64)  # never added: ignored
    fast.remove(np.concatenate([gone, unknown]))
    slow.remove(np.concatenate([gone, unknown]))
    assert len(fast) == n - len(gone)
    kept = {int(k): as_int(c) for k, c in zip(ids, codes) if k not in set(gone.tolist())}
    for radius in (0, 31, 32, 256):
        got = search_both(fast, queries, radius)
        assert got == slow.search(queries, radius) == oracle(kept, queries, radius)
        assert not {k for hits in got for k, _ in hits} & set(gone.tolist())


@pytest.mark.parametrize("large_min_size", [1, 10**9])
def test_readding_an_id_replaces_its_code(large_min_size: int) -> None:
    rng = np.random.default_rng(11)
    codes = random_codes(rng, 60, 256)
    ids = np.arange(60, dtype=np.int64)
    index = FaissIndex(256, large_min_size=large_min_size, mih_work_divisor=0)
    index.add(ids, codes)
    old, new = codes[7].copy(), random_codes(rng, 1, 256)[0]
    index.add([7], new[None, :])
    assert len(index) == 60
    assert (7, 0) not in index.search(old[None, :], 10)[0]
    assert index.search(new[None, :], 0)[0] == [(7, 0)]
    # A removed id that is added again is live again, with the new code.
    index.remove([7])
    assert index.search(new[None, :], 0)[0] == []
    index.add([7], old[None, :])
    assert index.search(old[None, :], 0)[0] == [(7, 0)]
    # The same id twice in one batch: the later code wins, as with two calls.
    index.add([8, 8], np.stack([old, new]))
    assert index.search(new[None, :], 0)[0] == [(8, 0)]
    assert (8, 0) not in index.search(old[None, :], 0)[0]


def test_large_radius_falls_back_to_the_flat_scan_and_stays_exact() -> None:
    rng = np.random.default_rng(5)
    codes = random_codes(rng, 300, 64)
    ids = np.arange(300, dtype=np.int64)
    index = FaissIndex(64, large_min_size=SWITCH)
    index.add(ids, codes)
    assert index.structure == "mih"
    expected = oracle({int(k): as_int(c) for k, c in zip(ids, codes)}, codes[:3], 40)
    assert search_both(index, codes[:3], 40) == expected
    assert [len(hits) for hits in index.search(codes[:2], 64)] == [300, 300]


@pytest.mark.parametrize("bits", [64, 256])
def test_rows_outside_the_tables_are_searched_until_compaction(bits: int) -> None:
    """Rows appended (delta) or overwritten (dirty) after the tables were built, and removals,
    are all reflected before any compaction."""
    rng = np.random.default_rng(bits)
    codes = random_codes(rng, 100, bits)
    ids = np.arange(100, dtype=np.int64) * 3
    index = FaissIndex(bits, large_min_size=50, delta_limit=1000, mih_work_divisor=0)
    index.add(ids, codes)
    assert index.structure == "mih"
    truth = {int(k): as_int(c) for k, c in zip(ids, codes)}
    new_ids = np.array([1, 4, 7, 10, 13], dtype=np.int64)  # delta rows, between existing ids
    new_codes = np.stack([flip_bits(rng, codes[i], 3) for i in range(5)])
    index.add(new_ids, new_codes)
    replaced = np.array([30, 60, 90], dtype=np.int64)  # dirty rows: new codes at old rows
    replaced_codes = random_codes(rng, 3, bits)
    index.add(replaced, replaced_codes)
    index.remove([0, 33, 7])  # two table rows and one delta row
    truth.update({int(k): as_int(c) for k, c in zip(new_ids, new_codes)})
    truth.update({int(k): as_int(c) for k, c in zip(replaced, replaced_codes)})
    for gone in (0, 33, 7):
        truth.pop(gone)
    queries = np.concatenate([new_codes, replaced_codes, codes[[10, 20, 30, 0, 11]]])
    queries = np.stack([flip_bits(rng, q, 2) for q in queries])
    for radius in (0, 2, 10, 31, 32):
        assert search_both(index, queries, radius) == oracle(truth, queries, radius)
    index.compact()
    for radius in (2, 31):
        assert search_both(index, queries, radius) == oracle(truth, queries, radius)


@pytest.mark.parametrize("large_min_size", [1, 10**9])
def test_ids_beyond_32_bits_mix_with_small_ones(large_min_size: int) -> None:
    rng = np.random.default_rng(13)
    codes = random_codes(rng, 80, 256)
    small = np.arange(60, dtype=np.int64) + 2**32 - 30  # straddles the 32-bit boundary
    big = np.array([2**63 - 1, 2**40, 2**32 + 1000] + list(range(17)), dtype=np.int64)
    index = FaissIndex(256, large_min_size=large_min_size, mih_work_divisor=0)
    index.add(small[:20], codes[:20])
    index.compact()
    index.add(big, codes[60:])  # ids that do not fit 32 bits arrive after a compaction
    index.add(small[20:], codes[20:60])
    truth = {int(k): as_int(c) for k, c in zip(np.concatenate([small, big]), np.concatenate([codes[:60], codes[60:]]))}
    index.add([2**63 - 1], codes[:1])  # replace the largest id
    truth[2**63 - 1] = as_int(codes[0])
    index.remove([2**40, int(small[3])])
    del truth[2**40], truth[int(small[3])]
    for step in ("before", "after"):
        assert len(index) == len(truth), step
        assert search_both(index, codes, 0) == oracle(truth, codes, 0), step
        assert search_both(index, codes, 32) == oracle(truth, codes, 32), step
        index.compact()


@pytest.mark.parametrize("stored", [3, 64, 65, 300])
def test_a_single_query_with_many_hits_at_equal_distances_is_ordered_by_distance_then_id(stored: int) -> None:
    # Duplicates of one code at distance 0 and of a 5-bit neighbour at 5, under shuffled ids:
    # the answer lists every id, nearest first, ties by id, on either side of SMALL_GROUP.
    rng = np.random.default_rng(stored)
    base = random_codes(rng, 1, 256)[0]
    other = flip_bits(rng, base, 5)
    codes = np.stack([base if i % 2 else other for i in range(stored)] + list(random_codes(rng, 60, 256)))
    ids = rng.permutation(10_000)[: len(codes)].astype(np.int64)
    index = FaissIndex(256, large_min_size=SWITCH, mih_work_divisor=0)
    index.add(ids, codes)
    index.compact()
    expected = oracle({int(k): as_int(c) for k, c in zip(ids, codes)}, base[None, :], 31)
    assert len(expected[0]) >= stored
    assert search_both(index, base[None, :], 31) == expected
