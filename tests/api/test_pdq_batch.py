"""The common batch (plain PDQ hashes) is answered by its own path (bodies.pdq_batch,
HashDB.lookup_pdqs) with exactly the answers of the general one (bodies.lookup_request,
HashDB.lookup): the same status, headers and body bytes, the same metrics and the same spike
counts, for random batches of matches, misses, duplicates, other kinds of items and malformed
ones. Each request is sent twice through the app: once as served, once with the common-batch
path turned off."""

from __future__ import annotations

import json
import random

import pytest
from werkzeug.test import Client

from hashdb.api import bodies, create_app
from hashdb.types import PdqBatch
from serverproc import make_keys
from support import flip, principal, random_pdq

ROLES = {"admin": ("operator", "admin"), "alpha": ("alpha", "contributor"), "beta": ("beta", "contributor"),
         "consumer": ("gamma", "consumer"), "partner": ("delta", "partner")}
MAX_BATCH = 12
LABELS = (["glorification"], ["recruitment_instruction", "glorification"], ["graphic_violence"])


@pytest.fixture
def batch_app(tmp_path):
    app = create_app({"DB": str(tmp_path / "db.sqlite"), "LOAD_INDEX_IN_BACKGROUND": False, "RATE_LIMIT": 0,
                      "MAX_BATCH": MAX_BATCH, "TESTING": True, "WEBHOOK_INTERVAL": 0, "METRICS_INTERVAL": 0})
    yield app
    app.extensions["hashdb"].close()


@pytest.fixture
def made(batch_app):
    return {name: key for name, (key, _) in make_keys(batch_app.config["DB"], ROLES).items()}


def send(client, key, doc, path="/v1/lookup"):
    data = doc if isinstance(doc, (str, bytes)) else json.dumps(doc)
    return client.post(path, data=data, content_type="application/json", headers={"Authorization": f"Bearer {key}"})


@pytest.fixture
def stored(batch_app, made):
    """PDQs of every kind a lookup reports: shared by one organisation or two (support), with
    votes, disputed, quarantined, retracted, with derived hashes (a match through `via`: a
    region, and an enlarged copy, which a plain PDQ matches as a whole image that is not small)."""
    rng = random.Random(14)
    client = Client(batch_app.wsgi_app)
    hashes = [random_pdq(rng) for _ in range(MAX_BATCH)]
    items = []
    for n, value in enumerate(hashes):
        item = {"signal": "pdq", "hash": value, "quality": 60 + n, "labels": LABELS[n % len(LABELS)]}
        if n % 4 in (1, 3):  # a region, or a small picture's enlarged copy
            via = {"via": "trimmed", "share": 0.7} if n % 4 == 1 else {"via": "enlarged"}
            item = {"hashes": [{"signal": "pdq", "hash": value, "quality": 90}], "labels": ["glorification"],
                    "derived": [{**via, "pdq": random_pdq(rng), "quality": 80}]}
        items.append(item)
    reply = send(client, made["alpha"], {"items": items}, "/v1/hashes")
    assert reply.status_code == 201, reply.data
    ids = [r["ids"][0] for r in reply.json["results"]]
    derived = [item["derived"][0]["pdq"] for item in items if "derived" in item]
    # The same hash from a second organisation: support 2 on both records.
    assert send(client, made["beta"], {"items": [{"signal": "pdq", "hash": hashes[0], "quality": 70, "labels": ["glorification"]}]},
                "/v1/hashes").status_code == 201
    for record, verdict, who in [(ids[2], "agree", "beta"), (ids[2], "disagree", "partner"),
                                 (ids[3], "disagree", "beta"), (ids[3], "disagree", "partner"),
                                 (ids[3], "false_positive", "consumer")]:
        reply = send(client, made[who], {"verdict": verdict}, f"/v1/hashes/{record}/feedback")
        assert reply.status_code == 200, reply.data
    service = batch_app.extensions["hashdb"].service()
    service.quarantine(ids[4], principal(service, "operator", "admin"), "held for review")
    service.retract(ids[5], principal(service, "alpha", "contributor"), "mistake")
    return hashes, derived


def plain(rng, hashes, derived):
    """A plain PDQ item the common path takes: near a stored hash or a derived one, or a miss."""
    kind = rng.random()
    if kind < 0.45:
        value = flip(rng.choice(hashes), rng.choice([0, 0, 3, 12, 30, 31, 32, 40]), rng)
    elif kind < 0.55:
        value = flip(rng.choice(derived), rng.choice([0, 5, 31]), rng)
    else:
        value = random_pdq(rng)
    item = {"signal": "pdq", "hash": value.upper() if rng.random() < 0.1 else value}
    if rng.random() < 0.25:
        item["quality"] = rng.choice([0, 49, 50, 100])
    if rng.random() < 0.2:
        item["input"] = rng.choice(["photo.jpg", "", "a" * 1024, "x:y"])
    return item


