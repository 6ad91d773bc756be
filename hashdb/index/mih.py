"""Multi-index hashing (Norouzi et al., 2014) in compact numpy arrays: candidate generation only.

This module proposes candidate rows; it never decides a match. The caller verifies every
candidate against its full code, so a candidate too many costs time, never correctness, and
exactness rests only on the pigeonhole argument below never missing a true neighbour.

Why not FAISS's IndexBinaryMultiHash: it keeps one std::unordered_map of std::vectors per
chunk, which measured 350-770 bytes per 256-bit hash at 1M codes (against a 100 bytes/hash
budget at 10M); the tables here cost 4 bytes per hash per chunk plus one offsets array.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations

import numpy as np

from hashdb.index._bits import bit_field

# Chunk width is chosen so a bucket holds about 2**BUCKET_LOAD_LOG2 codes: wider chunks mean
# fewer random candidates but an offsets table (4 bytes per bucket per chunk) that outgrows the
# data; at ~4 codes per bucket the table costs under 1 byte per hash per chunk.
BUCKET_LOAD_LOG2 = 2
MIN_CHUNK_BITS = 8
MAX_CHUNK_BITS = 32  # keys are uint32
# Rows are packed as (key << 32 | row) for one fast uint64 sort per chunk.
MAX_ROWS = 2**32 - 1
# Queries are expanded in groups so probe and candidate arrays stay cache-sized: at 10M codes a
# query has ~10k candidates, so 16 queries gather ~5 MB of codes at a time.
QUERY_GROUP = 16


def chunk_bits_for(count: int, bits: int) -> int:
    """Chunk width for `count` codes of `bits` bits: ~log2(count) - BUCKET_LOAD_LOG2, clamped."""
    want = max(count, 1).bit_length() - 1 - BUCKET_LOAD_LOG2
    return max(MIN_CHUNK_BITS, min(want, MAX_CHUNK_BITS, bits // 2))


@lru_cache(maxsize=64)
def _flip_masks(width: int, max_flips: int) -> np.ndarray:
    """Every `width`-bit value with at most `max_flips` bits set, as uint32."""
    masks = [0]
    for k in range(1, max_flips + 1):
        masks.extend(sum(1 << i for i in combo) for combo in combinations(range(width), k))
    out = np.array(masks, dtype=np.uint32)
    out.flags.writeable = False
    return out


def chunk_thresholds(radius: int, chunks: int) -> tuple[int, ...]:
    """Per-chunk search radius that cannot miss a neighbour within `radius` (-1: chunk not probed).

    Pigeonhole, generalised: the chunks are disjoint bit ranges, so a code's distance to the
    query is at least the sum of its per-chunk distances. If a code were farther than t_i in
    every chunk i, its distance would be >= sum(t_i + 1). Choosing the t_i so that
    sum(t_i + 1) = radius + 1 makes that > radius, so every code within `radius` is within t_i
    of the query in at least one chunk, and probing each chunk's buckets within t_i of the
    query's chunk value finds it. (Bits left outside every chunk only lower the per-chunk
    distances further, so they do not break this.) With equal t this is the classic
    floor(radius / chunks); e.g. radius 31 with 12 chunks gives t = 2 in 8 chunks and t = 1 in 4
    (8 * 3 + 4 * 2 = 32), rather than t = 2 in all 12.
    """
    base, extra = divmod(radius + 1, chunks)
    return tuple(base if i < extra else base - 1 for i in range(chunks))


@dataclass(frozen=True, slots=True)
class ProbePlan:
    radius: int
    probes: int  # bucket look-ups per query
    expected_candidates: float  # for uniformly random codes


class MultiIndexHash:
    """Per chunk: rows sorted by chunk value (`order`) and bucket boundaries (`offsets`)."""

    def __init__(self, bits: int, chunk_bits: int, order: np.ndarray, offsets: np.ndarray) -> None:
        self.bits = bits
        self.chunk_bits = chunk_bits
        self.chunks = bits // chunk_bits
        self.count = int(order.shape[1])
        self._order = order  # (chunks, count) uint32
        self._offsets = offsets  # (chunks, 2**chunk_bits + 1) uint32
        self._probe_cache: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._plan_cache: dict[int, ProbePlan] = {}

    @classmethod
    def build(cls, codes: np.ndarray, bits: int, chunk_bits: int | None = None) -> MultiIndexHash:
        count = codes.shape[0]
        if count > MAX_ROWS:
            raise ValueError(f"multi-index hashing supports up to {MAX_ROWS} codes, got {count}")
        width = chunk_bits if chunk_bits is not None else chunk_bits_for(count, bits)
        chunks = bits // width
        buckets = 1 << width
        order = np.empty((chunks, count), dtype=np.uint32)
        offsets = np.empty((chunks, buckets + 1), dtype=np.uint32)
        rows = np.arange(count, dtype=np.uint64)
        for c in range(chunks):
            keys = bit_field(codes, c * width, width)
            offsets[c, 0] = 0
            np.cumsum(np.bincount(keys, minlength=buckets), out=offsets[c, 1:])
            packed = keys.astype(np.uint64)
            del keys
            packed <<= np.uint64(32)
            packed |= rows
            packed.sort()
            order[c] = packed  # the low 32 bits are the row number
            del packed
        return cls(bits, width, order, offsets)

    def extended(self, codes: np.ndarray) -> MultiIndexHash:
        """Tables over all of `codes`, given that these tables cover its first `count` rows.

        Each new row goes to the end of its bucket, which is exactly where a full build puts it
        (rows sort by (key, row) and new rows are the largest), so the result equals
        `build(codes, bits, chunk_bits)` at a fraction of the cost: no sort of the old rows.
        """
        start, total = self.count, codes.shape[0]
        if total < start or total > MAX_ROWS:
            raise ValueError(f"cannot extend tables over {start} rows to {total} rows")
        width = self.chunk_bits
        new_rows = np.arange(start, total, dtype=np.uint32)
        order = np.empty((self.chunks, total), dtype=np.uint32)
        offsets = np.empty_like(self._offsets)
        for c in range(self.chunks):
            keys = bit_field(codes[start:], c * width, width)
            by_key = np.argsort(keys, kind="stable")
            at = self._offsets[c][keys[by_key].astype(np.int64) + 1].astype(np.int64)
            order[c] = np.insert(self._order[c], at, new_rows[by_key])
            added = np.cumsum(np.bincount(keys, minlength=1 << width))
            offsets[c, 0] = 0
            offsets[c, 1:] = self._offsets[c, 1:] + added
        return MultiIndexHash(self.bits, width, order, offsets)

    def tables(self) -> tuple[np.ndarray, np.ndarray]:
        """(order, offsets), for saving; `MultiIndexHash(bits, chunk_bits, order, offsets)` restores."""
        return self._order, self._offsets

    def consistent_with(self, codes: np.ndarray, samples: int = 16) -> bool:
        """Cheap check that loaded tables belong to these codes: a few rows are in their buckets."""
        if codes.shape[0] != self.count or self._offsets.shape != (self.chunks, (1 << self.chunk_bits) + 1):
            return False
        if (self._offsets[:, -1] != self.count).any() or (np.diff(self._offsets, axis=1) > self.count).any():
            return False
        rows = np.unique(np.linspace(0, self.count - 1, num=min(samples, self.count)).astype(np.int64))
        keys = self.query_keys(codes[rows])
        for c in range(self.chunks):
            for row, key in zip(rows.tolist(), keys[:, c].tolist()):
                lo, hi = int(self._offsets[c, key]), int(self._offsets[c, key + 1])
                if row not in self._order[c, lo:hi]:
                    return False
        return True

    @property
    def nbytes(self) -> int:
        return int(self._order.nbytes + self._offsets.nbytes)

    def plan(self, radius: int) -> ProbePlan:
        """Cost of a search at `radius`, computed without building the probes."""
        plan = self._plan_cache.get(radius)
        if plan is None:
            probes = sum(
                sum(math.comb(self.chunk_bits, k) for k in range(t + 1))
                for t in chunk_thresholds(radius, self.chunks)
            )
            plan = ProbePlan(radius, probes, probes * self.count / (1 << self.chunk_bits))
            self._plan_cache[radius] = plan
        return plan

    def _probes(self, radius: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(chunk of each probe column, flip mask of each column, bucket-table base of each column)."""
        cached = self._probe_cache.get(radius)
        if cached is None:
            chunk_cols, masks = [], []
            for c, t in enumerate(chunk_thresholds(radius, self.chunks)):
                if t < 0:
                    continue
                m = _flip_masks(self.chunk_bits, t)
                masks.append(m)
                chunk_cols.append(np.full(len(m), c, dtype=np.int64))
            chunk_col = np.concatenate(chunk_cols)
            base = chunk_col * ((1 << self.chunk_bits) + 1)
            cached = (chunk_col, np.concatenate(masks), base)
            self._probe_cache[radius] = cached
        return cached

    def query_keys(self, queries: np.ndarray) -> np.ndarray:
        """(n, chunks) uint32 chunk values of query codes (same numbering as `bit_field`)."""
        width, chunks = self.chunk_bits, self.chunks
        # Unpack to one byte per bit, left-pad each chunk to 32 bits, pack back big-endian:
        # a handful of numpy calls for any number of queries, where per-chunk bit_field calls
        # would cost ~10 us each for a single query.
        bitmap = np.unpackbits(queries, axis=1)[:, : chunks * width].reshape(-1, chunks, width)
        padded = np.zeros((bitmap.shape[0], chunks, 32), dtype=np.uint8)
        padded[:, :, 32 - width :] = bitmap
        return np.packbits(padded, axis=2).view(">u4")[..., 0].astype(np.uint32)

    def candidates(self, queries: np.ndarray, radius: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Per group of queries, (query number, row) pairs, with repeats, that include every row
        within `radius` of its query. Groups keep the caller's verification cache-sized."""
        chunk_col, masks, base = self._probes(radius)
        keys = self.query_keys(queries)
        offsets = self._offsets.reshape(-1)
        order = self._order.reshape(-1)
        for lo in range(0, queries.shape[0], QUERY_GROUP):
            part = keys[lo : lo + QUERY_GROUP]
            bucket = base + (part[:, chunk_col] ^ masks).astype(np.int64)
            starts = offsets[bucket].astype(np.int64)
            lengths = offsets[bucket + 1].astype(np.int64) - starts
            per_query = lengths.sum(axis=1)
            total = int(per_query.sum())
            if total == 0:
                continue
            lengths = lengths.reshape(-1)
            keep = lengths > 0
            lengths = lengths[keep]
            # Position of each bucket's first row in the flattened (chunks, count) order array,
            # then one arange walks every bucket's run of rows.
            first = (chunk_col * self.count + starts).reshape(-1)[keep]
            run_start = np.cumsum(lengths) - lengths
            flat = np.repeat(first - run_start, lengths) + np.arange(total, dtype=np.int64)
            qnum = np.repeat(np.arange(lo, lo + part.shape[0], dtype=np.int64), per_query)
            yield qnum, order[flat].astype(np.int64)
