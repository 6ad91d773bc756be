"""Metrics and access logs of a real `hashdb serve` (2 gunicorn workers): bounded label sets,
OpenAPI path templates as endpoint labels, per-worker and database gauges, escaped log lines,
and every metric the sample dashboard and alert rules use present on /metrics."""

from __future__ import annotations

import json
import random
import re
import time
from pathlib import Path

import pytest
import yaml

from serverproc import serving
from support import random_pdq

DOCS = Path(__file__).resolve().parents[2] / "docs"
ROLES = {"admin": ("operator", "admin"), "alpha": ("alpha", "contributor"), "consumer": ("gamma", "consumer")}
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    db = tmp_path_factory.mktemp("metrics") / "db.sqlite"
    with serving(db, ROLES, workers=2, env={"HASHDB_METRICS_INTERVAL": "0.2"}) as served:
        yield served


def scrape(live) -> str:
    reply = live.request("GET", "/metrics")
    assert reply.status == 200
    return reply.body.decode()


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    out = []
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if match and not line.startswith("#"):
            labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
            out.append((match.group(1), labels, float(match.group(3))))
    return out


def traffic(live, keys) -> int:
    """A little of everything: a submission, matching and missing lookups, feedback, a refusal."""
    rng = random.Random(31)
    base = random_pdq(rng)
    reply = live.request("POST", "/v1/hashes", {"items": [{"signal": "pdq", "hash": base, "quality": 90, "labels": ["glorification"]}]},
                         keys["alpha"])
    assert reply.status in (200, 201), reply.body  # 200: a second call finds it there
    record_id = reply.json()["results"][0]["ids"][0]
    for hex_value in (base, random_pdq(rng)):
        assert live.request("GET", f"/v1/lookup?signal=pdq&hash={hex_value}", key=keys["consumer"]).status == 200
    md5 = {"signal": "md5", "hash": "ab" * 16}
    assert live.request("POST", "/v1/lookup", {"items": [md5]}, keys["consumer"]).status == 200
    assert live.request("POST", f"/v1/hashes/{record_id}/feedback", {"verdict": "agree"}, keys["consumer"]).status == 200
    refused = live.request("POST", "/v1/hashes", {"items": [{"signal": "pdq", "hash": base, "quality": 90, "labels": ["no-such"]}]},
                           keys["alpha"])
    assert refused.status == 422 and refused.json()["error"]["code"] == "unknown_label"
    return record_id


def test_endpoints_are_labelled_by_openapi_path_and_counters_by_signal(server):
    live, keys = server
    traffic(live, keys)
    got = samples(scrape(live))
    spec_paths = set(live.request("GET", "/openapi.json").json()["paths"])
    endpoints = {labels["endpoint"] for name, labels, _ in got if "endpoint" in labels}
    assert "/v1/hashes/{id}/feedback" in endpoints and "/v1/lookup" in endpoints
    assert endpoints <= spec_paths | {"unmatched"}
    value = {(name, tuple(sorted(labels.items()))): v for name, labels, v in got}
    assert value[("hashdb_lookups_by_signal_total", (("signal", "pdq"),))] >= 2
    assert value[("hashdb_matches_by_signal_total", (("signal", "pdq"),))] >= 1
    assert value[("hashdb_lookups_by_signal_total", (("signal", "md5"),))] >= 1
    assert value[("hashdb_submissions_refused_total", (("reason", "unknown_label"),))] >= 1
    assert value[("hashdb_records", (("status", "active"),))] >= 1
    [build] = [labels for name, labels, v in got if name == "hashdb_build_info" and v == 1]
    assert build["version"] == "0.1.0" and build["python"].count(".") == 2


def test_made_up_methods_and_paths_add_no_series(server):
    live, keys = server
    before = scrape(live)
    for n in range(40):
        live.request(f"FOO{n}", "/v1/lookup", key=keys["consumer"])
        live.request("GET", f"/v1/nothing-{n}/{random.Random(n).getrandbits(64):x}", key=keys["consumer"])
        live.request(f"BAR{n}", f"/random-{n}")
    after = scrape(live)
    assert "FOO" not in after and "BAR" not in after and "nothing-" not in after and "random-" not in after
    methods = {labels["method"] for _, labels, _ in samples(after) if "method" in labels}
    assert methods <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}
    assert "other" in methods
    # Two new label sets at most (method "other" on a known and an unmatched path, and their
    # statuses): the exposition grows by a bounded amount, not per request.
    assert len(after) - len(before) < 12_000, (len(before), len(after))


