"""Throughput and latency of the HTTP API under `hashdb serve`, with N stored PDQ hashes.

    .venv/bin/python scripts/bench_api.py                          # 1M and 2M hashes, 2 workers
    .venv/bin/python scripts/bench_api.py --sizes 100000 --seconds 5

Per size: random PDQ hashes (seeded) are bulk-loaded through HashStore.add_records, the index
snapshot is built once, and `hashdb serve --workers 2` is started on a loopback port with the
rate limit off. The load generator is a Python thread pool in this process, on the same
machine (so it takes CPU from the server: the numbers are a floor). Half the queries are
stored hashes with 8 bits flipped (they match), half are fresh random hashes (they do not).

Reference rows measured in the same run: GET /healthz through the same server and client
(the HTTP stack's own ceiling), and HashDB.lookup in this process over the same database
(the service's cost without HTTP).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from serverproc import make_keys, start_server  # noqa: E402

from hashdb.service.local import open_database  # noqa: E402
from hashdb.types import HashValue, NewRecord, Principal, Query  # noqa: E402

LOAD_BATCH = 50_000


def random_codes(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 32), dtype=np.uint8)


def to_hex(codes: np.ndarray) -> list[str]:
    text = codes.tobytes().hex()
    return [text[i:i + 64] for i in range(0, len(text), 64)]


def near(codes: np.ndarray, bits: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = codes.copy()
    for row in out:
        for bit in rng.choice(256, size=bits, replace=False):
            row[bit // 8] ^= 1 << (bit % 8)
    return out


def load(db: Path, n: int, seed: int) -> float:
    service = open_database(db)
    try:
        org = service.store.ensure_org("bench")
        actor = Principal(org.id, org.name, "contributor")
        started = time.perf_counter()
        for start in range(0, n, LOAD_BATCH):
            hexes = to_hex(random_codes(min(LOAD_BATCH, n - start), seed + start))
            service.store.add_records([NewRecord(HashValue("pdq", h, 90), "image", ("glorification",))
                                       for h in hexes], actor)
            print(f"  loaded {start + len(hexes):,}", end="\r", file=sys.stderr, flush=True)
        loaded = time.perf_counter() - started
        service.rebuild_index()
        return loaded
    finally:
        service.store.close()


def queries(n_stored: int, count: int, seed: int) -> list[str]:
    """Half near-duplicates of stored hashes (regenerated from the load seeds), half random."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, n_stored, size=count // 2)
    stored = []
    for pick in picks:
        start = int(pick) // LOAD_BATCH * LOAD_BATCH
        stored.append(random_codes(min(LOAD_BATCH, n_stored - start), 1 + start)[int(pick) - start])
    hits = near(np.array(stored), 8, seed + 1)
    misses = random_codes(count - len(hits), seed + 2)
    mixed = to_hex(np.concatenate([hits, misses]))
    order = rng.permutation(len(mixed))
    return [mixed[i] for i in order]


def drive(port: int, make_request: Callable[[int], tuple[str, str, bytes | None]], seconds: float,
          threads: int, headers: dict[str, str]) -> list[float]:
    latencies: list[list[float]] = [[] for _ in range(threads)]
    stop = time.perf_counter() + seconds
    errors: list[str] = []

    def worker(n: int) -> None:
        i = n
        while time.perf_counter() < stop:
            method, path, body = make_request(i)
            i += threads
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            t0 = time.perf_counter()
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            latencies[n].append(time.perf_counter() - t0)
            conn.close()
            if response.status != 200:
                errors.append(f"{method} {path[:40]} -> {response.status}")

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if errors:
        raise SystemExit(f"{len(errors)} failed requests, e.g. {errors[0]}")
    return [x for per in latencies for x in per]


def wait_all_ready(server, timeout: float = 600.0) -> None:
    """/readyz answers from whichever worker accepts: ready means 20 ready answers in a row."""
    deadline, streak = time.monotonic() + timeout, 0
    while streak < 20:
        if time.monotonic() > deadline:
            raise SystemExit("the workers did not all become ready")
        streak = streak + 1 if server.request("GET", "/readyz").status == 200 else 0
        if streak == 0:
            time.sleep(0.2)


