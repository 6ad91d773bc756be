"""Where a lookup's CPU goes, layer by layer, in one process: the service, the WSGI app around
it (hashdb/api/lean.py in front of Flask), and the app with the service taken out. CPU time, best of --rounds, so a shared machine's
other load moves it little; with --reference-rev the same is measured for another commit in
alternated rounds (each round a fresh process per code), and the table gives both.

    .venv/bin/python scripts/profile_lookup.py --size 200000
    .venv/bin/python scripts/profile_lookup.py --size 200000 --reference-rev 959b5d9

The server around the app (gunicorn, hashdb/api/worker.py) is measured by scripts/bench_api.py
(its "server CPU us/request" column); the difference between the two is the server's share.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "scripts"))

LOOKUPS = 2000
BATCH = 100


def _cpu_us(run: Callable[[], object], count: int, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        run()
        best = min(best, time.process_time() - started)
    return best / count * 1e6


def measure(db: Path, key: str, hexes: list[str], rounds: int) -> dict[str, float]:
    """CPU us per request (per hash for batches) of each layer, in this process."""
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="hashdb-profile-"))
    from hashdb.api import create_app
    from hashdb.api.runtime import get_service
    from hashdb.types import HashValue, LookupResult, Query

    app = create_app({"DB": str(db), "LOAD_INDEX_IN_BACKGROUND": False, "RATE_LIMIT": 0,
                      "WEBHOOK_INTERVAL": 0, "METRICS_INTERVAL": 0})
    with app.app_context():
        service = get_service()
        actor = service.authenticate(key)
    singles = [Query(f"pdq:{h}", (HashValue("pdq", h),)) for h in hexes[:LOOKUPS]]
    batches = [singles[i:i + BATCH] for i in range(0, len(singles), BATCH)]
    bodies = [json.dumps({"items": [{"signal": "pdq", "hash": q.hashes[0].hex} for q in b]}).encode()
              for b in batches]

    def environ(method: str, query: str = "", body: bytes = b"") -> dict[str, object]:
        return {"REQUEST_METHOD": method, "PATH_INFO": "/v1/lookup", "QUERY_STRING": query,
                "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)), "SERVER_NAME": "bench",
                "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http",
                "HTTP_AUTHORIZATION": f"Bearer {key}", "HTTP_HOST": "bench", "REMOTE_ADDR": "127.0.0.1",
                "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr, "wsgi.multithread": True,
                "wsgi.multiprocess": True, "wsgi.run_once": False}

    def answer(status: str, headers: Iterable[tuple[str, str]], exc_info: object = None) -> None:
        if not status.startswith("200"):
            raise SystemExit(f"the app answered {status}")

    def app_singles() -> None:
        for q in singles:
            b"".join(app(environ("GET", f"signal=pdq&hash={q.hashes[0].hex}"), answer))

    def app_batches() -> None:
        for body in bodies:
            b"".join(app(environ("POST", body=body), answer))

    app_singles()  # warm: key cache, index pages, imports
    out = {
        "service.lookup, 1 hash": _cpu_us(lambda: [service.lookup([q], actor) for q in singles], LOOKUPS, rounds),
        "service.lookup, batch of 100 (per hash)": _cpu_us(lambda: [service.lookup(b, actor) for b in batches],
                                                           LOOKUPS, rounds),
        "WSGI app, GET /v1/lookup": _cpu_us(app_singles, LOOKUPS, rounds),
        "WSGI app, POST /v1/lookup of 100 (per hash)": _cpu_us(app_batches, LOOKUPS, rounds),
    }
    real = service.lookup
    service.lookup = lambda queries, actor, thresholds=None, count=True: [  # type: ignore[method-assign]
        LookupResult(q.input, False) for q in queries]
    try:
        out["WSGI app, GET /v1/lookup, service stubbed"] = _cpu_us(app_singles, LOOKUPS, rounds)
    finally:
        service.lookup = real  # type: ignore[method-assign]
    return out


def child(args: argparse.Namespace) -> None:
    hexes = Path(args.queries).read_text().split()
    print(json.dumps(measure(Path(args.db), Path(args.key).read_text(), hexes, args.rounds)))


def run_in(checkout: Path, args: argparse.Namespace, db: Path, key: Path, queries: Path) -> dict[str, float]:
    command = [sys.executable, "-P", str(Path(__file__).resolve()), "--child", "--db", str(db), "--key", str(key),
               "--queries", str(queries), "--rounds", str(args.rounds)]
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True, cwd=checkout)
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=200_000, help="Random PDQ hashes stored.")
    parser.add_argument("--rounds", type=int, default=5, help="Timed passes per layer (the best is shown).")
    parser.add_argument("--alternations", type=int, default=2, help="Fresh processes per code, alternated.")
    parser.add_argument("--reference-rev", help="A git revision measured the same way, alternated with this code.")
    parser.add_argument("--db", type=Path, help="Keep the seeded SQLite database here and reuse it when it "
                        "already holds --size hashes (bench_api.py --db makes the same databases).")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    parser.add_argument("--queries", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    from bench_api import load, queries, reference_checkout
    from serverproc import make_keys

    directory = Path(tempfile.mkdtemp(prefix="hashdb-profile-lookup-"))
    try:  # the database is about 450 MB at 1M hashes
        key, hexes = directory / "key", directory / "queries.txt"
        db = args.db or directory / "db.sqlite"
        load(db, args.size, 1)
        key.write_text(make_keys(db, {"reader": ("reader", "consumer")})["reader"][0])
        hexes.write_text("\n".join(queries(args.size, LOOKUPS, 7)) + "\n")
        codes = {"this": ROOT}
        if args.reference_rev:
            codes["reference"] = reference_checkout(args.reference_rev)
        best: dict[str, dict[str, float]] = {name: {} for name in codes}
        for _ in range(args.alternations):
            for name, checkout in codes.items():
                for layer, us in run_in(checkout, args, db, key, hexes).items():
                    best[name][layer] = min(us, best[name].get(layer, float("inf")))
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    print(f"# {args.size:,} random PDQs stored; {LOOKUPS:,} lookups (half near a stored hash), CPU us per "
          f"request or per hash, best of {args.rounds} passes x {args.alternations} processes; "
          f"load average {os.getloadavg()[0]:.1f} at the end")
    header = "| layer | this, CPU us |" + (" reference, CPU us | reference / this |" if len(codes) > 1 else "")
    print(header)
    print("|---|---:|" + ("---:|---:|" if len(codes) > 1 else ""))
    for layer, us in best["this"].items():
        row = f"| {layer} | {us:,.0f} |"
        if "reference" in best and layer in best["reference"]:
            ref = best["reference"][layer]
            row += f" {ref:,.0f} | {ref / us:.2f}x |"
        print(row)


if __name__ == "__main__":
    main()
