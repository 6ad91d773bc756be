"""Each change feed entry describes its record as that change left it: a hash its organisation
retracted and shared again under another incident, at another quality, is not described so in
the entries from before (found in trial: the retraction's entry named the incident the record
was shared under afterwards). Votes are the exception the README states: counts when read."""

from __future__ import annotations

import random

import pytest
from partner_helpers import admin_of, feed_docs
from support import INDEX_FACTORY, principal, random_pdq

from hashdb.config import Settings
from hashdb.index.indexset import IndexSet
from hashdb.service import HashDB
from hashdb.types import HashValue, Submission

LABELS = ("glorification",)


@pytest.fixture
def service(each_store):
    service = HashDB(Settings(), each_store, IndexSet(each_store, factory=INDEX_FACTORY))
    service.load_index()
    return service


def share(service, org, value: HashValue, incident: str, labels=LABELS) -> int:
    [result] = service.submit([Submission(f"pdq:{value.hex}", labels, (value,), media_type="image",
                                          incident=incident)], principal(service, org, "contributor"))
    return result.ids[0]


def shared_twice(service) -> tuple[int, str]:
    """Alpha's hash shared under attack-1 at quality 60, voted on, retracted, shared again under
    attack-2 at quality 95 with another label."""
    admin = admin_of(service)
    service.open_incident("attack-1", admin)
    service.open_incident("attack-2", admin)
    hex_value = random_pdq(random.Random(15))
    record_id = share(service, "alpha", HashValue("pdq", hex_value, 60), "attack-1")
    service.feedback(record_id, principal(service, "beta", "contributor"), "agree")
    service.retract(record_id, principal(service, "alpha", "contributor"), "wrong incident")
    again = share(service, "alpha", HashValue("pdq", hex_value, 95), "attack-2", ("attacker_manifesto",))
    assert again == record_id
    return record_id, hex_value


def test_each_entry_carries_the_incident_and_quality_of_its_own_time(service):
    record_id, hex_value = shared_twice(service)
    docs = [d for d in feed_docs(service) if d["id"] == record_id]
    assert [(d["kind"], d["status"], d["labels"], d["incident"], d["quality"], d["media_type"]) for d in docs] == [
        ("add", "active", ["glorification"], "attack-1", 60, "image"),
        ("status", "active", ["glorification"], "attack-1", 60, "image"),  # beta's vote
        ("retract", "retracted", ["glorification"], "attack-1", 60, "image"),
        ("add", "active", ["attacker_manifesto"], "attack-2", 95, "image"),
    ]
    # What never changes is the record's whatever the entry: its hash and when it was first shared.
    assert {(d["hash"], d["created_at"]) for d in docs} == {(hex_value, docs[0]["created_at"])}
    # Later changes go on describing the record as shared again.
    service.relabel(record_id, ["graphic_violence"], principal(service, "alpha", "contributor"))
    last = feed_docs(service)[-1]
    assert (last["kind"], last["incident"], last["quality"]) == ("labels", "attack-2", 95)


def test_changes_logged_before_the_log_kept_details_read_them_from_the_record(tmp_path):
    # A database from before migration m022: its change-log rows have no details, and its feed
    # goes on describing those entries' records as they stand, as it did; changes from then on
    # keep their own.
    import sqlite3

    from hashdb.store.sqlite_store import SQLiteStore

    path = tmp_path / "db.sqlite"
    store = SQLiteStore(path)
    service = HashDB(Settings(), store, IndexSet(store, factory=INDEX_FACTORY))
    service.load_index()
    record_id, _ = shared_twice(service)
    store.close()
    conn = sqlite3.connect(path)
    with conn:
        for column in ("incident", "quality", "media_type"):
            conn.execute(f"ALTER TABLE changes DROP COLUMN {column}")
        conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm022_change_details'")
    conn.close()
    store = SQLiteStore(path)
    try:
        service = HashDB(Settings(), store, IndexSet(store, factory=INDEX_FACTORY))
        service.retract(record_id, principal(service, "alpha", "contributor"), "withdrawn")
        share(service, "alpha", HashValue("pdq", store.get_records([record_id])[record_id].value, 70), "attack-1")
        docs = [(d["kind"], d["incident"], d["quality"]) for d in feed_docs(service) if d["id"] == record_id]
        assert docs == [("add", "attack-1", 70), ("status", "attack-1", 70), ("retract", "attack-1", 70),
                        ("add", "attack-1", 70),  # logged before: the record as it stands
                        ("retract", "attack-2", 95), ("add", "attack-1", 70)]  # logged since: their own
    finally:
        store.close()
