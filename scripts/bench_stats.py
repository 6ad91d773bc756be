"""GET /v1/stats at scale: the counts kept by triggers against a full scan of the records.

    .venv/bin/python scripts/bench_stats.py                  # 1M PDQ records in a fresh SQLite file
    .venv/bin/python scripts/bench_stats.py -n 100000 --calls 200

Loads N random PDQ records through HashStore.add_records (batches of 50k, two labels each,
a few retracted), then times, in the same run:
- `/v1/stats` through the Flask app (key check, service, JSON), and `store.counts()` alone;
- the reference: the same counts by a full scan (GROUP BY over records and every record's
  labels decoded), which is what each call cost before the counts were kept incrementally.
Both must agree, or the script stops. The target: /v1/stats under 20 ms at 1M records.

What keeping the counts costs writers: `--overhead N` (200k) imports N more records into two
fresh files, one with the counting triggers dropped (the reference), in alternating batches.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hashdb.store.sqlite_store import SQLiteStore
from hashdb.types import HashValue, NewRecord, Principal

LABELS = ("glorification", "recruitment_instruction", "attacker_manifesto", "branded_publication")


def load(store: SQLiteStore, n: int, batch: int, seed: int) -> float:
    rng = random.Random(seed)
    org = store.ensure_org("bench")
    actor = Principal(org.id, org.name, "contributor")
    started = time.perf_counter()
    ids: list[int] = []
    for start in range(0, n, batch):
        records = [NewRecord(HashValue("pdq", f"{rng.getrandbits(256):064x}", 90), "image",
                             tuple(rng.sample(LABELS, 2))) for _ in range(min(batch, n - start))]
        ids += [o.id for o in store.add_records(records, actor)]
        print(f"  loaded {len(ids):,} records", file=sys.stderr, flush=True)
    for record_id in rng.sample(ids, min(100, len(ids))):
        store.set_status(record_id, "retracted", actor, "bench")
    return time.perf_counter() - started


def import_overhead(folder: Path, n: int, batch: int, seed: int) -> tuple[float, float]:
    """Seconds to import n records with the counting triggers and without (alternating batches,
    so both see the same machine load)."""
    stores = [SQLiteStore(folder / "with.sqlite"), SQLiteStore(folder / "without.sqlite")]
    for trigger in ("record_counts_insert", "record_counts_update", "record_counts_delete"):
        stores[1].db.conn.execute(f"DROP TRIGGER {trigger}")
    actors = []
    for store in stores:
        org = store.ensure_org("bench")
        actors.append(Principal(org.id, org.name, "contributor"))
    rng = random.Random(seed)
    spent = [0.0, 0.0]
    for start in range(0, n, batch):
        records = [NewRecord(HashValue("pdq", f"{rng.getrandbits(256):064x}", 90), "image",
                             tuple(rng.sample(LABELS, 2))) for _ in range(min(batch, n - start))]
        for i in ((0, 1) if (start // batch) % 2 == 0 else (1, 0)):
            began = time.perf_counter()
            stores[i].add_records(records, actors[i])
            spent[i] += time.perf_counter() - began
    for store in stores:
        store.close()
    return spent[0], spent[1]


def full_scan(store: SQLiteStore) -> dict[str, dict[str, int]]:
    """The counts as they were computed on every call before: GROUP BY scans and each label."""
    conn = store.db.conn

    def group(column: str) -> dict[str, int]:
        rows = conn.execute(f"SELECT {column} AS k, COUNT(*) FROM records GROUP BY k ORDER BY k")
        return {str(k): int(c) for k, c in rows}

    labels: dict[str, int] = {}
    for (text,) in conn.execute("SELECT labels FROM records WHERE status != 'retracted'"):
        for label in json.loads(text):
            labels[label] = labels.get(label, 0) + 1
    return {"signal": group("signal"), "status": group("status"), "month": group("substr(created_at, 1, 7)"),
            "label": dict(sorted(labels.items()))}


def timings(call: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    out: list[float] = []
    result = None
    for _ in range(repeat):
        started = time.perf_counter()
        result = call()
        out.append((time.perf_counter() - started) * 1000)
    return out, result


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=1_000_000, help="records to load (default 1,000,000)")
    parser.add_argument("--batch", type=int, default=50_000)
    parser.add_argument("--calls", type=int, default=100, help="timed /v1/stats calls")
    parser.add_argument("--scans", type=int, default=3, help="timed full scans (the reference)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--overhead", type=int, default=200_000, help="records for the import-cost comparison (0: skip)")
    args = parser.parse_args()

    from hashdb.api import create_app
    from hashdb.service.local import open_database

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.sqlite"
        store = SQLiteStore(path)
        load_s = load(store, args.n, args.batch, args.seed)
        store.close()
        service = open_database(path)
        ops = service.store.ensure_org("ops")
        key, _ = service.create_key("bench-reader", "consumer", Principal(ops.id, ops.name, "admin"))
        service.store.close()

        app = create_app({"DB": str(path), "LOAD_INDEX_IN_BACKGROUND": False, "WEBHOOK_INTERVAL": 0,
                          "RATE_LIMIT": 0})
        client = app.test_client()
        headers = {"Authorization": f"Bearer {key}"}

        def http_stats() -> Any:
            reply = client.get("/v1/stats", headers=headers)
            assert reply.status_code == 200, reply.data
            return reply.get_json()

        http_stats()  # warm: the first request opens the service in this process
        http_ms, http_result = timings(http_stats, args.calls)
        store = SQLiteStore(path)
        counts_ms, counts = timings(store.counts, args.calls)
        scan_ms, scanned = timings(lambda: full_scan(store), args.scans)
        store.close()
        if not counts == scanned == http_result:
            raise SystemExit(f"the kept counts differ from a full scan:\n{counts}\n{scanned}")
        path.unlink()
        with_s, without_s = import_overhead(Path(tmp), args.overhead, args.batch, args.seed + 1) if args.overhead else (0, 0)

    print(f"\n{args.n:,} PDQ records loaded in {load_s:.1f} s ({args.n / load_s:,.0f}/s, triggers included)\n")
    print("| what | calls | p50 ms | p99 ms | max ms |")
    print("|---|---:|---:|---:|---:|")
    for name, values in (("reference: full scan (before)", scan_ms), ("`store.counts()` (kept counts)", counts_ms),
                         ("`GET /v1/stats` in-process (Flask, key check, JSON)", http_ms)):
        print(f"| {name} | {len(values)} | {statistics.median(values):.2f} | {p99(values):.2f} | {max(values):.2f} |")
    print(f"\nfull scan / kept counts (p50): {statistics.median(scan_ms) / statistics.median(counts_ms):,.0f}x")
    if args.overhead:
        print(f"\n| import of {args.overhead:,} more records, batches of {args.batch:,} | seconds | records/s |")
        print("|---|---:|---:|")
        print(f"| reference: counting triggers dropped | {without_s:.1f} | {args.overhead / without_s:,.0f} |")
        print(f"| with the counting triggers | {with_s:.1f} | {args.overhead / with_s:,.0f} |")
        print(f"\nimport time with triggers / without: {with_s / without_s:.2f}x")


if __name__ == "__main__":
    main()
