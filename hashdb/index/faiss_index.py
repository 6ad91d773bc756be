"""FaissIndex: exact Hamming range search keyed by store record ids, flat while small, multi-index when large.

Codes live in one `faiss.IndexBinaryFlat` (row = position); record ids, tombstones and the
multi-index tables are numpy arrays beside it. Every answer is verified against full codes, so
results equal brute force at any size. Not thread-safe for writes: the caller serialises
add/remove/compact/save against searches; concurrent searches are fine.

Rows [0, built) are sorted by record id and covered by the multi-index tables; later rows
(`delta`) and rows overwritten since (`dirty`) are searched by brute force until the delta is
full. Then new rows with ids above all earlier ones (the store's usual order) are merged into
the tables without re-sorting; anything else (replaced codes, out-of-order ids, many removals,
a doubled size) takes a full compaction, which drops removed rows and rebuilds the tables.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import faiss
import numpy as np

from hashdb.bits import check_bits
from hashdb.errors import IndexStale
from hashdb.index import _memory, _scan
from hashdb.index._bits import check_codes, check_ids, check_radius
from hashdb.index._buckets import BucketOffsets
from hashdb.index._files import Manifest, load_npy, npy_writer, write_saved
from hashdb.index.mih import MultiIndexHash, compiled_search_available

# Below this many codes a FAISS flat scan is used. Flat costs ~1.1 ns per 256-bit code per query
# on one core; the multi-index ~0.1 ms fixed (numpy calls) plus ~20 ns per candidate, and its
# tables cost 4 bytes per code per chunk plus their builds. At 100k codes both answer in ~0.1 ms
# (scripts/bench_index.py, BENCHMARKS.md), so below that the tables are not worth their memory.
# (Those figures are the numpy path's. The compiled search's fixed part is ~20 us, so the
# multi-index would win below 100k too; the switch stays here because a flat scan of under
# 100k codes is already ~0.1 ms, and the tables would cost their 16 MiB floor.)
LARGE_MIN_SIZE = 100_000
# Rows searched by brute force (added or overwritten since the tables were last updated) before
# they are merged in or the tables rebuilt: ~16k codes scan in well under 0.1 ms per query, and
# a merge or rebuild (both cost O(size), see BENCHMARKS.md) then happens at most once per 16k writes.
DELTA_LIMIT = 16_384
# ... or 1/DELTA_SHARE of the rows in the tables, whichever is more. A merge rewrites every
# chunk's order array, O(size), so with a fixed delta the merge cost per write would grow with
# the index; a delta of size/256 keeps it constant and lets a replay of 100k changes into a 50M
# index append without merging. The price is the brute-force scan of the delta: ~3.4 ns a code
# measured at 50M, so up to ~0.65 ms a query there when the delta is full (BENCHMARKS.md).
DELTA_SHARE = 256
# Removed rows are only filtered out at search time until there are this many (or 1/8 of the
# index, whichever is larger); then a compaction reclaims their memory.
DEAD_LIMIT = 16_384
DEAD_FRACTION = 8
# The multi-index is used for a radius only while its expected work (bucket probes plus random
# candidates) is under 1/16 of the flat scan's: a candidate costs ~16-20x a flat-scanned code.
MIH_WORK_DIVISOR = 16
# FAISS runs OpenMP threads per query batch. One thread per process is the default: gunicorn
# workers are the parallelism, and GNU OpenMP is not fork-safe: a worker forked from a parent
# that already ran a multi-threaded FAISS call hangs in its next multi-threaded one (seen with
# this faiss-cpu wheel), while single-threaded calls never start a thread pool. Raise it only
# in a process that will not fork afterwards (a batch job, or a worker after the fork).
DEFAULT_THREADS = 1
# Record ids are kept as uint32 while they all fit (SQLite row ids of any realistic deployment
# do): 4 bytes per hash less, which is what keeps a 10M PDQ index under 100 bytes per hash.
# A larger id converts the array to int64 once.
_SMALL_ID_MAX = 2**32 - 1
# Appended rows are merged into the tables (no re-sort) until the index has grown this many
# times since the last full build; then a full build picks the chunk width for the new size.
_REBUILD_GROWTH = 2
# Rows are copied in groups of this many during compaction so peak memory stays near 1x codes.
_COPY_GROUP = 1 << 20
# Words per XOR row when verifying candidates (see _search_mih).
_XOR_WIDTH = 64


def set_threads(threads: int) -> None:
    """Set the OpenMP thread count FAISS uses in this process (a process-wide setting)."""
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive integer, got {threads!r}")
    faiss.omp_set_num_threads(threads)


class FaissIndex:
    """Exact range search; `structure` is "flat" below `large_min_size` live codes, else "mih"."""

    def __init__(
        self,
        bits: int,
        *,
        large_min_size: int = LARGE_MIN_SIZE,
        delta_limit: int = DELTA_LIMIT,
        delta_share: int = DELTA_SHARE,
        threads: int | None = DEFAULT_THREADS,
        chunk_bits: int | None = None,
        chunks: int | None = None,
        mih_work_divisor: float = MIH_WORK_DIVISOR,
        compiled: bool = True,
    ) -> None:
        self.bits = check_bits(bits)
        self._code_size = bits // 8
        self.large_min_size = large_min_size
        self.delta_limit = delta_limit
        self.delta_share = delta_share
        self._chunk_bits = chunk_bits
        self._chunks = chunks
        self.mih_work_divisor = mih_work_divisor
        # The compiled multi-index search when the install built it; False keeps the numpy
        # path (the fallback without a compiler, and the kernel's oracle in the tests).
        self.compiled = compiled and compiled_search_available()
        if threads is not None:
            set_threads(threads)
        self._flat = faiss.IndexBinaryFlat(bits)
        self._ids = np.zeros(0, dtype=np.uint32)  # row -> record id; may have spare capacity
        self._rows = 0
        self._built = 0
        self._delta: dict[int, int] = {}  # record id -> row, for rows >= built
        self._dirty: set[int] = set()  # rows < built whose code changed after the build
        self._dirty_rows: np.ndarray | None = None  # sorted array of _dirty, cached for searches
        self._dead: np.ndarray | None = None  # row -> removed; None while nothing is removed
        self._dead_count = 0
        self._mih: MultiIndexHash | None = None
        self._full_build_rows = 0  # rows at the last full build of the tables
        # Maintenance counters, for metrics: full rebuilds of the tables and cheap merges.
        self.full_builds = 0
        self.merges = 0

    # -- state -------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._rows - self._dead_count

    @property
    def structure(self) -> str:
        return "flat" if self._mih is None else "mih"

    @property
    def nbytes(self) -> int:
        """Bytes held by codes, ids, tombstones and tables (not Python object overhead)."""
        total = self._rows * self._code_size + self._ids.nbytes
        if self._dead is not None:
            total += self._dead.nbytes
        if self._mih is not None:
            total += self._mih.nbytes
        return total

    @property
    def delta_capacity(self) -> int:
        """Rows searched by brute force (added or changed since the tables were last updated)
        before the next write folds them into the tables."""
        return max(self.delta_limit, self._built // self.delta_share)

    def _codes(self) -> np.ndarray:
        """A view of FAISS's code storage; invalid after the next add or compaction."""
        return self._codes_view(self._rows)

    def _codes_view(self, rows: int) -> np.ndarray:
        if rows == 0:
            return np.zeros((0, self._code_size), dtype=np.uint8)
        # `xb` is the flat index's code vector; the SWIG stubs do not declare it.
        flat: np.ndarray = faiss.rev_swig_ptr(self._flat.xb.data(), rows * self._code_size)  # type: ignore[attr-defined]
        return flat.reshape(rows, self._code_size)

    def _find(self, ids: np.ndarray) -> np.ndarray:
        """Row of each id, -1 where unknown."""
        rows = np.full(len(ids), -1, dtype=np.int64)
        if self._built:
            built_ids = self._ids[: self._built]
            # Search with keys of the array's own dtype: mixing uint32 and int64 would make
            # numpy convert the whole id array on every call.
            fits = ids <= _SMALL_ID_MAX if built_ids.dtype == np.uint32 else np.ones(len(ids), dtype=bool)
            keys = ids[fits].astype(built_ids.dtype)
            at = np.minimum(np.searchsorted(built_ids, keys), self._built - 1)
            hit = built_ids[at] == keys
            rows[np.flatnonzero(fits)[hit]] = at[hit]
        if self._delta:
            missing = np.flatnonzero(rows < 0)
            found = [self._delta.get(key, -1) for key in ids[missing].tolist()]
            rows[missing] = found
        return rows

    # -- writes ------------------------------------------------------------------------

    def add(self, ids: Sequence[int] | np.ndarray, codes: np.ndarray) -> None:
        codes = check_codes(codes, self.bits)
        keys = check_ids(ids, count=codes.shape[0])
        if not len(keys):
            return
        self._own_codes()
        if not _strictly_increasing(keys) and len(np.unique(keys)) != len(keys):
            # The same id twice in one batch: the later code wins, as with two add() calls.
            _, first_from_end = np.unique(keys[::-1], return_index=True)
            keep = np.sort(len(keys) - 1 - first_from_end)
            keys, codes = keys[keep], codes[keep]
        rows = self._find(keys)
        old = rows >= 0
        if old.any():
            self._replace(rows[old], codes[old])
        if not old.all():
            self._append(keys[~old], codes[~old])
        # A flat index switches on the add that reaches the multi-index size; otherwise the
        # tables catch up once the brute-forced rows outgrow the delta.
        if self._mih is None and len(self) >= self.large_min_size:
            self.compact()
        elif self._pending() > self.delta_capacity:
            self._refresh()

    def _own_codes(self) -> None:
        """Before the first write to codes loaded as a read-only map of the saved file (see
        load): copy them into memory of our own. FAISS aborts the process on a write to a
        mapped vector, so every write path starts here."""
        if self._flat.xb.is_owned:  # type: ignore[attr-defined]
            return
        flat = faiss.IndexBinaryFlat(self.bits)
        codes = self._codes()
        for lo in range(0, len(codes), _COPY_GROUP):
            flat.add(codes[lo : lo + _COPY_GROUP])
        self._flat = flat

    def _replace(self, rows: np.ndarray, codes: np.ndarray) -> None:
        view = self._codes()
        # Only a changed code leaves the tables stale; reviving a removed id with its old code
        # (e.g. a record taken out of quarantine) costs nothing.
        changed = (view[rows] != codes).any(axis=1)
        view[rows] = codes
        if self._dead is not None:
            self._dead_count -= int(self._dead[rows].sum())
            self._dead[rows] = False
        stale = rows[changed & (rows < self._built)]
        if len(stale):
            self._dirty.update(stale.tolist())
            self._dirty_rows = None

    def _append(self, keys: np.ndarray, codes: np.ndarray) -> None:
        start = self._rows
        before = self._codes().ctypes.data if start else 0
        self._flat.add(codes)
        view = self._codes_view(start + len(keys))
        if view.ctypes.data != before:
            # FAISS moved the codes to a larger buffer (it doubles), on small pages again.
            _memory.huge_pages_soon(view)
        need = start + len(keys)
        if self._ids.dtype == np.uint32 and int(keys.max()) > _SMALL_ID_MAX:
            self._ids = self._ids.astype(np.int64)
        if need > len(self._ids):
            grown = np.zeros(max(need, len(self._ids) * 2), dtype=self._ids.dtype)
            grown[:start] = self._ids[:start]
            self._ids = grown
            if self._dead is not None:
                dead = np.zeros(len(grown), dtype=bool)
                dead[:start] = self._dead[:start]
                self._dead = dead
        self._ids[start:need] = keys
        self._rows = need
        # A batch that overflows the delta is about to be compacted: skip the per-id dict work.
        if self._pending() <= self.delta_capacity:
            self._delta.update(zip(keys.tolist(), range(start, need)))

    def _pending(self) -> int:
        return self._rows - self._built + len(self._dirty)

    def remove(self, ids: Iterable[int]) -> None:
        keys = check_ids(ids)
        rows = self._find(keys)
        rows = rows[rows >= 0]
        if not len(rows):
            return
        if self._dead is None:
            self._dead = np.zeros(len(self._ids), dtype=bool)
        rows = np.unique(rows)
        self._dead_count += int((~self._dead[rows]).sum())
        self._dead[rows] = True
        if self._dead_count > max(DEAD_LIMIT, len(self) // DEAD_FRACTION):
            self.compact()

    def _refresh(self) -> None:
        """Fold the delta into the tables: a cheap merge when only new, higher ids were added
        (the usual case: store ids grow), else a full compaction."""
        mih = self._mih
        if mih is not None and self._can_merge(mih):
            self._mih = mih.extended(self._codes())
            self.merges += 1
            self._built = self._rows
            self._delta.clear()
        else:
            self.compact()

    def _can_merge(self, mih: MultiIndexHash) -> bool:
        if self._dirty or mih.count != self._built:
            return False
        # Past this growth the chunk width chosen at the last full build is no longer the one
        # for the size. Removed rows stay tombstoned through merges (remove() compacts when
        # there are many), so retractions between submissions do not force rebuilds.
        if self._rows > _REBUILD_GROWTH * self._full_build_rows:
            return False
        appended = self._ids[self._built : self._rows]
        # Rows [0, built) must stay sorted by id for `_find`.
        return _strictly_increasing(appended) and (
            self._built == 0 or int(appended[0]) > int(self._ids[self._built - 1])
        )

    def compact(self) -> None:
        """Drop removed rows, sort rows by id, and rebuild the tables over every live code."""
        live = None if self._dead is None else np.flatnonzero(~self._dead[: self._rows])
        live_ids = self._ids[: self._rows] if live is None else self._ids[live]
        if not _strictly_increasing(live_ids):
            by_id = np.argsort(live_ids, kind="stable")
            live = by_id if live is None else live[by_id]
            live_ids = live_ids[by_id]
        if live is not None:
            # Rows to drop or reorder: copy the live codes, in id order, into a fresh flat index.
            codes = self._codes()
            flat = faiss.IndexBinaryFlat(self.bits)
            for lo in range(0, len(live), _COPY_GROUP):
                flat.add(codes[live[lo : lo + _COPY_GROUP]])
            del codes
            self._flat = flat
        small = not len(live_ids) or int(live_ids.max()) <= _SMALL_ID_MAX
        # Exact size: no spare capacity is kept.
        self._ids = np.array(live_ids, dtype=np.uint32 if small else np.int64)
        self._rows = self._built = len(live_ids)
        self._delta.clear()
        self._dirty.clear()
        self._dirty_rows = None
        self._dead, self._dead_count = None, 0
        self._mih = None
        self._full_build_rows = self._rows
        if self._rows >= self.large_min_size:
            self._mih = MultiIndexHash.build(self._codes(), self.bits, self._chunk_bits, self._chunks)
            self.full_builds += 1
            _memory.huge_pages(self._codes())

    # -- search ------------------------------------------------------------------------

    def search(self, codes: np.ndarray, max_distance: int) -> list[list[tuple[int, int]]]:
        queries = check_codes(codes, self.bits)
        radius = check_radius(max_distance, self.bits)
        if self._rows == 0 or not len(queries):
            return [[] for _ in range(len(queries))]
        if self._mih is not None and self._use_mih(self._mih, radius):
            qnum, rows, dist = self._search_mih(self._mih, queries, radius)
        else:
            qnum, rows, dist = self._search_flat(queries, radius)
        if self._dead is not None:
            alive = ~self._dead[rows]  # rows < self._rows: spare capacity is never returned
            qnum, rows, dist = qnum[alive], rows[alive], dist[alive]
        return _scan.group(len(queries), qnum, self._ids[rows], dist)

    def _use_mih(self, mih: MultiIndexHash, radius: int) -> bool:
        plan = mih.plan(radius)
        return (plan.probes + plan.expected_candidates) * self.mih_work_divisor < mih.count

    def _search_flat(self, queries: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # FAISS's binary range_search keeps distances strictly below its radius argument.
        lims, dist, rows = self._flat.range_search(queries, radius + 1)
        qnum = np.repeat(np.arange(len(queries), dtype=np.int64), np.diff(lims).astype(np.int64))
        return qnum, rows.astype(np.int64), dist.astype(np.int32)

    def _search_mih(
        self, mih: MultiIndexHash, queries: np.ndarray, radius: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        codes = self._codes()
        if self.compiled:
            parts = [mih.search(codes, queries, radius)]
            # The kernel reports each row of the tables once, unless its code changed since.
            repeats = bool(self._dirty)
        else:
            words, qwords = _scan.words(codes), _scan.words(queries)
            # Each query's words repeated across ~64 columns, so XORing a run of candidates with
            # their query is one numpy call over a wide row instead of one per 4-word row.
            tile = max(1, _XOR_WIDTH // qwords.shape[1])
            tiled = np.tile(qwords, (1, tile))
            parts = [_scan.verify(words, qwords, tiled, group, radius) for group in mih.candidates(queries, radius)]
            repeats = True
        if self._rows > self._built:
            # Rows appended since the tables were built: a contiguous block, scanned in place.
            qnum, at, dist = _scan.range_search(queries, codes[self._built : self._rows], radius)
            parts.append((qnum, at + self._built, dist))
        if self._dirty:
            if self._dirty_rows is None:
                self._dirty_rows = np.sort(np.fromiter(self._dirty, dtype=np.int64))
            qnum, at, dist = _scan.range_search(queries, np.ascontiguousarray(codes[self._dirty_rows]), radius)
            parts.append((qnum, self._dirty_rows[at], dist))
        if not parts:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, empty.astype(np.int32)
        if len(parts) == 1 and not repeats:
            return parts[0]
        qnum = np.concatenate([p[0] for p in parts])
        rows = np.concatenate([p[1] for p in parts])
        dist = np.concatenate([p[2] for p in parts])
        if not repeats:
            return qnum, rows, dist  # appended rows are not in the tables: no row twice
        # A code near the query in several chunks is proposed once per chunk; a dirty row may
        # come from both the tables (stale keys) and the brute-force pass.
        _, first = np.unique(qnum * self._rows + rows, return_index=True)
        return qnum[first], rows[first], dist[first]

    # -- persistence -------------------------------------------------------------------

    def save(self, path: Path, covers_seq: int, owner: str = "") -> None:
        """Fold pending rows into the tables, then write codes with faiss.write_index_binary,
        and ids, tombstones and tables as .npy."""
        if self._pending():
            self._refresh()
        flat, ids, mih = self._flat, self._ids[: self._rows], self._mih
        writers = {
            "faiss": lambda target: faiss.write_index_binary(flat, str(target)),
            "ids": npy_writer(ids),
        }
        if self._dead is not None and self._dead_count:
            dead = self._dead[: self._rows]
            writers["dead"] = npy_writer(dead)
        params = {"large_min_size": self.large_min_size, "delta_limit": self.delta_limit}
        if mih is not None:
            for name, array in mih.tables().items():
                writers[f"mih_{name}"] = npy_writer(array)
            params["chunk_bits"] = mih.chunk_bits
            params["chunks"] = mih.chunks
            params["offset_low_bits"] = mih.offsets.low_bits
            # Only a chunking the constructor fixed survives a reload; otherwise the next full
            # build chooses it for the size then.
            params["fixed_chunking"] = int(self._chunk_bits is not None)
        write_saved(
            Path(path), kind="faiss", bits=self.bits, covers_seq=covers_seq,
            count=self._rows, writers=writers, params=params, owner=owner,
        )

    @classmethod
    def load(cls, path: Path, manifest: Manifest, threads: int | None = DEFAULT_THREADS) -> FaissIndex:
        params = manifest.params
        index = cls(
            manifest.bits,
            large_min_size=params.get("large_min_size", LARGE_MIN_SIZE),
            delta_limit=params.get("delta_limit", DELTA_LIMIT),
            threads=threads,
        )
        faiss_path = manifest.file(path, "faiss")
        try:
            # Mapped, not read: every process loading this snapshot (the server's workers)
            # shares one copy of it in the page cache, and loading costs no copy. Writes
            # first take a private copy of what they change (_own_codes; .npy maps are
            # copy-on-write), so the saved files are never modified.
            flat = faiss.read_index_binary(str(faiss_path), faiss.IO_FLAG_MMAP_IFC)
        except RuntimeError as exc:
            raise IndexStale(f"saved index {faiss_path} is unreadable ({exc}); rebuild it") from None
        ids = load_npy(manifest.file(path, "ids"), (np.uint32, np.int64), (manifest.count,), mapped=True)
        if not isinstance(flat, faiss.IndexBinaryFlat) or flat.d != manifest.bits or flat.ntotal != manifest.count:
            raise IndexStale(f"saved index {faiss_path} does not match its manifest; rebuild it")
        if not _strictly_increasing(ids):
            raise IndexStale(f"saved ids of {path} are not strictly increasing; rebuild the index")
        index._flat, index._ids = flat, ids
        index._rows = index._built = index._full_build_rows = manifest.count
        if "dead" in manifest.files:
            index._dead = load_npy(manifest.file(path, "dead"), np.bool_, (manifest.count,), mapped=True)
            index._dead_count = int(index._dead.sum())
        if "mih_order" in manifest.files:
            chunk_bits = params.get("chunk_bits", 0)
            if not 0 < chunk_bits <= 32:
                raise IndexStale(f"saved index {path} has a bad chunk width; rebuild it")
            # Indexes saved before "chunks" was recorded used every whole chunk of the code.
            chunks = params.get("chunks", manifest.bits // chunk_bits)
            low_bits = params.get("offset_low_bits", 0)
            if not 0 < chunks * chunk_bits <= manifest.bits or low_bits not in (0, 8, 16):
                raise IndexStale(f"saved index {path} has a bad chunking; rebuild it")
            order = load_npy(manifest.file(path, "mih_order"), np.uint32, (chunks, manifest.count), mapped=True)
            arrays = {
                name: load_npy(manifest.file(path, f"mih_{name}"), dtype, shape, mapped=True)
                for name, (dtype, shape) in BucketOffsets.shapes(chunks, chunk_bits, low_bits).items()
            }
            offsets = BucketOffsets.load_arrays(chunk_bits, arrays)
            index._mih = MultiIndexHash(manifest.bits, chunk_bits, order, offsets)
            if params.get("fixed_chunking"):
                index._chunk_bits, index._chunks = chunk_bits, chunks
            if not index._mih.consistent_with(index._codes()):
                raise IndexStale(f"saved tables of {path} do not match its codes; rebuild the index")
            # In the background: a restart must not wait for it.
            _memory.huge_pages_soon(index._codes())
        elif manifest.count >= index.large_min_size:
            index.compact()
        return index


def _strictly_increasing(values: np.ndarray) -> bool:
    return len(values) < 2 or bool((values[1:] > values[:-1]).all())
