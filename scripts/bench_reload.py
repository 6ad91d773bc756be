"""What clients see while `hashdb serve` reloads (kill -HUP on the master), against a reference
server measured in the same run.

    .venv/bin/python scripts/bench_reload.py --reference-rev c770af5 --db /tmp/benchreload/db.sqlite

Per server: the database (random PDQs, seeded as scripts/bench_api.py seeds them) is served
with `--workers 2`; wrk keeps `--connections` kept-alive clients sending single lookups, and
every `--every` seconds the master gets SIGHUP, `--reloads` times. wrk's socket errors (a
kept-alive connection reset under a request) and non-2xx answers (a worker still loading its
index answers 503) are what a reload cost; requests/s says how much traffic went through.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_api import beside, queries, reference_checkout, seeded, start_server, wait_all_ready  # noqa: E402

LUA = r"""
local hashes = {}
for line in io.lines(os.getenv("BENCH_HASHES")) do hashes[#hashes + 1] = line end
local auth = {["Authorization"] = "Bearer " .. os.getenv("BENCH_KEY")}
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", "/v1/lookup?signal=pdq&hash=" .. hashes[(n % #hashes) + 1], auth)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH %d %d %d %d %d\n", summary.requests, e.connect + e.read + e.write,
                         e.timeout, e.status, summary.duration))
end
"""


def run(source: Path | None, db: Path, key: str, hashes: Path, script: Path, connections: int,
        reloads: int, every: float) -> dict[str, float]:
    server = start_server(db, workers=2, env={"HASHDB_RATE_LIMIT": "0"}, source=source)
    try:
        wait_all_ready(server)

        def hang_ups() -> None:
            for _ in range(reloads):
                time.sleep(every / 2)
                os.kill(server.process.pid, signal.SIGHUP)
                time.sleep(every / 2)

        thread = threading.Thread(target=hang_ups)
        thread.start()
        out = subprocess.run(["wrk", "-t", "2", "-c", str(connections), "-d", f"{reloads * every:g}s",
                              "--timeout", "10s", "-s", str(script), server.url],
                             env={**os.environ, "BENCH_HASHES": str(hashes), "BENCH_KEY": key},
                             capture_output=True, text=True, check=True).stdout
        thread.join()
    finally:
        server.stop()
    line = next(x for x in out.splitlines() if x.startswith("BENCH "))
    requests, socket_errors, timeouts, non_2xx, micros = (int(v) for v in line.split()[1:])
    return {"requests": requests, "socket": socket_errors, "timeouts": timeouts, "non_2xx": non_2xx,
            "rps": requests / (micros / 1e6)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hashes", type=int, default=500_000, help="PDQs in the database.")
    parser.add_argument("--db", type=Path, help="Seeded database to create or reuse (default: a temporary one).")
    parser.add_argument("--reference-rev", help="A commit to measure in the same run, checked out beside.")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--reloads", type=int, default=3)
    parser.add_argument("--every", type=float, default=4.0, help="Seconds between reloads.")
    parser.add_argument("--rounds", type=int, default=2, help="Alternated rounds per server.")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-reload-"))
    db = args.db or folder / "db.sqlite"
    db.parent.mkdir(parents=True, exist_ok=True)
    hashes = folder / "hashes.txt"
    hashes.write_text("\n".join(queries(args.hashes, 2_000, seed=1)) + "\n")
    script = folder / "reload.lua"
    script.write_text(LUA)
    # Each server its own copy of the data, seeded by its own code: a database this code has
    # migrated is refused by an older hashdb.
    servers: dict[str, tuple[Path | None, Path, str]] = {"this": (None, db, seeded(None, db, args.hashes).key)}
    if args.reference_rev:
        source = reference_checkout(args.reference_rev)
        other = beside(db, args.reference_rev)
        servers["reference"] = (source, other, seeded(source, other, args.hashes).key)
    print(f"{args.hashes:,} hashes, {args.connections} kept-alive connections, {args.reloads} reloads "
          f"{args.every:g} s apart, load average {os.getloadavg()[0]:.1f}")
    print("| server | round | requests | requests/s | socket errors | timeouts | non-2xx answers |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for n in range(args.rounds):
        for name, (source, served, key) in servers.items():
            r = run(source, served, key, hashes, script, args.connections, args.reloads, args.every)
            print(f"| {name} | {n + 1} | {r['requests']:,.0f} | {r['rps']:,.0f} | {r['socket']:.0f} | "
                  f"{r['timeouts']:.0f} | {r['non_2xx']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