def odd(rng, hashes):
    """An item the common path leaves to the general one: another kind, or malformed."""
    value = rng.choice(hashes)
    return rng.choice([
        {"signal": "phash", "hash": "8f" * 8},
        {"signal": "md5", "hash": "0" * 32},
        {"hashes": [{"signal": "pdq", "hash": value}], "derived": [{"via": "deskewed", "pdq": flip(value, 4, rng),
                                                                    "share": 0.9}]},
        {"hashes": [{"signal": "pdq", "hash": value}, {"signal": "pdq", "hash": flip(value, 9, rng)}]},
        {"signal": "pdq", "hash": value, "input": "été ☃"},
        {"signal": "pdq", "hash": value[:-1]},
        {"signal": "pdq", "hash": value[:-1] + "g"},
        {"signal": "pdq", "hash": " " + value[1:]},
        {"signal": "pdq", "hash": value[:-1] + "٣"},
        {"signal": "pdq", "hash": 7},
        {"signal": "pdq", "hash": None},
        {"signal": "pdq", "hash": value, "quality": 101},
        {"signal": "pdq", "hash": value, "quality": True},
        {"signal": "pdq", "hash": value, "quality": "80"},
        {"signal": "pdq", "hash": value, "quality": 50.0},
        {"signal": "pdq", "hash": value, "quality": None},
        {"signal": "pdq", "hash": value, "input": None},
        {"signal": "pdq", "hash": value, "input": 3},
        {"signal": "pdq", "hash": value, "input": "a" * 1025},
        {"signal": "pdq", "hash": value, "input": "a\x00b"},
        {"signal": "pdq", "hash": value, "labels": ["glorification"]},
        {"signal": "PDQ", "hash": value},
        {"signal": None, "hash": value},
        {"hash": value},
        {"signal": "pdq"},
        {},
        [value],
        value,
    ])


def document(rng, hashes, derived):
    size = rng.choice([1, 2, 5, MAX_BATCH, MAX_BATCH])
    items = [plain(rng, hashes, derived) for _ in range(size)]
    if rng.random() < 0.3:  # duplicates
        items[rng.randrange(size)] = dict(items[0])
    if rng.random() < 0.3:
        items[rng.randrange(size)] = odd(rng, hashes)
    doc: object = {"items": items}
    roll = rng.random()
    if roll < 0.15:
        doc = {"items": items, "thresholds": {"pdq": rng.choice([0, 8, 31])}}
    elif roll < 0.25:
        doc = {"items": items, "thresholds": rng.choice([{"pdq": 32}, {"pdq": -1}, {"pdq": True}, {"vpdq": 4},
                                                          {"zz": 1}, [], None, {}])}
    elif roll < 0.3:
        doc = rng.choice([{"items": items * 3}, {"items": []}, {"items": None}, {"items": items, "more": 1},
                          {"items": {"0": items[0]}}, items])
    return doc


def test_the_common_batch_answers_as_the_general_path(batch_app, made, stored, monkeypatch):
    hashes, derived = stored
    service = batch_app.extensions["hashdb"].service()
    registry = batch_app.extensions["hashdb_metrics"].registry
    client = Client(batch_app.wsgi_app)
    counted: list[tuple[list[int], int]] = []  # what the spike rule was given to count
    add = service.spike_rule.counter.add

    def count(ids, org):
        ids = sorted(ids)
        counted.append((ids, org))
        add(ids, org)

    monkeypatch.setattr(service.spike_rule.counter, "add", count)
    answered = []  # requests the common path answered
    lookup_pdqs = service.lookup_pdqs

    def spy(*args, **kwargs):
        answered.append(1)
        return lookup_pdqs(*args, **kwargs)

    monkeypatch.setattr(service, "lookup_pdqs", spy)
    real = bodies.pdq_batch

    def metrics():
        return [(s.name, tuple(sorted(s.labels.items())), s.value) for m in registry.collect() for s in m.samples
                if s.name.startswith("hashdb_lookup") or s.name.startswith("hashdb_matches")]

    def answer(key, doc, common):
        before, calls = metrics(), len(counted)
        monkeypatch.setattr(bodies, "pdq_batch", real if common else lambda doc, limit: None)
        reply = send(client, key, doc)
        monkeypatch.setattr(bodies, "pdq_batch", real)
        after = metrics()
        changed = [(a[0], a[1], b[2] - a[2]) for a, b in zip(before, after) if a != b]
        return reply.status, sorted(reply.headers.items()), reply.get_data(), changed, counted[calls:]

    rng = random.Random(2026)
    statuses: dict[str, int] = {}
    common = flags = matched = vias = 0
    for n in range(160):
        doc = document(rng, hashes, derived)
        key = made[rng.choice(["consumer", "consumer", "admin", "alpha", "partner"])]
        taken = len(answered)
        fast = answer(key, doc, True)
        took_common = len(answered) > taken
        general = answer(key, doc, False)
        assert fast == general, (n, doc)
        statuses[fast[0]] = statuses.get(fast[0], 0) + 1
        common += took_common
        if fast[0] == "200 OK":
            results = json.loads(fast[2])["results"]
            flags += sum("flags" in r for r in results)
            matched += sum(r["matched"] for r in results)
            vias += sum("via" in m for r in results for m in r["matches"])
    # Every kind of answer was reached, and the common path answered most requests.
    assert statuses.keys() >= {"200 OK", "400 BAD REQUEST"}, statuses
    assert common > 80 and flags and matched > 100 and vias, (common, flags, matched, vias)


def test_the_common_batch_is_recognised_only_when_every_item_is_a_plain_pdq(made):
    value = "ab" * 32
    assert bodies.pdq_batch({"items": [{"signal": "pdq", "hash": value.upper(), "quality": 7},
                                       {"signal": "pdq", "hash": value, "input": "x"}], "thresholds": {"pdq": 3}},
                            5) == (PdqBatch(("pdq:" + value.upper(), "x"), (value, value), (7, None)), {"pdq": 3})
    for doc in [{"items": [{"signal": "pdq", "hash": value}, {"signal": "phash", "hash": "0" * 16}]},
                {"items": [{"signal": "pdq", "hash": value}] * 6},
                {"items": [{"signal": "pdq", "hash": value[:-1] + "x"}]},
                {"items": [{"signal": "pdq", "hash": value, "quality": False}]},
                {"items": [{"signal": "pdq", "hash": value}], "thresholds": None}]:
        assert bodies.pdq_batch(doc, 5) is None, doc
