"""Counts by signal, status, month and label (GET /v1/stats, /metrics) are kept as records are
written, so reading them never scans the records table; they always equal a full scan."""

from __future__ import annotations

import json
import random
import sqlite3
from collections import Counter
from pathlib import Path

from store_helpers import actor, pdq, record, video

from hashdb.store.sqlite_store import SQLiteStore


def full_scan(store) -> dict[str, dict[str, int]]:
    """The counts computed here, in Python, from every row: the oracle."""
    rows = store._rows("SELECT signal, status, created_at, labels FROM records")
    labels: Counter[str] = Counter()
    for r in rows:
        if r["status"] != "retracted":
            labels.update(json.loads(r["labels"]))
    return {
        "signal": dict(sorted(Counter(r["signal"] for r in rows).items())),
        "status": dict(sorted(Counter(r["status"] for r in rows).items())),
        "month": dict(sorted(Counter(r["created_at"][:7] for r in rows).items())),
        "label": dict(sorted(labels.items())),
    }


def test_counts_follow_every_kind_of_write(store) -> None:
    rng = random.Random(12)
    alice, bob = actor(store, "alice"), actor(store, "bob")
    assert store.counts() == {"signal": {}, "status": {}, "month": {}, "label": {}}
    ids: list[int] = []
    batch = [record(pdq(n), labels=tuple(rng.sample(["terrorism", "glorification", "recruitment"], 2)))
             for n in range(1, 40)]
    batch += [record(f"{n:032x}", signal="md5", labels=("glorification",)) for n in range(1, 10)]
    batch += [video(pdq(1000 + n), [pdq(2000 + n), pdq(3000 + n)]) for n in range(3)]
    ids += [o.id for o in store.add_records(batch, alice)]
    store.add_records(batch[:5], alice)  # duplicates: nothing new to count
    ids += [o.id for o in store.add_records(batch[:5], bob)]  # another organisation: new records
    assert store.counts() == full_scan(store)
    for record_id in rng.sample(ids, 12):
        store.set_status(record_id, rng.choice(["retracted", "quarantined", "disputed", "active"]), alice, "x")
        assert store.counts() == full_scan(store)
    for record_id in rng.sample(ids, 8):
        store.set_labels(record_id, rng.sample(["terrorism", "glorification", "recruitment"], rng.randint(1, 3)),
                         alice)
    assert store.counts() == full_scan(store)
    counts = store.counts()
    assert sum(counts["signal"].values()) == len(set(ids)) == sum(counts["status"].values())
    assert set(counts["signal"]) == {"pdq", "md5", "vpdq"}


def test_reading_the_counts_never_touches_the_records_table(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "db.sqlite")
    try:
        store.add_records([record(pdq(n)) for n in range(1, 20)], actor(store, "alice"))
        read: set[str] = set()

        def watch(action: int, table: str | None, *_: object) -> int:
            if action == sqlite3.SQLITE_READ and table:
                read.add(table)
            return sqlite3.SQLITE_OK

        with store._read() as conn:  # the connection this thread's reads go through
            conn.set_authorizer(watch)
            try:
                counts = store.counts()
            finally:
                conn.set_authorizer(None)
        assert counts["signal"] == {"pdq": 19}
        assert read and "records" not in read
    finally:
        store.close()


def test_an_existing_database_gets_its_counts_when_migrated(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    store = SQLiteStore(path)
    alice = actor(store, "alice")
    ids = [o.id for o in store.add_records([record(pdq(n), labels=("terrorism", "recruitment")) for n in range(1, 30)],
                                           alice)]
    store.set_status(ids[0], "retracted", alice, "x")
    expected = full_scan(store)
    store.close()
    # Back to the schema before the counts existed, records kept.
    conn = sqlite3.connect(path)
    with conn:
        for trigger in ("record_counts_insert", "record_counts_update", "record_counts_delete"):
            conn.execute(f"DROP TRIGGER {trigger}")
        conn.execute("DROP TABLE record_counts")
        conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm006_record_counts'")
    conn.close()
    store = SQLiteStore(path)
    try:
        assert store.counts() == expected
        assert expected["label"] == {"recruitment": 28, "terrorism": 28}
    finally:
        store.close()
