"""Server time of every web console page at a million records (target: <= 300 ms each).

    .venv/bin/python scripts/bench_ui.py                    # 1M records in SQLite
    .venv/bin/python scripts/bench_ui.py -n 100000 --stores sqlite postgres

Seeds a fresh database through the bulk path (HashStore.add_records, batches of 10,000): three
contributing organisations, six labels (one rare), an incident's records, md5 records, then
disputes and quarantines through the service. Each page is then requested in-process through
the app (Flask's test client: the server's work without the network) --repeat times, signed in
as an admin (and as a contributor for its own records); the table shows the median and the
slowest. The reference rows, timed in the same run, are GET /healthz (the app's fixed cost) and
GET /v1/stats (a small API read).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hashdb.service.local import open_database
from hashdb.types import HashValue, NewRecord, Principal, RecordQuery, Submission

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"
LABELS = ["glorification", "graphic_violence", "branded_publication", "attacker_manifesto", "imminent_threat"]
RARE_LABEL = "recruitment_instruction"  # about 1 record in 5,000: the label filter's worst case
ORGS = ["alpha", "beta", "gamma"]
TARGET_MS = 300.0


def pdq(rng: random.Random) -> str:
    bits = rng.getrandbits(256)
    return f"{bits:064x}"


def seed(service: Any, n: int, batch: int, say: Callable[[str], None]) -> dict[str, Any]:
    rng = random.Random(7)
    store = service.store
    operator = store.ensure_org("operator")
    root = Principal(operator.id, operator.name, "admin")
    actors = {name: Principal(store.ensure_org(name).id, name, "contributor") for name in ORGS}
    started = time.perf_counter()
    done = 0
    while done < n:
        size = min(batch, n - done)
        org = ORGS[(done // batch) % len(ORGS)]
        records = []
        for _ in range(size):
            label = RARE_LABEL if rng.random() < 0.0002 else rng.choice(LABELS)
            if rng.random() < 0.05:
                records.append(NewRecord(HashValue("md5", f"{rng.getrandbits(128):032x}"), "image", (label,)))
            else:
                records.append(NewRecord(HashValue("pdq", pdq(rng), 100), "image", (label,)))
        store.add_records(records, actors[org])
        done += size
        if done % (batch * 20) == 0 or done == n:
            say(f"  seeded {done:,} records ({done / (time.perf_counter() - started):,.0f}/s)")
    seconds = time.perf_counter() - started
    incident = service.open_incident("bench-incident", root, "records shared under a crisis")
    subs = [Submission(f"i{k}", ("attacker_manifesto",), (HashValue("pdq", pdq(rng), 100),), incident="bench-incident")
            for k in range(2000)]
    service.submit(subs, actors["beta"])
    top = store.max_record_id()
    picks = rng.sample(range(1, top + 1), 600)
    for record_id in picks[:400]:  # two organisations disagree: disputed
        service.feedback(record_id, actors["alpha"], "disagree", "looks like a news still")
        service.feedback(record_id, actors["gamma"], "false_positive", "matched our own upload")
    for record_id in picks[400:]:
        service.quarantine(record_id, root, "reported by a member")
    key, _ = service.create_key("operator", "admin", root)
    alpha_key, _ = service.create_key("alpha", "contributor", root)
    return {"seconds": seconds, "incident": incident.id, "admin_key": key, "alpha_key": alpha_key,
            "record": picks[0], "quarantined": picks[500], "mid": top // 2}


@contextmanager
def database(kind: str, tmp: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield str(tmp / "bench_ui.sqlite")
        return
    from hashdb.store.postgres_schema import temporary_schema

    os.environ.setdefault("HASHDB_SECRET", "bench-ui-secret-" + "x" * 32)
    with temporary_schema(os.environ.get("HASHDB_TEST_POSTGRES", DEFAULT_DSN), "bench_ui") as dsn:
        yield dsn


def signed_in(app: Any, key: str) -> Any:
    client = app.test_client()
    page = client.get("/ui/signin").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token, "no CSRF token on the sign-in page"
    reply = client.post("/ui/signin", data={"key": key, "csrf_token": token.group(1)})
    assert reply.status_code == 302, reply.status_code
    # Signing in starts a fresh session with a fresh CSRF token: read it from a page.
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/ui/check").get_data(as_text=True))
    assert token, "no CSRF token on the check page"
    client.csrf = token.group(1)  # type: ignore[attr-defined]
    return client


def timed(call: Callable[[], Any], repeat: int) -> tuple[list[float], int]:
    times, status = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        reply = call()
        times.append((time.perf_counter() - start) * 1000)
        status = reply.status_code
    return times, status


def run(kind: str, n: int, batch: int, repeat: int, say: Callable[[str], None]) -> list[tuple[str, ...]]:
    from hashdb.api import create_app

    with tempfile.TemporaryDirectory(prefix="bench_ui_") as tmpdir, database(kind, Path(tmpdir)) as target:
        service = open_database(target)
        say(f"{kind}: seeding {n:,} records ...")
        data = seed(service, n, batch, say)
        pdq_hexes = [r.value for r in service.store.search_records(RecordQuery(signal="pdq", limit=10))]
        service.store.close()
        say(f"{kind}: loading the app and its index ...")
        app = create_app({"DB": target, "LOAD_INDEX_IN_BACKGROUND": False, "WEBHOOK_INTERVAL": 0,
                          "METRICS_INTERVAL": 0, "RATE_LIMIT": 0})
        admin = signed_in(app, data["admin_key"])
        alpha = signed_in(app, data["alpha_key"])
        api_headers = {"Authorization": f"Bearer {data['admin_key']}"}
        checks = "\n".join(f"pdq:{h}" for h in pdq_hexes)
        pages: list[tuple[str, Any, Callable[[], Any]]] = [
            ("reference: GET /healthz", admin, lambda: admin.get("/healthz")),
            ("reference: GET /v1/stats", admin, lambda: admin.get("/v1/stats", headers=api_headers)),
            ("dashboard", admin, lambda: admin.get("/ui/")),
            ("records, newest", admin, lambda: admin.get("/ui/records")),
            ("records, a page in the middle", admin, lambda: admin.get(f"/ui/records?before={data['mid']}")),
            ("records, status=disputed", admin, lambda: admin.get("/ui/records?status=disputed")),
            ("records, signal=md5", admin, lambda: admin.get("/ui/records?signal=md5")),
            ("records, org=gamma", admin, lambda: admin.get("/ui/records?org=gamma")),
            ("records, incident", admin, lambda: admin.get("/ui/records?incident=bench-incident")),
            (f"records, label={RARE_LABEL} (rare)", admin, lambda: admin.get(f"/ui/records?label={RARE_LABEL}")),
            ("records, by hash", admin, lambda: admin.get(f"/ui/records?q=pdq:{pdq_hexes[0]}")),
            ("records, contributor's own", alpha, lambda: alpha.get("/ui/records")),
            ("record page (disputed, votes, history)", admin, lambda: admin.get(f"/ui/records/{data['record']}")),
            ("review: quarantined", admin, lambda: admin.get("/ui/review/quarantined")),
            ("review: disputed", admin, lambda: admin.get("/ui/review/disputed")),
            ("incidents", admin, lambda: admin.get("/ui/incidents")),
            ("incident page", admin, lambda: admin.get(f"/ui/incidents/{data['incident']}")),
            ("check (form)", admin, lambda: admin.get("/ui/check")),
            ("check: 10 PDQ lookups", admin, lambda: admin.post("/ui/check", data={
                "hashes": checks, "csrf_token": admin.csrf})),
            ("admin: keys", admin, lambda: admin.get("/ui/admin/keys")),
            ("admin: webhooks", admin, lambda: admin.get("/ui/admin/webhooks")),
            ("admin: safelist", admin, lambda: admin.get("/ui/admin/safelist")),
            ("admin: audit", admin, lambda: admin.get("/ui/admin/audit")),
            ("admin: audit verify (whole chain)", admin, lambda: admin.post("/ui/admin/audit/verify", data={
                "anchors": "", "csrf_token": admin.csrf})),
        ]
        rows = []
        for name, _, call in pages:
            call()  # warm: templates compiled, pages cached by the engine
            times, status = timed(call, repeat)
            median, worst = statistics.median(times), max(times)
            verdict = "" if name.startswith("reference") else ("ok" if worst <= TARGET_MS else "OVER")
            rows.append((kind, name, str(status), f"{median:.1f}", f"{worst:.1f}", verdict))
        rows.append((kind, f"(seeding {n:,} records by add_records)", "", f"{data['seconds']:.0f} s", "", ""))
        app.extensions["hashdb"].close()
        return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=1_000_000, help="records to seed")
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=7, help="requests per page")
    parser.add_argument("--stores", nargs="+", default=["sqlite"], choices=["sqlite", "postgres"])
    args = parser.parse_args()
    rows = []
    for kind in args.stores:
        rows += run(kind, args.n, args.batch, args.repeat, lambda s: print(s, file=sys.stderr, flush=True))
    print(f"| store | page | status | median ms | max ms | <= {TARGET_MS:.0f} ms |")
    print("|---|---|---:|---:|---:|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0 if all(r[5] != "OVER" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