def test_each_worker_reports_its_index(server):
    live, _ = server
    deadline = time.monotonic() + 60
    while True:
        got = samples(scrape(live))
        ready = {labels.get("pid"): v for name, labels, v in got if name == "hashdb_index_ready"}
        lag = [v for name, _, v in got if name == "hashdb_index_lag_changes"]
        # Workers follow the change log once a second: wait for the fixture's writes too.
        if len(ready) == 2 and set(ready.values()) == {1.0} and lag == [0.0] or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert len(ready) == 2 and set(ready.values()) == {1.0}, ready  # one series per live worker
    sizes = {labels["signal"]: v for name, labels, v in got if name == "hashdb_index_entries"}
    assert {"pdq", "phash", "dhash", "vpdq"} <= set(sizes)
    assert [v for name, _, v in got if name == "hashdb_index_lag_changes"] == [0.0]


def test_logged_paths_are_escaped(server):
    live, keys = server
    live.request("GET", "/v1/x%0a127.0.0.1%20forged%20line%00%22", key=keys["consumer"])
    deadline = time.monotonic() + 10
    while "/v1/x" not in live.log.read_text(errors="replace") and time.monotonic() < deadline:
        time.sleep(0.05)
    log = live.log.read_bytes()
    assert b"\x00" not in log
    [line] = [raw for raw in log.decode(errors="replace").splitlines() if "/v1/x" in raw]
    assert "/v1/x%0A127.0.0.1%20forged%20line%00%22 HTTP/1.1" in line
    assert not any(raw.startswith("127.0.0.1 forged") for raw in log.decode(errors="replace").splitlines())


def used_metrics() -> set[str]:
    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    rules = yaml.safe_load((DOCS / "prometheus-alerts.yml").read_text())
    exprs += [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    return {name for expr in exprs for name in re.findall(r"\bhashdb_[a-z0-9_]+", expr)}


def test_every_metric_the_dashboard_and_alerts_use_exists(server):
    live, keys = server
    traffic(live, keys)
    names = {name for name, _, _ in samples(scrape(live))}
    used = used_metrics()
    assert len(used) >= 12
    assert used <= names, sorted(used - names)
    documented = set(re.findall(r"`(hashdb_[a-z0-9_]+)`", (DOCS / "metrics.md").read_text()))
    exported = {re.sub(r"_(total|bucket|sum|count)$", "", n) for n in names if n.startswith("hashdb_")}
    assert {re.sub(r"_total$", "", d) for d in documented} >= exported


def test_a_method_a_path_does_not_take_is_counted_at_that_path(server):
    # Found in trial: `PUT /v1/lookup` (405) was counted under endpoint "unmatched", the label
    # of a path no route serves.
    live, keys = server
    for method, path, label in (("PUT", "/v1/lookup", "/v1/lookup"), ("DELETE", "/v1/stats", "/v1/stats"),
                                ("PUT", "/v1/hashes/12", "/v1/hashes/{id}")):
        assert live.request(method, path, key=keys["consumer"]).status == 405
        # Workers write their counters to shared files: read until this one shows.
        deadline = time.monotonic() + 10
        while True:
            counted = [v for name, labels, v in samples(scrape(live))
                       if name == "hashdb_http_requests_total" and labels.get("endpoint") == label
                       and labels.get("method") == method and labels.get("status") == "405"]
            if counted or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert counted and counted[0] >= 1, (method, path)


def test_refusal_counters_are_there_before_the_first_refusal_and_records_count_by_signal(tmp_path):
    # Found in trial: hashdb_submissions_refused_total appeared only at the first refusal, so an
    # alert on its rate saw nothing (and dashboards needed `or vector(0)`); and the "PDQ index
    # empty" alert fired on a database holding only videos, whose PDQ index is empty by right.
    with serving(tmp_path / "fresh.sqlite", ROLES, workers=2) as (live, keys):
        got = {(name, tuple(sorted(labels.items()))): v for name, labels, v in samples(scrape(live))}
        refused = {labels: v for (name, labels), v in got.items() if name == "hashdb_submissions_refused_total"}
        assert refused[(("reason", "low_quality"),)] == 0 and refused[(("reason", "unknown_label"),)] == 0
        assert all(v == 0 for v in refused.values()) and len(refused) >= 10
        assert not any(name == "hashdb_records_by_signal" for name, _ in got)
        video = {"frames": [{"pdq": random_pdq(random.Random(n)), "quality": 90, "t": float(n)}
                                              for n in range(3)], "labels": ["glorification"]}
        assert live.request("POST", "/v1/hashes", {"items": [video]}, keys["alpha"]).status == 201
        got = {(name, tuple(sorted(labels.items()))): v for name, labels, v in samples(scrape(live))}
        assert got[("hashdb_records_by_signal", (("signal", "vpdq"),))] == 1
        assert ("hashdb_records_by_signal", (("signal", "pdq"),)) not in got
