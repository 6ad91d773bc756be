"""Lookup latency of a served database while `hashdb import` writes 200,000 hashes into it.

    .venv/bin/python scripts/bench_import_lookup.py --reference /tmp/hashdb-ref
    .venv/bin/python scripts/bench_import_lookup.py --size 100000 --import-size 50000

A database of --size random PDQ hashes is served (`hashdb serve --workers 2`, defaults, rate
limit off). Four client threads send single lookups over kept-alive connections, first for
--seconds with nothing else running (the baseline), then for as long as a `hashdb import` of
--import-size new hashes (a ThreatExchange-style file) runs against the same database file
in another process. With --reference, the same is run against another checkout of the code,
on a fresh copy of the database, in the same run. Latency percentiles per phase.
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_api import load, queries, random_codes, to_hex  # noqa: E402
from serverproc import make_keys, start_server  # noqa: E402

THREADS = 4


def hammer(port: int, key: str, hexes: list[str], stop: threading.Event) -> tuple[list[float], list[int]]:
    took: list[list[float]] = [[] for _ in range(THREADS)]
    statuses: list[int] = []

    def run(n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        i = n
        while not stop.is_set():
            started = time.perf_counter()
            conn.request("GET", f"/v1/lookup?signal=pdq&hash={hexes[i % len(hexes)]}",
                         headers={"Authorization": f"Bearer {key}"})
            response = conn.getresponse()
            response.read()
            took[n].append(time.perf_counter() - started)
            if response.status != 200:
                statuses.append(response.status)
            i += THREADS
        conn.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [x for per in took for x in per], statuses


def phase(port: int, key: str, hexes: list[str], until: threading.Event | float) -> tuple[list[float], list[int]]:
    stop = threading.Event()
    result: list[tuple[list[float], list[int]]] = []
    runner = threading.Thread(target=lambda: result.append(hammer(port, key, hexes, stop)))
    runner.start()
    if isinstance(until, float):
        time.sleep(until)
    else:
        until.wait()
    stop.set()
    runner.join()
    return result[0]


def cells(name: str, what: str, took: list[float], statuses: list[int], seconds: float) -> str:
    cuts = statistics.quantiles(took, n=100)
    bad = f"{len(statuses)} (e.g. {statuses[0]})" if statuses else "0"
    return (f"| {name} | {what} | {len(took):,} | {len(took) / seconds:,.0f} | {cuts[49] * 1000:.1f} | "
            f"{cuts[98] * 1000:.1f} | {max(took) * 1000:.0f} | {bad} |")


def run_one(name: str, template: Path, source: Path | None, import_file: Path, seconds: float,
            hexes: list[str]) -> list[str]:
    directory = Path(tempfile.mkdtemp(prefix="hashdb-bench-import-"))
    db = directory / "db.sqlite"
    shutil.copy(template, db)
    shutil.copytree(template.with_name(template.name + ".index"), db.with_name(db.name + ".index"))
    key = make_keys(db, {"reader": ("reader", "consumer")})["reader"][0]
    server = start_server(db, workers=2, env={"HASHDB_RATE_LIMIT": "0"}, source=source, access_log="off")
    lines = []
    try:
        phase(server.port, key, hexes, 2.0)  # warm up both workers
        took, statuses = phase(server.port, key, hexes, seconds)
        lines.append(cells(name, "lookups alone", took, statuses, seconds))
        done = threading.Event()
        env = {**os.environ, "PYTHONPATH": str(source)} if source is not None else None
        command = [sys.executable, "-c", "from hashdb.cli import cli; cli()", "import"]
        usage = subprocess.run([*command, "--help"], cwd=source, env=env, capture_output=True, text=True).stdout
        if "--pdq-quality" in usage:  # lines without a quality need one vouched for (newer code)
            command += ["--pdq-quality", "90"]
        started = time.perf_counter()
        importer = subprocess.Popen(
            [*command, "--db", str(db), "--org", "importer", "--label", "glorification", str(import_file)],
            cwd=source, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        waiter = threading.Thread(target=lambda: (importer.wait(), done.set()))
        waiter.start()
        took, statuses = phase(server.port, key, hexes, done)
        elapsed = time.perf_counter() - started
        output = importer.stdout.read().decode() if importer.stdout else ""
        if importer.returncode != 0:
            raise SystemExit(f"{name}: hashdb import failed: {output[-500:]}")
        lines.append(cells(name, f"lookups during the import ({elapsed:.0f} s)", took, statuses, elapsed))
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=100_000, help="Hashes already served.")
    parser.add_argument("--import-size", type=int, default=200_000)
    parser.add_argument("--seconds", type=float, default=15.0, help="Length of the baseline phase.")
    parser.add_argument("--reference", type=Path, help="Another checkout of hashdb, measured the same way.")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hashdb-bench-import-template-"))
    try:
        template = work / "db.sqlite"
        load(template, args.size, 1)
        import_file = work / "import.txt"
        hexes = to_hex(random_codes(args.import_size, 10**9))
        import_file.write_text("".join(f"pdq {h}\n" for h in hexes))
        probes = queries(args.size, 2000, 7)
        print(f"{args.size:,} hashes served, {args.import_size:,} imported; {os.cpu_count()} cores, "
              f"load average {os.getloadavg()[0]:.1f} at start (a shared machine); {THREADS} client threads")
        print()
        print("| code | phase | lookups | per s | p50 ms | p99 ms | max ms | non-200 |")
        print("|---|---|---:|---:|---:|---:|---:|---:|")
        runs: list[tuple[str, Path | None]] = [("this", None)]
        if args.reference is not None:
            runs.append(("reference", args.reference))
        for name, source in runs:
            for line in run_one(name, template, source, import_file, args.seconds, probes):
                print(line, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
