"""The lookup routes' lean adapter (hashdb/api/lean.py) answers exactly what the Flask views
answer: status, headers and body bytes, for good requests and every kind of bad one, with the
same side effects (metrics, key checks). Each request is sent once through the adapter and once
straight to the Flask app behind it."""

from __future__ import annotations

import io
import json
import random

import pytest
from werkzeug.test import Client

from hashdb.api import create_app
from hashdb.service.local import open_database
from hashdb.types import Principal
from serverproc import make_keys
from support import random_pdq

ROLES = {"admin": ("operator", "admin"), "alpha": ("alpha", "contributor"), "consumer": ("gamma", "consumer")}


@pytest.fixture
def lean_app(tmp_path):
    app = create_app({"DB": str(tmp_path / "db.sqlite"), "LOAD_INDEX_IN_BACKGROUND": False, "RATE_LIMIT": 0,
                      "MAX_BATCH": 5, "MAX_CONTENT_LENGTH": 4096, "TESTING": True,
                      "WEBHOOK_INTERVAL": 0, "METRICS_INTERVAL": 0})
    yield app
    app.extensions["hashdb"].close()


@pytest.fixture
def made(lean_app):
    return make_keys(lean_app.config["DB"], ROLES)


@pytest.fixture
def stored(lean_app, made):
    """Two stored PDQs, submitted through the API by the contributor."""
    rng = random.Random(5)
    hashes = [random_pdq(rng) for _ in range(2)]
    reply = lean_app.test_client().post(
        "/v1/hashes", json={"items": [{"signal": "pdq", "hash": h, "quality": 90, "labels": ["glorification"]} for h in hashes]},
        headers={"Authorization": f"Bearer {made['alpha'][0]}"})
    assert reply.status_code == 201, reply.data
    return hashes


def flip(hex_hash: str, bits: int) -> str:
    value = int(hex_hash, 16) ^ ((1 << bits) - 1)
    return f"{value:064x}"


def both(app, counted, method, path, **kwargs):
    """(lean answer, Flask answer), and how many of them reached a Flask lookup view."""
    answers = []
    for wsgi in (app.wsgi_app, app.wsgi_app.inner):
        sent = dict(kwargs)
        if "chunked" in sent:  # a body without a length, as a server passes a chunked one on
            sent["input_stream"] = io.BytesIO(sent.pop("chunked"))
            sent["environ_overrides"] = {"wsgi.input_terminated": True, "HTTP_TRANSFER_ENCODING": "chunked"}
        reply = Client(wsgi).open(path, method=method, **sent)
        answers.append((reply.status, sorted(reply.headers.items()), reply.get_data()))
    return answers


@pytest.fixture
def counted(lean_app):
    """Counts calls of the Flask lookup views, so a test sees which path answered."""
    calls = []
    for endpoint in ("v1.lookup.lookup_one", "v1.lookup.lookup_batch"):
        view = lean_app.view_functions[endpoint]

        def wrapped(*args, _view=view, **kwargs):
            calls.append(1)
            return _view(*args, **kwargs)

        lean_app.view_functions[endpoint] = wrapped
    return calls


def cases(stored, key):
    good = {"Authorization": f"Bearer {key}"}
    near = flip(stored[0], 5)
    body = lambda doc: {"data": json.dumps(doc), "content_type": "application/json", "headers": good}
    item = {"signal": "pdq", "hash": near}
    return [
        ("GET", f"/v1/lookup?signal=pdq&hash={near}", {"headers": good}),
        ("GET", f"/v1/lookup?signal=pdq&hash={stored[1]}&quality=80", {"headers": good}),
        ("GET", f"/v1/lookup?signal=pdq&hash={random_pdq(random.Random(9))}", {"headers": good}),
        ("GET", "/v1/lookup?signal=pdq&hash=zz", {"headers": good}),
        ("GET", "/v1/lookup?signal=nope&hash=00", {"headers": good}),
        ("GET", f"/v1/lookup?signal=pdq&hash={near}&quality=101", {"headers": good}),
        ("GET", f"/v1/lookup?signal=pdq&hash={near}&hash={near}", {"headers": good}),
        ("GET", f"/v1/lookup?signal=pdq&hash={near}&extra=%ff%00", {"headers": good}),
        ("GET", "/v1/lookup?signal=pdq", {"headers": good}),
        ("GET", f"/v1/lookup?signal=pdq&hash={near}", {}),
        ("GET", f"/v1/lookup?signal=pdq&hash={near}", {"headers": {"Authorization": "Basic abc"}}),
        ("GET", f"/v1/lookup?signal=pdq&hash={near}", {"headers": {"Authorization": "Bearer " + "k" * 300}}),
        ("GET", f"/v1/lookup?signal=pdq&hash={near}", {"headers": {"Authorization": "Bearer hdb_nothing_known"}}),
        ("POST", "/v1/lookup", body({"items": [item, {"signal": "pdq", "hash": stored[1], "input": "été ☃"}]})),
        ("POST", "/v1/lookup", body({"items": [item], "thresholds": {"pdq": 2}})),
        ("POST", "/v1/lookup", body({"items": [item] * 6})),
        ("POST", "/v1/lookup", body({"items": []})),
        ("POST", "/v1/lookup", body({"items": [item], "other": 1})),
        ("POST", "/v1/lookup", body([item])),
        ("POST", "/v1/lookup", {"data": '{"items": [], "items": []}', "content_type": "application/json",
                                "headers": good}),
        ("POST", "/v1/lookup", {"data": '{"items": [NaN]}', "content_type": "application/json", "headers": good}),
        ("POST", "/v1/lookup", {"data": b'{"items": "\xff"}', "content_type": "application/json", "headers": good}),
        ("POST", "/v1/lookup", {"data": "[" * 40 + "]" * 40, "content_type": "application/json", "headers": good}),
        ("POST", "/v1/lookup", {"data": "{", "content_type": "application/json", "headers": good}),
        ("POST", "/v1/lookup", {"data": "", "content_type": "application/json", "headers": good}),
        ("POST", "/v1/lookup", {"data": json.dumps({"items": [item]}), "content_type": "text/plain",
                                "headers": good}),
        ("POST", "/v1/lookup", {"data": json.dumps({"items": [item]}), "headers": good}),
        ("POST", "/v1/lookup", {"data": "x" * 5000, "content_type": "application/json", "headers": good}),
        ("POST", "/v1/lookup", {"data": json.dumps({"items": [item]}), "content_type": "application/json"}),
        ("POST", "/v1/lookup", {"chunked": json.dumps({"items": [item]}).encode(), "content_type": "application/json",
                                "headers": good}),
        ("POST", "/v1/lookup", {"chunked": b" " * 5000, "content_type": "application/json", "headers": good}),
    ]


