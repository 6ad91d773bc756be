"""Memory per worker and time to ready after a restart, for `hashdb serve` over N hashes.

    .venv/bin/python scripts/bench_serve_memory.py --size 10000000 --reference /tmp/hashdb-ref
    .venv/bin/python scripts/bench_serve_memory.py --size 100000 --workers 1,2
    .venv/bin/python scripts/bench_serve_memory.py --size 10000000 --index-only --reference /tmp/hashdb-ref

Random PDQ hashes (seeded) are bulk-loaded and the index snapshot saved once (a database of
the size is kept in --keep DIR if given, and reused when it exists). Then, for each worker
count, `hashdb serve` is started over it, timed to "every worker ready" (/readyz, which
answers for all workers), given 200 lookups so each worker has searched, and measured from
/proc: the proportional set size (PSS) of the master and its workers, summed, is the memory
the server really holds; its growth per added worker is what each worker beyond the first
costs. That is set against the index's own size (its saved files). With --reference the same
is measured for another checkout of the code in the same run.

--index-only leaves the database out (loading 10M hashes through the store takes most of an
hour on this machine): a FaissIndex of N random codes is saved once, then loaded by 1, 2, 4
reader processes at once, each as a worker loads it, and their PSS is summed the same way.
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_api import load, queries, reference_checkout  # noqa: E402
from serverproc import LiveServer, make_keys, start_server  # noqa: E402

MIB = 1024 * 1024


def children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry.name))
    return out


def rollup(pid: int) -> dict[str, int]:
    values = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, _, rest = line.partition(":")
        values[name] = int(rest.split()[0]) * 1024
    return values


def ready_all(server: LiveServer, started: float, timeout: float = 900.0) -> float:
    deadline = started + timeout
    while time.monotonic() < deadline:
        try:
            if server.request("GET", "/readyz").status == 200:
                return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.02)
    raise SystemExit("the server was not ready in time")


def exercise(port: int, key: str, hexes: list[str], count: int = 200) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for n in range(count):
        # A new connection now and then, so both workers take some of the lookups.
        if n % 10 == 0:
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request("GET", f"/v1/lookup?signal=pdq&hash={hexes[n % len(hexes)]}",
                     headers={"Authorization": f"Bearer {key}"})
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise SystemExit(f"lookup answered {response.status}")
    conn.close()


def measure(db: Path, workers: int, key: str, hexes: list[str], source: Path | None,
            restarts: int) -> tuple[float, int, list[int]]:
    """(median seconds to ready, summed PSS, each worker's private bytes)."""
    times = []
    for attempt in range(restarts):
        started = time.monotonic()
        server = start_server(db, workers=workers, env={"HASHDB_RATE_LIMIT": "0"}, source=source,
                              access_log="off")
        try:
            # start_server returned at the first 200 from /readyz; time it from our own start.
            times.append(ready_all(server, started))
            if attempt < restarts - 1:
                continue
            exercise(server.port, key, hexes)
            time.sleep(1.0)
            pids = [server.process.pid, *children(server.process.pid)]
            worker_pids = children(server.process.pid)
            pss = sum(rollup(p)["Pss"] for p in pids)
            private = [rollup(p)["Private_Clean"] + rollup(p)["Private_Dirty"] for p in worker_pids]
        finally:
            server.stop()
    return statistics.median(times), pss, private


# A process that loads the saved index as a server worker does after a restart, searches it,
# says how long the load took, and waits to be measured.
READER = """
import sys, time
import numpy as np
from pathlib import Path
from hashdb.index.base import load_index
import hashdb.index.faiss_index  # imported before the clock starts, as in a running worker
started, cpu = time.perf_counter(), time.process_time()
index, _ = load_index(Path(sys.argv[1]))
took, took_cpu = time.perf_counter() - started, time.process_time() - cpu
queries = np.random.default_rng(int(sys.argv[2])).integers(0, 256, size=(200, 32), dtype=np.uint8)
for q in queries:
    index.search(q[None], 31)
print(f"{took:.3f} {took_cpu:.3f}", flush=True)
sys.stdin.read()
"""


def index_only(size: int, counts: list[int], sources: list[tuple[str, Path | None]]) -> None:
    """The index alone, without a database: N random PDQ codes in a saved FaissIndex, loaded by
    1, 2, 4 ... reader processes at once (each as a worker would), their PSS summed."""
    import subprocess

    import numpy as np

    from hashdb.index.faiss_index import FaissIndex

    directory = Path(f"/tmp/hashdb-bench-memory-index-{size}")
    path = directory / "pdq.faiss"
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        index = FaissIndex(256)
        # One add: one full build of the tables, as a rebuild from the store does.
        index.add(np.arange(1, size + 1), np.random.default_rng(1).integers(0, 256, size=(size, 32), dtype=np.uint8))
        index.save(path, 1)
        del index
    size_bytes = sum(p.stat().st_size for p in directory.iterdir() if p.is_file())
    print(f"{size:,} PDQ hashes in a saved FaissIndex of {size_bytes / MIB:,.0f} MiB; index alone, loaded by "
          f"reader processes as server workers load it; {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f} (a shared machine)")
    print()
    print("| code | processes | load s (each) | load CPU s (each) | PSS summed, MiB | "
          "added per process beyond the first, MiB | ... as % of the index |")
    print("|---|---:|---|---|---:|---:|---:|")
    for name, source in sources:
        env = {**os.environ, "PYTHONPATH": str(source or ROOT), "OMP_NUM_THREADS": "1"}
        base = None
        for workers in counts:
            readers = [subprocess.Popen([sys.executable, "-c", READER, str(path), str(n)], env=env, cwd=source or ROOT,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                       for n in range(workers)]
            try:
                loads, cpus = [], []
                for r in readers:
                    if r.stdout is not None:
                        wall, used = r.stdout.readline().split()
                        loads.append(float(wall))
                        cpus.append(float(used))
                pss = sum(rollup(r.pid)["Pss"] for r in readers)
            finally:
                for r in readers:
                    r.kill()
                    r.wait()
            if base is None:
                base = (workers, pss)
            added = (pss - base[1]) / (workers - base[0]) if workers > base[0] else None
            print(f"| {name} | {workers} | {', '.join(f'{t:.2f}' for t in loads)} | "
                  f"{', '.join(f'{t:.2f}' for t in cpus)} | {pss / MIB:,.0f} | "
                  + ("- | -" if added is None else f"{added / MIB:,.0f} | {100 * added / size_bytes:.1f} %") + " |",
                  flush=True)


def index_bytes(db: Path) -> int:
    directory = db.with_name(db.name + ".index")
    return sum(p.stat().st_size for p in directory.iterdir() if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--workers", default="1,2,4", help="Worker counts to measure (the first is the base).")
    parser.add_argument("--reference", type=Path, help="Another checkout of hashdb, measured the same way.")
    parser.add_argument("--reference-rev", help="A git revision to check out and measure as the reference.")
    parser.add_argument("--keep", type=Path, help="Directory to keep (and reuse) the database in.")
    parser.add_argument("--restarts", type=int, default=3, help="Starts timed per row (the median is shown).")
    parser.add_argument("--index-only", action="store_true",
                        help="Measure the index alone (no database to load: quick at 10M).")
    args = parser.parse_args()
    if args.reference_rev is not None:
        args.reference = reference_checkout(args.reference_rev)
    if args.index_only:
        named: list[tuple[str, Path | None]] = [("this", None)]
        if args.reference is not None:
            named.append(("reference", args.reference))
        index_only(args.size, [int(w) for w in args.workers.split(",")], named)
        return
    directory = args.keep or Path(f"/tmp/hashdb-bench-memory-{args.size}")
    directory.mkdir(parents=True, exist_ok=True)
    db = directory / "db.sqlite"
    if not db.exists():
        loaded, _ = load(db, args.size, 1)
        print(f"  {args.size:,} hashes loaded in {loaded:.0f} s", file=sys.stderr)
    key = make_keys(db, {"reader": ("reader", "consumer")})["reader"][0]
    hexes = queries(args.size, 200, 7)
    size = index_bytes(db)
    counts = [int(w) for w in args.workers.split(",")]
    print(f"{args.size:,} PDQ hashes; index snapshot {size / MIB:,.0f} MiB; {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f} at start (a shared machine)")
    print()
    print("| code | workers | ready after start, s (median) | PSS of master + workers, MiB | "
          "added per worker beyond the first, MiB | ... as % of the index | private MiB per worker |")
    print("|---|---:|---:|---:|---:|---:|---|")
    sources: list[tuple[str, Path | None]] = [("this", None)]
    if args.reference is not None:
        sources.append(("reference", args.reference))
    for name, source in sources:
        base = None
        for workers in counts:
            ready, pss, private = measure(db, workers, key, hexes, source, args.restarts)
            if base is None:
                base = (workers, pss)
            added = (pss - base[1]) / (workers - base[0]) if workers > base[0] else None
            cells = [name, str(workers), f"{ready:.2f}", f"{pss / MIB:,.0f}",
                     "-" if added is None else f"{added / MIB:,.0f}",
                     "-" if added is None else f"{100 * added / size:.1f} %",
                     ", ".join(f"{p / MIB:,.0f}" for p in private)]
            print("| " + " | ".join(cells) + " |", flush=True)
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
