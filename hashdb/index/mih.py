"""Multi-index hashing (Norouzi et al., 2014) in compact numpy arrays: candidate generation only.

This module proposes candidate rows; it never decides a match. The caller verifies every
candidate against its full code, so a candidate too many costs time, never correctness, and
exactness rests only on the pigeonhole argument below never missing a true neighbour.

Why not FAISS's IndexBinaryMultiHash: it keeps one std::unordered_map of std::vectors per
chunk, which measured 350-770 bytes per 256-bit hash at 1M codes (against a 100 bytes/hash
budget at 10M); the tables here cost 4 bytes per hash per chunk plus ~1 byte per bucket.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations
from types import ModuleType

import numpy as np

from hashdb.index._bits import bit_field
from hashdb.index._buckets import BucketOffsets, OffsetsBuilder

MIN_CHUNK_BITS = 8
MAX_CHUNK_BITS = 32  # keys are uint32
# Rows are packed as (key << 32 | row) for one fast uint64 sort per chunk.
MAX_ROWS = 2**32 - 1
# Memory the tables may take per stored code: the order arrays (4 bytes per chunk) and the
# bucket offsets (~1 byte per bucket per chunk, see _buckets.py). With a PDQ code (32 bytes)
# and its id (4) that is at most 98 bytes per hash, 2 under the 100-byte budget (a tombstone
# array, while removals are pending, costs 1).
TABLE_BYTES_PER_CODE = 62
# ... or this much, whichever is more: a small index can afford wider tables outright (at 100k
# PDQ codes 16 MiB buys 16 chunks of 16 bits (7.5 MB), a third of the work of 13 chunks of 16).
TABLE_FLOOR_BYTES = 16 << 20
# Queries are expanded in groups of about this many expected candidates, so the probe and
# candidate arrays of a group stay cache-sized (64k candidates gather 2 MB of 256-bit codes)
# while the per-group numpy calls are spread over many candidates.
GROUP_CANDIDATES = 65_536
MAX_QUERY_GROUP = 64


def _load_kernel() -> ModuleType | None:
    """The compiled search (_mih_kernel.c), or None when the install had no C compiler."""
    try:
        from hashdb.index import _mih_kernel  # type: ignore[attr-defined]
    except ImportError:
        return None
    module: ModuleType = _mih_kernel
    return module


KERNEL = _load_kernel()


def compiled_search_available() -> bool:
    return KERNEL is not None


def table_bytes(chunks: int, width: int, count: int) -> int:
    """Bytes of the tables for `count` uniformly spread codes: order arrays and bucket offsets."""
    return chunks * (4 * count + BucketOffsets.expected_bytes(width, count))


def probe_count(radius: int, chunks: int, width: int) -> int:
    """Bucket look-ups per query: every value within each chunk's threshold of the query's."""
    return sum(
        sum(math.comb(width, k) for k in range(t + 1)) for t in chunk_thresholds(radius, chunks)
    )


def chunking_for(count: int, bits: int) -> tuple[int, int]:
    """(chunks, chunk width) for `count` codes of `bits` bits.

    A search costs about the same per bucket probe as per candidate (each is a cache miss
    plus a few numpy passes: ~25 ns each at 2M codes, fitted over several chunkings), and a
    random code is a candidate of a probe with probability 2**-width. So: the fewest probes
    plus expected candidates at a radius of 1/8 of the bits (PDQ's 31 of 256), among the
    chunkings whose tables fit TABLE_BYTES_PER_CODE (or TABLE_FLOOR_BYTES). Wider chunks
    mean fewer candidates per probe but more probes and larger offsets; more chunks mean
    lower per-chunk thresholds but 4 more bytes per code each.
    """
    radius = max(bits // 8 - 1, 0)
    allowance = max(TABLE_BYTES_PER_CODE * count, TABLE_FLOOR_BYTES)
    top = min(MAX_CHUNK_BITS, max(MIN_CHUNK_BITS, bits // 2))
    best: tuple[float, int, int] | None = None
    for width in range(MIN_CHUNK_BITS, top + 1):
        for chunks in range(1, max(bits // width, 1) + 1):
            if table_bytes(chunks, width, count) > allowance:
                break  # more chunks only cost more
            probes = probe_count(radius, chunks, width)
            work = probes * (1 + count / (1 << width))
            if best is None or work < best[0]:
                best = (work, chunks, width)
    # So few codes that no table fits the budget: the smallest tables (a handful of kilobytes).
    return (1, MIN_CHUNK_BITS) if best is None else (best[1], best[2])


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
class CandidateGroup:
    """Candidate rows of queries first, first + 1, ...: query first + i owns rows[bounds[i]:bounds[i + 1]]."""

    first: int
    bounds: np.ndarray  # int64, one more than the queries in the group
    rows: np.ndarray  # uint32 row numbers, with repeats

    def pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """(query number, row) of every candidate, as int64 arrays."""
        qnum = np.repeat(np.arange(self.first, self.first + len(self.bounds) - 1), np.diff(self.bounds))
        return qnum.astype(np.int64), self.rows.astype(np.int64)


@dataclass(frozen=True, slots=True)
class ProbePlan:
    radius: int
    probes: int  # bucket look-ups per query
    expected_candidates: float  # for uniformly random codes


class MultiIndexHash:
    """Per chunk: rows sorted by chunk value (`order`) and where each bucket's rows start (`offsets`)."""

    def __init__(self, bits: int, chunk_bits: int, order: np.ndarray, offsets: BucketOffsets) -> None:
        self.bits = bits
        self.chunk_bits = chunk_bits
        self.chunks = int(order.shape[0])
        if self.chunks * chunk_bits > bits or offsets.chunks != self.chunks or offsets.width != chunk_bits:
            raise ValueError(f"{self.chunks} chunks of {chunk_bits} bits do not fit {bits}-bit codes and their offsets")
        self.count = int(order.shape[1])
        self._order = order  # (chunks, count) uint32
        self._offsets = offsets
        self._probe_cache: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._plan_cache: dict[int, ProbePlan] = {}

    @classmethod
    def build(
        cls, codes: np.ndarray, bits: int, chunk_bits: int | None = None, chunks: int | None = None
    ) -> MultiIndexHash:
        count = codes.shape[0]
        if count > MAX_ROWS:
            raise ValueError(f"multi-index hashing supports up to {MAX_ROWS} codes, got {count}")
        if chunk_bits is None:
            chunks, width = chunking_for(count, bits)
        else:
            width = chunk_bits
            chunks = chunks if chunks is not None else bits // width
        buckets = 1 << width
        order = np.empty((chunks, count), dtype=np.uint32)
        offsets = OffsetsBuilder(chunks, width)
        rows = np.arange(count, dtype=np.uint64)
        plain = np.empty(buckets + 1, dtype=np.uint32)
        for c in range(chunks):
            keys = bit_field(codes, c * width, width)
            plain[0] = 0
            np.cumsum(np.bincount(keys, minlength=buckets), out=plain[1:])
            offsets.add(c, plain)
            packed = keys.astype(np.uint64)
            del keys
            packed <<= np.uint64(32)
            packed |= rows
            packed.sort()
            order[c] = packed  # the low 32 bits are the row number
            del packed
        return cls(bits, width, order, offsets.finish())

    def extended(self, codes: np.ndarray) -> MultiIndexHash:
        """Tables over all of `codes`, given that these tables cover its first `count` rows.

        Each new row goes to the end of its bucket, which is exactly where a full build puts it
        (rows sort by (key, row) and new rows are the largest), so the result equals
        `build(codes, bits, chunk_bits, chunks)` at a fraction of the cost: no sort of the old rows.
        """
        start, total = self.count, codes.shape[0]
        if total < start or total > MAX_ROWS:
            raise ValueError(f"cannot extend tables over {start} rows to {total} rows")
        width = self.chunk_bits
        new_rows = np.arange(start, total, dtype=np.uint32)
        order = np.empty((self.chunks, total), dtype=np.uint32)
        chunk = np.arange(self.chunks, dtype=np.int64)
        keys = self.query_keys(codes[start:])  # (new rows, chunks)
        # Where each new row goes: the end of its bucket in the old tables.
        starts, lengths = self._offsets.lookup(chunk, keys)
        ends = starts.astype(np.int64) + lengths
        for c in range(self.chunks):
            by_key = np.argsort(keys[:, c], kind="stable")
            order[c] = np.insert(self._order[c], ends[by_key, c], new_rows[by_key])
        offsets = self._offsets.grown([keys[:, c] for c in range(self.chunks)])
        return MultiIndexHash(self.bits, width, order, offsets)

    def tables(self) -> dict[str, np.ndarray]:
        """Arrays to save, by name: "order" plus those of `BucketOffsets.arrays`."""
        return {"order": self._order, **self._offsets.arrays()}

    @property
    def offsets(self) -> BucketOffsets:
        return self._offsets

    def consistent_with(self, codes: np.ndarray, samples: int = 16) -> bool:
        """Cheap check that loaded tables belong to these codes: offsets are well formed and a
        few rows are in their buckets."""
        if codes.shape[0] != self.count or not self._offsets.valid(self.count):
            return False
        rows = np.unique(np.linspace(0, self.count - 1, num=min(samples, self.count)).astype(np.int64))
        keys = self.query_keys(codes[rows])
        chunk = np.arange(self.chunks, dtype=np.int64)
        starts, lengths = self._offsets.lookup(chunk, keys)
        for i, row in enumerate(rows.tolist()):
            for c in range(self.chunks):
                lo = int(starts[i, c])
                if row not in self._order[c, lo : lo + int(lengths[i, c])]:
                    return False
        return True

    @property
    def nbytes(self) -> int:
        return int(self._order.nbytes) + self._offsets.nbytes

    def plan(self, radius: int) -> ProbePlan:
        """Cost of a search at `radius`, computed without building the probes."""
        plan = self._plan_cache.get(radius)
        if plan is None:
            probes = probe_count(radius, self.chunks, self.chunk_bits)
            plan = ProbePlan(radius, probes, probes * self.count / (1 << self.chunk_bits))
            self._plan_cache[radius] = plan
        return plan

    def _probes(self, radius: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(chunk of each probe column, flip mask of each column, int32 threshold of each chunk)."""
        cached = self._probe_cache.get(radius)
        if cached is None:
            chunk_cols, masks = [], []
            for c, t in enumerate(chunk_thresholds(radius, self.chunks)):
                if t < 0:
                    continue
                m = _flip_masks(self.chunk_bits, t)
                masks.append(m)
                chunk_cols.append(np.full(len(m), c, dtype=np.int64))
            thresholds = np.array(chunk_thresholds(radius, self.chunks), dtype=np.int32)
            cached = (np.concatenate(chunk_cols), np.concatenate(masks), thresholds)
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

    def search(self, codes: np.ndarray, queries: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(query number, row, distance) of the rows within `radius` of their query, by the
        compiled kernel: the candidates of `candidates`, verified against `codes` (every row
        the tables cover, and any after them), each (query, row) once.

        Once holds for rows whose code is the one the tables were built from; a row whose code
        changed since sits under stale keys and may be reported zero times or several (with
        its current distance), so the caller searches changed rows apart and drops repeats.
        """
        if KERNEL is None:
            raise RuntimeError("the compiled multi-index search (hashdb/index/_mih_kernel.c) was not built")
        chunk_col, masks, thresholds = self._probes(radius)
        offsets = self._offsets
        low = b"" if offsets.low is None else offsets.low
        qnum, rows, dist = KERNEL.search(
            codes, codes.shape[1], queries, self._order, self.count, self.chunks, self.chunk_bits,
            offsets.high, low, offsets.low_bits, offsets.block_log2, chunk_col, masks, thresholds, radius,
        )
        return np.frombuffer(qnum, dtype=np.int64), np.frombuffer(rows, dtype=np.int64), np.frombuffer(dist, dtype=np.int32)

    def candidates(self, queries: np.ndarray, radius: int) -> Iterator[CandidateGroup]:
        """Candidate rows of consecutive queries, a group at a time, with repeats, including every
        row within `radius` of its query. Groups keep the caller's verification cache-sized."""
        chunk_col, masks, _ = self._probes(radius)
        keys = self.query_keys(queries)
        order = self._order.reshape(-1)
        # Where each probe column's chunk starts in the flattened (chunks, count) order array.
        col_first = chunk_col * self.count
        per_query = max(self.plan(radius).expected_candidates, 1.0)
        group = max(1, min(MAX_QUERY_GROUP, int(GROUP_CANDIDATES // per_query)))
        for lo in range(0, queries.shape[0], group):
            part = keys[lo : lo + group]
            starts, lengths = self._offsets.lookup(chunk_col, part[:, chunk_col] ^ masks)
            bounds = np.zeros(part.shape[0] + 1, dtype=np.int64)
            np.cumsum(lengths.sum(axis=1, dtype=np.int64), out=bounds[1:])
            total = int(bounds[-1])
            if total == 0:
                continue
            # Each non-empty bucket is a run of consecutive positions in `order`. Walk all runs
            # with one cumulative sum: a 1 per row, and at each run's first row the jump from the
            # previous run's last position. (Cheaper than np.repeat plus np.arange, and the
            # buckets are probed in query order, so each query's rows stay together.)
            flat_lengths = lengths.reshape(-1)
            keep = np.flatnonzero(flat_lengths)
            run_len = flat_lengths[keep].astype(np.int64)
            run_first = (starts + col_first).reshape(-1)[keep]
            steps = np.ones(total, dtype=np.int64)
            steps[0] = run_first[0]
            steps[np.cumsum(run_len[:-1])] = run_first[1:] - run_first[:-1] - run_len[:-1] + 1
            np.cumsum(steps, out=steps)
            yield CandidateGroup(lo, bounds, order.take(steps))
