"""Latency of /healthz and single lookups while 200 slow or hostile connections are held open.

    .venv/bin/python scripts/bench_hostile.py --reference /tmp/hashdb-ref
    .venv/bin/python scripts/bench_hostile.py --hostile 50 --requests 200

`hashdb serve --workers 2` (defaults) serves --size random PDQ hashes. tests/hostile.py keeps
--hostile connections open for the whole measurement, a third each sending half a request
head and stopping, announcing a 10 GB body and sending 2 bytes of it, or sending nothing
(any the server closes are re-opened at once). Meanwhile one client sends --requests
requests of each kind in turn over a kept-alive connection, each with a 10 s timeout.
With --reference the same is run against another checkout of the code in the same run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_api import load, queries  # noqa: E402
from hostile import HostileCrowd, timed_requests  # noqa: E402
from serverproc import make_keys, start_server  # noqa: E402

TIMEOUT = 10.0


def measure(port: int, method_path: str, headers: dict[str, str], requests: int) -> str:
    try:
        took = timed_requests(port, requests, "GET", method_path, headers, timeout=TIMEOUT)
    except (OSError, AssertionError) as exc:
        return f"| failed: {type(exc).__name__} {exc} | | |"
    cuts = statistics.quantiles(took, n=100)
    return f"| {cuts[49] * 1000:.1f} | {cuts[98] * 1000:.1f} | {max(took) * 1000:.0f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--hostile", type=int, default=200)
    parser.add_argument("--requests", type=int, default=1000, help="Requests of each kind.")
    parser.add_argument("--reference", type=Path, help="Another checkout of hashdb, measured the same way.")
    args = parser.parse_args()
    db = Path(tempfile.mkdtemp(prefix="hashdb-bench-hostile-")) / "db.sqlite"
    load(db, args.size, 1)
    key = make_keys(db, {"reader": ("reader", "consumer")})["reader"][0]
    probe = queries(args.size, 2, 7)[0]
    print(f"{args.size:,} hashes served; {args.hostile} hostile connections held; {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f} at start (a shared machine)")
    print()
    print("| code | request | hostile connections | p50 ms | p99 ms | max ms |")
    print("|---|---|---:|---:|---:|---:|")
    runs: list[tuple[str, Path | None]] = [("this", None)]
    if args.reference is not None:
        runs.append(("reference", args.reference))
    auth = {"Authorization": f"Bearer {key}"}
    for name, source in runs:
        server = start_server(db, workers=2, env={"HASHDB_RATE_LIMIT": "0"}, source=source, access_log="off")
        try:
            for hostile in (0, args.hostile):
                crowd = HostileCrowd(server.port, hostile, key)
                with crowd:
                    for what, path in (("GET /healthz", "/healthz"),
                                       ("GET /v1/lookup", f"/v1/lookup?signal=pdq&hash={probe}")):
                        row = measure(server.port, path, auth, args.requests)
                        print(f"| {name} | {what} | {hostile} {row}", flush=True)
        finally:
            server.stop()
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
