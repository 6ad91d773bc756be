"""Crisis webhooks with one stalled subscriber: how long the healthy one waits for a submission.

    .venv/bin/python scripts/bench_webhooks.py --records 8,400
    .venv/bin/python scripts/bench_webhooks.py --records 8 --reference /tmp/hashdb-ref   # alternated

A real `hashdb serve --workers 2` (webhook timeout 5 s, the default) with two subscribers on
loopback: one answers at once, one only after --stall seconds (a stalled endpoint that still
accepts connections). N records are submitted in one POST /v1/hashes under an open incident;
printed: when the healthy receiver had the first and all N records (seconds after the submission
was answered) and how many requests the stalled one had received by then. With --reference,
the same run is made by another checkout's server, alternated; a run still waiting after
--max-wait seconds is reported with what had arrived by then. The database of each run is made
by the CLI of the code that serves it, so an older checkout is never given a newer schema.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from serverproc import start_server  # noqa: E402

INCIDENT = "attack-2026-12"


class Receiver:
    """Answers 200 after `delay` seconds, each request on its own thread; notes arrival times."""

    def __init__(self, delay: float) -> None:
        self.arrivals: list[float] = []
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                self.rfile.read(int(self.headers["Content-Length"]))
                receiver.arrivals.append(time.monotonic())
                receiver.release.wait(delay)
                try:
                    self.send_response(200)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the sender gave up waiting

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def hashdb(source: Path, db: Path, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(source), "HASHDB_DB": str(db), "HASHDB_WEBHOOK_ALLOW_LOOPBACK": "1"}
    code = 'import sys; from hashdb.cli import main; sys.argv[0] = "hashdb"; main()'
    # cwd: `python -c` puts the working directory ahead of PYTHONPATH.
    return subprocess.run([sys.executable, "-c", code, *args], env=env, cwd=source, check=True,
                          capture_output=True, text=True).stdout


def run(source: Path, records: int, stall: float, workers: int, max_wait: float) -> dict[str, object]:
    fast, slow = Receiver(0.0), Receiver(stall)
    with tempfile.TemporaryDirectory(prefix="bench-webhooks-") as tmp:
        db = Path(tmp) / "db.sqlite"
        hashdb(source, db, "incident", "open", INCIDENT)
        key = json.loads(hashdb(source, db, "keys", "create", "--org", "member", "--role", "contributor",
                                "--json").splitlines()[0])["key"]
        for org, receiver in (("orgb", fast), ("orgc", slow)):
            hashdb(source, db, "keys", "create", "--org", org, "--role", "partner")
            hashdb(source, db, "webhook", "add", "--org", org, receiver.url)
        server = start_server(db, workers=workers, env={"HASHDB_WEBHOOK_ALLOW_LOOPBACK": "1"}, source=source)
        try:
            items = [{"signal": "md5", "hash": f"{i:032x}", "labels": ["glorification"], "incident": INCIDENT}
                     for i in range(1, records + 1)]
            reply = server.request("POST", "/v1/hashes", key=key, body={"items": items})
            if reply.status not in (200, 201):
                raise SystemExit(f"submission refused: {reply.status} {reply.body[:200]!r}")
            t0 = time.monotonic()
            while len(fast.arrivals) < records and time.monotonic() - t0 < max_wait:
                time.sleep(0.02)
            got = list(fast.arrivals)
            return {"received": len(got), "first_s": got[0] - t0 if got else None,
                    "all_s": got[-1] - t0 if len(got) >= records else None, "stalled_requests": len(slow.arrivals)}
        finally:
            server.stop()
            fast.close()
            slow.close()


def cell(seconds: object, received: object, records: int, max_wait: float) -> str:
    if isinstance(seconds, float):
        return f"{seconds:.2f}"
    return f"> {max_wait:g} ({received} of {records})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", default="8,400", help="Comma-separated records per submission.")
    parser.add_argument("--stall", type=float, default=20.0, help="Seconds the stalled subscriber takes.")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-wait", type=float, default=120.0)
    parser.add_argument("--reference", type=Path, help="Another checkout of hashdb, run alternated.")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start; "
          f"hashdb serve --workers {args.workers}, stalled subscriber {args.stall:g} s, webhook timeout 5 s")
    print()
    print("| code | records | healthy: first (s) | healthy: all (s) | requests to the stalled one by then |")
    print("|---|---:|---:|---:|---:|")
    sources = [("this", ROOT)] + ([("reference", args.reference)] if args.reference else [])
    for records in (int(n) for n in args.records.split(",")):
        for name, source in sources:
            r = run(source, records, args.stall, args.workers, args.max_wait)
            print(f"| {name} | {records} | {cell(r['first_s'], r['received'], records, args.max_wait)} | "
                  f"{cell(r['all_s'], r['received'], records, args.max_wait)} | {r['stalled_requests']} |", flush=True)
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
