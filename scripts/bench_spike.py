"""Cost of the spike rule's match counting on single lookups (SQLite file store).

Three ways of answering the same matching single-hash lookup: by an admin (never counted: the
reference, i.e. the lookup path without counting), by a consumer with the default buffered
counting (spike_flush_seconds=5), and by a consumer with counting written on every lookup
(spike_flush_seconds=0, one durable commit each). Prints a table of per-lookup latencies.

    .venv/bin/python scripts/bench_spike.py [-n RECORDS] [--lookups N]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from hashdb.config import Settings
from hashdb.index.indexset import IndexSet
from hashdb.service import HashDB
from hashdb.store.sqlite_store import SQLiteStore
from hashdb.types import HashValue, Principal, Query, Submission


def random_pdq(rng: random.Random) -> str:
    bits = [1] * 128 + [0] * 128
    rng.shuffle(bits)
    return f"{int(''.join(map(str, bits)), 2):064x}"


def build(path: Path, n: int, flush: float, seed: int) -> tuple[HashDB, list[str]]:
    store = SQLiteStore(path)
    service = HashDB(Settings(spike_flush_seconds=flush, spike_max_matches=10**9), store, IndexSet(store),
                     server_secret=b"s" * 32)
    rng = random.Random(seed)
    hexes = [random_pdq(rng) for _ in range(n)]
    org = store.ensure_org("contributor")
    actor = Principal(org.id, org.name, "contributor")
    for start in range(0, n, 1000):
        service.submit([Submission(h, ("glorification",), (HashValue("pdq", h),)) for h in hexes[start:start + 1000]],
                       actor)
    service.load_index()
    return service, hexes


def timed(service: HashDB, actor: Principal, hexes: list[str], lookups: int) -> list[float]:
    out = []
    for n in range(lookups):
        query = Query("q", (HashValue("pdq", hexes[n % len(hexes)]),))
        start = time.perf_counter()
        [result] = service.lookup([query], actor)
        out.append(time.perf_counter() - start)
        assert result.matched
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=10_000, help="stored PDQ records")
    parser.add_argument("--lookups", type=int, default=500)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for flush in (5.0, 0.0):
            service, hexes = build(Path(tmp) / f"db{flush}.sqlite", args.n, flush, seed=1)
            admin_org = service.store.ensure_org("ops")
            consumer_org = service.store.ensure_org("platform")
            admin = Principal(admin_org.id, admin_org.name, "admin")
            consumer = Principal(consumer_org.id, consumer_org.name, "consumer")
            timed(service, consumer, hexes, 20)  # warm caches
            if flush == 5.0:
                rows.append(("reference: admin, not counted", timed(service, admin, hexes, args.lookups)))
                rows.append(("consumer, buffered (flush 5 s)", timed(service, consumer, hexes, args.lookups)))
            else:
                rows.append(("consumer, written each lookup", timed(service, consumer, hexes, args.lookups)))
            service.store.close()
    print(f"records={args.n}  lookups={args.lookups}  machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    print(f"| {'lookup (one matching pdq)':<32} | {'median ms':>9} | {'p95 ms':>7} | {'max ms':>7} |")
    print(f"|{'-' * 34}|{'-' * 11}|{'-' * 9}|{'-' * 9}|")
    for what, times in rows:
        ms = sorted(t * 1000 for t in times)
        print(f"| {what:<32} | {statistics.median(ms):>9.2f} | {ms[int(len(ms) * 0.95)]:>7.2f} | {ms[-1]:>7.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