def row(name: str, latencies: list[float], seconds: float, per_request: int) -> str:
    rps = len(latencies) / seconds
    cuts = statistics.quantiles(latencies, n=100)
    return (f"| {name} | {len(latencies):,} | {rps:,.0f} | {rps * per_request:,.0f} | "
            f"{cuts[49] * 1000:.1f} | {cuts[98] * 1000:.1f} |")


def in_process(db: Path, hexes: list[str], batch: int, seconds: float) -> list[float]:
    service = open_database(db)
    try:
        service.load_index()
        org = service.store.ensure_org("bench-reader")
        actor = Principal(org.id, org.name, "consumer")
        out = []
        stop = time.perf_counter() + seconds
        i = 0
        while time.perf_counter() < stop:
            chunk = [hexes[(i + k) % len(hexes)] for k in range(batch)]
            i += batch
            t0 = time.perf_counter()
            service.lookup([Query(h, (HashValue("pdq", h),)) for h in chunk], actor)
            out.append(time.perf_counter() - t0)
        return out
    finally:
        service.store.close()


def bench(size: int, workers: int, seconds: float, threads: int, batch: int) -> list[str]:
    directory = Path(tempfile.mkdtemp(prefix="hashdb-bench-api-"))
    db = directory / "db.sqlite"
    loaded = load(db, size, 1)
    print(f"  {size:,} hashes loaded in {loaded:.0f} s ({size / loaded:,.0f}/s)", file=sys.stderr)
    keys = make_keys(db, {"reader": ("reader", "consumer")})
    headers = {"Authorization": f"Bearer {keys['reader'][0]}", "Content-Type": "application/json"}
    hexes = queries(size, 20_000, 7)
    started = time.perf_counter()
    server = start_server(db, workers=workers, env={"HASHDB_RATE_LIMIT": "0"})
    wait_all_ready(server)
    ready = time.perf_counter() - started
    lines = []
    try:
        def single(i: int) -> tuple[str, str, bytes | None]:
            return "GET", f"/v1/lookup?signal=pdq&hash={hexes[i % len(hexes)]}", None

        def batched(i: int) -> tuple[str, str, bytes | None]:
            items = [{"signal": "pdq", "hash": hexes[(i * batch + k) % len(hexes)]} for k in range(batch)]
            return "POST", "/v1/lookup", json.dumps({"items": items}).encode()

        def health(i: int) -> tuple[str, str, bytes | None]:
            return "GET", "/healthz", None

        drive(server.port, single, 1.0, threads, headers)  # warm up both workers
        lines.append(row(f"{size:,}: GET /v1/lookup, 1 hash", drive(server.port, single, seconds, threads, headers),
                         seconds, 1))
        lines.append(row(f"{size:,}: POST /v1/lookup, {batch} hashes",
                         drive(server.port, batched, seconds, threads, headers), seconds, batch))
        lines.append(row(f"{size:,}: reference GET /healthz", drive(server.port, health, seconds, threads, headers),
                         seconds, 0))
    finally:
        server.stop()
    lines.append(row(f"{size:,}: reference HashDB.lookup in-process, 1 hash", in_process(db, hexes, 1, seconds),
                     seconds, 1))
    lines.append(row(f"{size:,}: reference HashDB.lookup in-process, {batch} hashes",
                     in_process(db, hexes, batch, seconds), seconds, batch))
    print(f"  server ready {ready:.1f} s after start", file=sys.stderr)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000000,2000000", help="Comma-separated stored-hash counts.")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8, help="Client threads (concurrent requests).")
    parser.add_argument("--seconds", type=float, default=15.0, help="Per measurement.")
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"server: hashdb serve --workers {args.workers} (gunicorn sync); client: {args.threads} Python "
          f"threads in one process on the same machine, a new connection per request")
    print()
    print("| what | requests | requests/s | hashes/s | p50 ms | p99 ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for size in (int(s) for s in args.sizes.split(",")):
        for line in bench(size, args.workers, args.seconds, args.threads, args.batch):
            print(line, flush=True)


if __name__ == "__main__":
    main()