def test_lean_answers_are_the_flask_views_answers(lean_app, made, stored, counted):
    checked = 0
    seen = set()
    for method, path, kwargs in cases(stored, made["consumer"][0]):
        calls = len(counted)
        lean, flask = both(lean_app, counted, method, path, **kwargs)
        assert lean == flask, (method, path)
        # The Flask view ran once (for the second answer), so the first was the adapter's.
        assert len(counted) - calls <= 1
        checked += 1
        seen.add(lean[0])
    assert checked == len(cases(stored, made["consumer"][0]))
    # The cases reach every kind of answer: found, refused input, no key, body too large, wrong type.
    assert {"200 OK", "400 BAD REQUEST", "401 UNAUTHORIZED", "413 REQUEST ENTITY TOO LARGE",
            "415 UNSUPPORTED MEDIA TYPE"} <= seen, seen


def test_lean_adapter_takes_the_lookup_routes_and_nothing_else(lean_app, made, stored, counted):
    good = {"Authorization": f"Bearer {made['consumer'][0]}"}
    client = Client(lean_app.wsgi_app)
    assert client.get(f"/v1/lookup?signal=pdq&hash={stored[0]}", headers=good).json["matched"] is True
    assert client.post("/v1/lookup", json={"items": [{"signal": "pdq", "hash": stored[0]}]},
                       headers=good).json["results"][0]["matched"] is True
    assert counted == []
    # Other methods and paths are Flask's: a HEAD reaches the view, a PUT is Flask's 405.
    assert client.head(f"/v1/lookup?signal=pdq&hash={stored[0]}", headers=good).status_code == 200
    assert counted == [1]
    assert client.put("/v1/lookup", headers=good).status_code == 405
    assert client.get("/v1/lookup/", headers=good).status_code == 404


def test_lean_lookups_are_counted_in_the_metrics(lean_app, made, stored):
    registry = lean_app.extensions["hashdb_metrics"].registry
    def value(name, **labels):
        return registry.get_sample_value(name, labels) or 0

    def counts():
        return (value("hashdb_http_requests_total", endpoint="/v1/lookup", method="GET", status="200"),
                value("hashdb_http_requests_total", endpoint="/v1/lookup", method="GET", status="401"),
                value("hashdb_lookup_items_total"), value("hashdb_lookup_matched_items_total"),
                value("hashdb_lookups_by_signal_total", signal="pdq"), value("hashdb_matches_by_signal_total", signal="pdq"))

    good = {"Authorization": f"Bearer {made['consumer'][0]}"}
    client = Client(lean_app.wsgi_app)
    before = counts()
    assert client.get(f"/v1/lookup?signal=pdq&hash={stored[0]}", headers=good).status_code == 200
    assert client.get(f"/v1/lookup?signal=pdq&hash={stored[0]}").status_code == 401
    miss = {"signal": "pdq", "hash": random_pdq(random.Random(11))}
    assert client.post("/v1/lookup", json={"items": [{"signal": "pdq", "hash": stored[1]}, miss, miss]},
                       headers=good).status_code == 200
    assert [b - a for a, b in zip(before, counts())] == [1, 1, 4, 2, 4, 2]
    assert value("hashdb_http_request_duration_seconds_count", endpoint="/v1/lookup", method="GET") >= 2


def test_a_revoked_key_stops_working_on_the_lean_path_at_once(lean_app, made, stored):
    key, key_id = made["consumer"]
    client = Client(lean_app.wsgi_app)
    path = f"/v1/lookup?signal=pdq&hash={stored[0]}"
    assert client.get(path, headers={"Authorization": f"Bearer {key}"}).status_code == 200
    elsewhere = open_database(lean_app.config["DB"])
    try:
        operator = elsewhere.store.ensure_org("operator")
        elsewhere.revoke_key(key_id, Principal(operator.id, operator.name, "admin"))
    finally:
        elsewhere.store.close()
    reply = client.get(path, headers={"Authorization": f"Bearer {key}"})
    assert reply.status_code == 401 and "revoked" in reply.json["error"]["message"]
