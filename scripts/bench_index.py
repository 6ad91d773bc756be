"""Near-duplicate index benchmark: hashdb's FaissIndex against brute force and python-threatexchange.

    .venv/bin/python scripts/bench_index.py --sizes 100000,1000000 --queries 1000
    .venv/bin/python scripts/bench_index.py --sizes 10000000 --queries 1000 --restart

Data, the same for every contender: N random 256-bit PDQ codes, and for each query 2 planted
codes at an exact random distance 0..31 and 1 at 32..40 (flipping exactly k random bits), so
there are real hits inside and just outside the radius. Contenders, measured in the same run:

  hashdb        FaissIndex as the service builds it (flat below 100k codes, multi-index above)
  faiss-flat    a bare faiss.IndexBinaryFlat: exhaustive, and the ground truth for recall
  numpy-brute   XOR + popcount over all codes per query (a sample of queries: slow at 10M)
  pytx-index2   threatexchange's PDQIndex2 (float IndexFlatL2 over 256 unpacked bits)

Columns: build seconds; RAM bytes/hash, measured as the RSS change across the build (after
freeing the build's inputs) and, for hashdb, also computed from its arrays; single-query latency
p50/p99 in ms; batch throughput in queries/s for batches of 100 and 1000 (median of 3 passes
over all queries); recall of (query, id)
pairs against faiss-flat, and whether the answers are identical (ids, distances and order).
FAISS uses --threads OpenMP threads (default 1, as in a gunicorn worker); numpy is one thread.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import faiss
import numpy as np

from hashdb.bits import codes_to_hex
from hashdb.index import _scan
from hashdb.index.faiss_index import FaissIndex, set_threads

BITS = 256
RADIUS = 31
CHUNK = 1 << 20
Results = list[list[tuple[int, int]]]


@dataclass
class Row:
    size: int
    name: str
    build_s: float | None = None
    build_cpu_s: float | None = None
    rss_per_hash: float | None = None
    computed_per_hash: float | None = None
    p50_ms: float | None = None
    p50_cpu_ms: float | None = None
    p99_ms: float | None = None
    sampled: int = 0
    batch100: float | None = None
    batch1000: float | None = None
    recall: float | None = None
    identical: bool | None = None


def rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def make_data(n: int, nqueries: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(codes, ids, queries) with planted neighbours; codes generated in chunks into one array."""
    rng = np.random.default_rng(seed)
    codes = np.empty((n, BITS // 8), dtype=np.uint8)
    for lo in range(0, n, CHUNK):
        codes[lo : lo + CHUNK] = rng.integers(0, 256, size=(min(CHUNK, n - lo), BITS // 8), dtype=np.uint8)
    queries = rng.integers(0, 256, size=(nqueries, BITS // 8), dtype=np.uint8)
    dist = np.concatenate([rng.integers(0, 32, size=(nqueries, 2)), rng.integers(32, 41, size=(nqueries, 1))], axis=1)
    source = np.repeat(np.arange(nqueries), 3)
    k = dist.reshape(-1)
    # Exactly k distinct bits per planted code: the k smallest of 256 random ranks.
    ranks = rng.random((len(k), BITS)).argsort(axis=1).argsort(axis=1)
    flips = np.packbits((ranks < k[:, None]).astype(np.uint8), axis=1)
    rows = rng.choice(n, size=min(len(k), n), replace=False)
    codes[rows] = queries[source[: len(rows)]] ^ flips[: len(rows)]
    ids = np.arange(n, dtype=np.int64) * 2 + 1  # store row ids: increasing, not dense from 0
    return codes, ids, queries


def percentiles(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    p99 = ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]
    return statistics.median(ordered) * 1e3, p99 * 1e3


def time_single(search: Callable[[np.ndarray], Results], queries: np.ndarray,
                cpu: list[float] | None = None) -> tuple[list[float], Results]:
    """Wall seconds of each query searched alone (and its CPU seconds into `cpu`, if given: on
    a shared machine the wall time includes waiting for a core, the CPU time does not)."""
    times, out = [], []
    for i in range(len(queries)):
        start, start_cpu = time.perf_counter(), time.process_time()
        res = search(queries[i : i + 1])
        times.append(time.perf_counter() - start)
        if cpu is not None:
            cpu.append(time.process_time() - start_cpu)
        out.extend(res)
    return times, out


def time_batches(search: Callable[[np.ndarray], Results], queries: np.ndarray, batch: int,
                 passes: int = 3) -> float | None:
    """Queries/s over all queries in batches of `batch`: the median of `passes` passes (the
    machine is shared, so one pass can catch another job's burst)."""
    if len(queries) < batch:
        return None
    rates = []
    for _ in range(passes):
        start = time.perf_counter()
        done = 0
        for lo in range(0, len(queries) - batch + 1, batch):
            search(queries[lo : lo + batch])
            done += batch
        rates.append(done / (time.perf_counter() - start))
    return statistics.median(rates)


def compare(got: Results, truth: Results) -> tuple[float, bool]:
    want = {(q, k) for q, hits in enumerate(truth) for k, _ in hits}
    have = {(q, k) for q, hits in enumerate(got) for k, _ in hits}
    recall = len(want & have) / len(want) if want else 1.0
    return recall, got == truth


def faiss_flat(codes: np.ndarray, ids: np.ndarray, queries: np.ndarray, row: Row,
               single: int) -> tuple[Results, Callable[[], None]]:
    """Ground truth for every query. Single queries are timed on the first `single` (all of them
    at the usual sizes); when that is fewer than all, the truth comes from one batch of every
    query, timed once as the batch-1000 rate (a 50M flat scan answers ~10 queries/s)."""
    gc.collect()
    before = rss()
    start = time.perf_counter()
    flat = faiss.IndexBinaryFlat(BITS)
    flat.add(codes)
    row.build_s = time.perf_counter() - start
    row.rss_per_hash = (rss() - before) / len(codes)

    def search(q: np.ndarray) -> Results:
        lims, dist, rows = flat.range_search(q, RADIUS + 1)  # FAISS: strictly below the radius
        out = []
        for i in range(len(q)):
            part = sorted(zip(ids[rows[lims[i] : lims[i + 1]]].tolist(), dist[lims[i] : lims[i + 1]].tolist()),
                          key=lambda kd: (kd[1], kd[0]))
            out.append(part)
        return out

    times, truth = time_single(search, queries[:single])
    row.p50_ms, row.p99_ms = percentiles(times)
    row.sampled = len(times)
    if single >= len(queries):
        row.batch100 = time_batches(search, queries, 100)
        row.batch1000 = time_batches(search, queries, 1000)
    else:
        start = time.perf_counter()
        truth = search(queries)
        row.batch1000 = len(queries) / (time.perf_counter() - start) if len(queries) >= 1000 else None
    row.recall, row.identical = 1.0, True

    def free() -> None:
        flat.reset()

    return truth, free


def hashdb_index(codes: np.ndarray, ids: np.ndarray, queries: np.ndarray, truth: Results, row: Row,
                 threads: int) -> FaissIndex:
    gc.collect()
    before = rss()
    start, start_cpu = time.perf_counter(), time.process_time()
    index = FaissIndex(BITS, threads=threads)
    index.add(ids, codes)
    row.build_s = time.perf_counter() - start
    row.build_cpu_s = time.process_time() - start_cpu
    gc.collect()
    row.rss_per_hash = (rss() - before) / len(codes)
    row.computed_per_hash = index.nbytes / len(codes)
    row.name = f"hashdb ({index.structure}{', compiled' if index.compiled and index.structure == 'mih' else ''})"
    time_searches(index, queries, truth, row)
    return index


def time_searches(index: FaissIndex, queries: np.ndarray, truth: Results, row: Row) -> None:
    cpu: list[float] = []
    times, got = time_single(lambda q: index.search(q, RADIUS), queries, cpu)
    row.p50_ms, row.p99_ms = percentiles(times)
    row.p50_cpu_ms = statistics.median(cpu) * 1e3
    row.sampled = len(queries)
    row.batch100 = time_batches(lambda q: index.search(q, RADIUS), queries, 100)
    row.batch1000 = time_batches(lambda q: index.search(q, RADIUS), queries, 1000)
    row.recall, row.identical = compare(got, truth)


def numpy_path(index: FaissIndex, queries: np.ndarray, truth: Results, row: Row) -> None:
    """The same index searched by its numpy path (the fallback without a C compiler): the
    reference for the compiled multi-index search, in the same run and the same memory."""
    index.compiled = False
    try:
        time_searches(index, queries, truth, row)
    finally:
        index.compiled = True


def numpy_brute(codes: np.ndarray, ids: np.ndarray, queries: np.ndarray, truth: Results, row: Row) -> None:
    words = codes.view(np.uint64)

    def search(q: np.ndarray) -> Results:
        out = []
        for query in q.view(np.uint64):
            hits, dists = [], []
            # A block of rows at a time: at 50M codes one pass over all of them would need 3 GB
            # of temporaries.
            for lo in range(0, len(words), CHUNK * 4):
                dist = np.bitwise_count(words[lo : lo + CHUNK * 4] ^ query).sum(axis=1, dtype=np.int32)
                hit = np.flatnonzero(dist <= RADIUS)
                hits.append(hit + lo)
                dists.append(dist[hit])
            hit, dist = np.concatenate(hits), np.concatenate(dists)
            out.append(sorted(zip(ids[hit].tolist(), dist.tolist()), key=lambda kd: (kd[1], kd[0])))
        return out

    times, got = time_single(search, queries)
    row.p50_ms, row.p99_ms = percentiles(times)
    row.sampled = len(queries)
    row.build_s, row.rss_per_hash = 0.0, (codes.nbytes + ids.nbytes) / len(codes)
    row.recall, row.identical = compare(got, truth[: len(queries)])


def pytx_index(codes: np.ndarray, ids: np.ndarray, queries: np.ndarray, truth: Results, row: Row) -> None:
    from threatexchange.signal_type.pdq.pdq_index2 import PDQIndex2

    hexes = codes_to_hex(codes)
    gc.collect()
    before = rss()
    start = time.perf_counter()
    index = PDQIndex2(entries=zip(hexes, ids.tolist()), threshold=RADIUS)
    row.build_s = time.perf_counter() - start
    del hexes
    gc.collect()
    row.rss_per_hash = (rss() - before) / len(codes)

    def search(q: np.ndarray) -> Results:
        out = []
        for h in codes_to_hex(q):
            matches = index.query(h)
            out.append(sorted(((int(m.metadata), int(m.similarity_info.distance)) for m in matches),
                              key=lambda kd: (kd[1], kd[0])))
        return out

    times, got = time_single(search, queries)
    row.p50_ms, row.p99_ms = percentiles(times)
    row.sampled = len(queries)
    row.recall, row.identical = compare(got, truth[: len(queries)])
    # PDQIndex2's memory goes when this frame and `search` do; the caller collects.


RESTART_CHILD = """
import json, sys, time
import numpy as np
from hashdb.index.base import load_index
start = time.perf_counter()
index, seq = load_index(sys.argv[1])
print("READY", time.perf_counter() - start, flush=True)
queries = np.load(sys.argv[2])
print(json.dumps(index.search(queries, int(sys.argv[3]))), flush=True)
"""


def restart(index: FaissIndex, queries: np.ndarray, truth: Results, folder: Path) -> list[str]:
    """Save, then load in a fresh Python process (a real restart: imports included)."""
    target = folder / "bench.index"
    start = time.perf_counter()
    index.save(target, covers_seq=1)
    saved = time.perf_counter() - start
    size = sum(p.stat().st_size for p in folder.iterdir())
    np.save(folder / "queries.npy", queries)
    spawned = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-c", RESTART_CHILD, str(target), str(folder / "queries.npy"), str(RADIUS)],
        stdout=subprocess.PIPE, text=True,
    )
    assert child.stdout is not None
    ready_line = child.stdout.readline()
    ready = time.perf_counter() - spawned
    answers = json.loads(child.stdout.readline())
    child.wait()
    got = [[(k, d) for k, d in hits] for hits in answers]
    load_only = float(ready_line.split()[1])
    return [
        f"save {saved:.1f} s, {size / 1e6:.0f} MB on disk; a fresh process is ready to search after "
        f"{ready:.1f} s (interpreter, imports and load_index; load_index alone {load_only:.1f} s; page "
        f"cache warm: the files were just written); its answers are identical: {got == truth}"
    ]


def write_path(index: FaissIndex, top: int, seed: int, full: bool = True) -> str:
    """Time the add that overflows the delta (new, higher ids: a merge), then a full compaction."""
    rng = np.random.default_rng(seed)
    count = index.delta_capacity + 1
    new_ids = top + 1 + np.arange(count, dtype=np.int64) * 2
    codes = rng.integers(0, 256, size=(count, BITS // 8), dtype=np.uint8)
    merges, builds = index.merges, index.full_builds
    start = time.perf_counter()
    index.add(new_ids, codes)
    merged = time.perf_counter() - start
    how = "merged" if index.merges > merges else "rebuilt" if index.full_builds > builds else "flat, no tables"
    if not full:
        return (f"an add of {count:,} new hashes that overflows the delta took {merged:.2f} s ({how}); "
                f"a full compaction not timed (it is a build of the tables: see build s)")
    start = time.perf_counter()
    index.compact()
    seconds = time.perf_counter() - start
    return (f"an add of {count:,} new hashes that overflows the delta took {merged:.2f} s ({how}); "
            f"a full compaction {seconds:.2f} s")


def pending_search(index: FaissIndex, top: int, queries: np.ndarray, seed: int) -> str:
    """Batch throughput while the delta is as full as it gets (rows not yet in the tables)."""
    rng = np.random.default_rng(seed + 1)
    count = index.delta_capacity - 1
    new_ids = top + 10**6 + np.arange(count, dtype=np.int64) * 2
    index.add(new_ids, rng.integers(0, 256, size=(count, BITS // 8), dtype=np.uint8))
    qps = time_batches(lambda q: index.search(q, RADIUS), queries, 100)
    return f"batch 100 with {count:,} added rows not yet in the tables: {fmt(qps, ',.0f')} queries/s"


def catch_up(index: FaissIndex, codes: np.ndarray, ids: np.ndarray, queries: np.ndarray, changes: int,
             page: int, seed: int) -> tuple[float, float, bool, str]:
    """Apply `changes` change-log rows to the index as IndexSet.catch_up does (pages of `page`,
    one add and one remove call per page): 9 in 10 are new records with higher ids, 1 in 10
    retracts a stored one. Some new codes are planted near the first queries and some retracted
    ids are their planted neighbours, so the check below sees both kinds of change. Returns
    (wall seconds, CPU seconds, answers after it equal brute force over the changed set, detail)."""
    rng = np.random.default_rng(seed + 2)
    check = queries[: min(20, len(queries))]
    merges, builds = index.merges, index.full_builds
    next_id = int(ids.max()) + 3
    added_ids: list[np.ndarray] = []
    added_codes: list[np.ndarray] = []
    removed: list[np.ndarray] = []
    # The planted neighbours of the checked queries (rows within the radius of any of them).
    qnum, near_rows, _ = _scan.range_search(check, codes, RADIUS)
    near_ids = ids[near_rows]
    pages = []
    for lo in range(0, changes, page):
        size = min(page, changes - lo)
        gone = size // 10
        fresh = size - gone
        new_ids = next_id + 2 * np.arange(fresh, dtype=np.int64)
        next_id = int(new_ids[-1]) + 2
        new_codes = rng.integers(0, 256, size=(fresh, BITS // 8), dtype=np.uint8)
        plant = min(len(check), fresh)
        flips = np.zeros((plant, BITS), dtype=np.uint8)
        for i in range(plant):
            flips[i, rng.choice(BITS, size=int(rng.integers(0, RADIUS + 1)), replace=False)] = 1
        new_codes[:plant] = check[:plant] ^ np.packbits(flips, axis=1)
        retract = rng.choice(ids, size=gone, replace=False)
        if lo == 0 and len(near_ids):
            retract[: min(len(near_ids), gone) // 2] = near_ids[: min(len(near_ids), gone) // 2]
        pages.append((new_ids, new_codes, np.unique(retract)))
        added_ids.append(new_ids)
        added_codes.append(new_codes)
        removed.append(retract)
    start, start_cpu = time.perf_counter(), time.process_time()
    for new_ids, new_codes, retract in pages:
        index.add(new_ids, new_codes)
        index.remove(retract)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - start_cpu
    got = index.search(check, RADIUS)
    # Brute force over the changed set: the original codes minus retracted ids, plus the new ones.
    gone_ids = np.unique(np.concatenate(removed))
    q1, r1, d1 = _scan.range_search(check, codes, RADIUS)
    keep = ~np.isin(ids[r1], gone_ids)
    new_all = np.concatenate(added_codes)
    q2, r2, d2 = _scan.range_search(check, np.ascontiguousarray(new_all), RADIUS)
    want = _scan.group(
        len(check),
        np.concatenate([q1[keep], q2]),
        np.concatenate([ids[r1[keep]], np.concatenate(added_ids)[r2]]),
        np.concatenate([d1[keep], d2]),
    )
    exact = got == want
    touched = len(np.unique(qnum[np.isin(near_ids, gone_ids)]))
    detail = (f"{changes:,} changes in pages of {page:,} ({changes - changes // 10:,} adds, "
              f"{sum(len(r) for _, _, r in pages):,} retracts): {seconds:.2f} s ({cpu_seconds:.2f} s CPU), "
              f"{index.merges - merges} merges and {index.full_builds - builds} full builds of the tables; "
              f"answers of {len(check)} queries afterwards equal brute force over the changed set: {exact} "
              f"({sum(len(h) for h in want)} pairs; {touched} of those queries lost a retracted neighbour)")
    return seconds, cpu_seconds, exact, detail


def peak_rss_gib() -> float:
    """The process's peak resident memory so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def tables(index: FaissIndex) -> str:
    """Chunking and offsets layout of the multi-index tables (what the size chose)."""
    mih = getattr(index, "_mih", None)
    if mih is None:
        return "no multi-index tables (flat)"
    offsets = getattr(mih, "offsets", None)
    layout = f", offsets {offsets.low_bits or 32}-bit parts" if offsets is not None else ""
    return f"tables: {mih.chunks} chunks of {mih.chunk_bits} bits{layout}, {mih.nbytes / len(index):.1f} B/hash"


def fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def print_table(rows: list[Row]) -> None:
    print("| size | index | build s | RAM B/hash (RSS delta / computed) | p50 ms | p99 ms | q timed "
          "| batch 100 q/s | batch 1000 q/s | recall | identical |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        ram = fmt(r.rss_per_hash, ".0f") + (f" / {r.computed_per_hash:.0f}" if r.computed_per_hash else "")
        print(f"| {r.size:,} | {r.name} | {fmt(r.build_s, '.1f')} | {ram} | {fmt(r.p50_ms, '.3f')} "
              f"| {fmt(r.p99_ms, '.3f')} | {r.sampled} | {fmt(r.batch100, ',.0f')} | {fmt(r.batch1000, ',.0f')} "
              f"| {fmt(r.recall, '.4f')} | {'yes' if r.identical else 'no' if r.identical is not None else 'n/a'} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="example: .venv/bin/python scripts/bench_index.py --sizes 100000,1000000 --queries 1000",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated index sizes")
    parser.add_argument("--queries", type=int, default=1000, help="queries per size (default 1000)")
    parser.add_argument("--brute-queries", type=int, default=20,
                        help="queries timed for numpy brute force and pytx (default 20; they are slow)")
    parser.add_argument("--pytx-max", type=int, default=1_000_000,
                        help="largest size to build PDQIndex2 at (default 1M: it keeps 1 KiB of float32 "
                             "per hash, 10 GB at 10M, and adds hashes in a Python loop)")
    parser.add_argument("--threads", type=int, default=1, help="FAISS OpenMP threads (default 1)")
    parser.add_argument("--restart", action="store_true", help="also save the largest hashdb index and time load_index")
    parser.add_argument("--flat-timed-max", type=int, default=10_000_000,
                        help="largest size at which every query is timed on faiss-flat one at a time and in "
                             "batches (default 10M; above it the truth is one batch of all queries and "
                             "--brute-queries are timed singly), and at which a full compaction is timed")
    parser.add_argument("--changes", type=int, default=100_000, help="change-log rows for the catch-up (default 100k)")
    parser.add_argument("--page", type=int, default=10_000,
                        help="changes applied per add/remove call in the catch-up (default 10k, IndexSet's page)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    set_threads(args.threads)

    rows: list[Row] = []
    notes: list[str] = []
    targets: list[str] = []
    for n in sizes:
        print(f"# size {n:,}: generating", file=sys.stderr, flush=True)
        codes, ids, queries = make_data(n, args.queries, args.seed + n)
        print("# faiss-flat (ground truth)", file=sys.stderr, flush=True)
        flat_row = Row(n, "faiss-flat (exhaustive)")
        single = len(queries) if n <= args.flat_timed_max else args.brute_queries
        truth, free_flat = faiss_flat(codes, ids, queries, flat_row, single)
        free_flat()
        del free_flat
        gc.collect()
        inside = sum(1 for hits in truth for _, d in hits)
        notes.append(f"size {n:,}: {inside} (query, id) pairs within {RADIUS} over {len(queries)} queries")
        # The slow contenders run before hashdb's index exists, so the two never share memory.
        print("# numpy brute force", file=sys.stderr, flush=True)
        brute_row = Row(n, "numpy brute force")
        numpy_brute(codes, ids, queries[: args.brute_queries], truth, brute_row)
        pytx_row = None
        if n <= args.pytx_max:
            print("# pytx PDQIndex2", file=sys.stderr, flush=True)
            pytx_row = Row(n, "pytx PDQIndex2")
            pytx_index(codes, ids, queries[: args.brute_queries], truth, pytx_row)
            gc.collect()
        else:
            notes.append(f"size {n:,}: pytx PDQIndex2 not run (--pytx-max {args.pytx_max:,})")
        print("# hashdb", file=sys.stderr, flush=True)
        ours_row = Row(n, "hashdb")
        index = hashdb_index(codes, ids, queries, truth, ours_row, args.threads)
        numpy_row = None
        if index.compiled and index.structure == "mih":
            print("# hashdb, numpy path", file=sys.stderr, flush=True)
            numpy_row = Row(n, "hashdb (mih, numpy path)")
            numpy_path(index, queries, truth, numpy_row)
        big_radius = index.search(queries[:50], 40)
        beyond = sum(1 for hits in big_radius for _, d in hits if d > RADIUS)
        notes.append(f"size {n:,}: hashdb at radius 40 over 50 queries finds {beyond} planted pairs at 32..40 "
                     f"(none of them is in the radius-{RADIUS} answers: identical={ours_row.identical})")
        notes.append(f"size {n:,}: hashdb {tables(index)}")
        if args.restart and n == max(sizes):
            print("# restart", file=sys.stderr, flush=True)
            with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
                notes += [f"size {n:,}: " + line for line in restart(index, queries, truth, Path(tmp))]
        print("# catch-up", file=sys.stderr, flush=True)
        caught_s, caught_cpu, caught_exact, detail = catch_up(index, codes, ids, queries, args.changes, args.page, args.seed)
        notes.append(f"size {n:,}: catch-up: {detail}")
        cpu: list[float] = []
        times, _ = time_single(partial(index.search, max_distance=RADIUS), queries, cpu)
        after_p50, after_p99 = percentiles(times)
        notes.append(f"size {n:,}: single queries right after the catch-up ({index.delta_capacity:,} rows fit "
                     f"the delta): p50 {after_p50:.3f} ms ({statistics.median(cpu) * 1e3:.3f} ms CPU), "
                     f"p99 {after_p99:.3f} ms")
        print("# write path", file=sys.stderr, flush=True)
        # New ids above every id so far (the catch-up's too), as the store hands them out.
        top = int(ids.max()) + 4 * args.changes
        notes.append(f"size {n:,}: " + write_path(index, top, args.seed, full=n <= args.flat_timed_max))
        print("# search with a full delta", file=sys.stderr, flush=True)
        notes.append(f"size {n:,}: " + pending_search(index, top + 4 * index.delta_capacity, queries, args.seed))
        del index
        gc.collect()
        rows += [ours_row] + ([numpy_row] if numpy_row else []) + [flat_row, brute_row] + ([pytx_row] if pytx_row else [])
        notes.append(f"size {n:,}: peak RSS of this process so far {peak_rss_gib():.1f} GiB")
        targets.append(
            f"| {n:,} | {'yes' if ours_row.identical and caught_exact else 'NO'} "
            f"| {fmt(ours_row.p50_ms, '.3f')} / {fmt(ours_row.p50_cpu_ms, '.3f')} "
            f"| {fmt(ours_row.computed_per_hash, '.1f')} / {fmt(ours_row.rss_per_hash, '.1f')} "
            f"| {fmt(ours_row.build_s, '.1f')} / {fmt(ours_row.build_cpu_s, '.1f')} "
            f"| {caught_s:.2f} / {caught_cpu:.2f} |"
        )
        del codes, ids
        gc.collect()

    print(f"\nradius {RADIUS}, {BITS}-bit codes, FAISS threads {args.threads}, numpy {np.__version__}, "
          f"faiss {faiss.__version__}, {os.cpu_count()} CPUs\n")
    print_table(rows)
    print()
    for note in notes:
        print(f"- {note}")
    print(f"\nTargets (exact, p50 <= 1 ms, <= 100 B/hash, build <= 300 s, catch-up of "
          f"{args.changes:,} changes <= 5 s):\n")
    print("Wall time, then the process's CPU time (the machine may be shared: wall time includes waiting "
          "for a core).\n")
    print("| size | exact (search and after catch-up) | p50 ms (wall / CPU) | B/hash (computed / RSS delta) "
          "| build s (wall / CPU) | catch-up s (wall / CPU) |")
    print("|---:|---|---:|---:|---:|---:|")
    for line in targets:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
