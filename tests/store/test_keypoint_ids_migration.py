"""A database made before keypoint ids were kept (migration m019) keeps its keypoint rows, ids
and all, and from then on never gives an id again."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from store_helpers import actor, pdq, record

from hashdb.store.sqlite_store import SQLiteStore


def test_an_existing_database_keeps_its_keypoint_rows_and_ids_from_then_on(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    store = SQLiteStore(path)
    acme = actor(store, "Acme")
    ids = [o.id for o in store.add_records([record(pdq(n), keypoints=bytes([n]) * 90) for n in (1, 2, 3)], acme)]
    rows = store.keypoint_rows(0, 10)
    store.close()
    # Back to m018's table: ids from the rowid, the highest given again once deleted.
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("CREATE TABLE plain (id INTEGER PRIMARY KEY, record_id INTEGER NOT NULL REFERENCES records(id),"
                     " data BLOB NOT NULL)")
        conn.execute("INSERT INTO plain SELECT id, record_id, data FROM image_keypoints")
        conn.execute("DROP TABLE image_keypoints")
        conn.execute("ALTER TABLE plain RENAME TO image_keypoints")
        conn.execute("CREATE UNIQUE INDEX image_keypoints_record ON image_keypoints (record_id)")
        conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm019_keypoint_ids_kept'")
    conn.close()
    store = SQLiteStore(path)
    try:
        assert store.keypoint_rows(0, 10) == rows
        assert store.keypoints_of(ids) == {i: bytes([n]) * 90 for i, n in zip(ids, (1, 2, 3))}
        store.set_status(ids[-1], "retracted", acme)
        (added,) = (o.id for o in store.add_records([record(pdq(4), keypoints=b"\x04" * 90)], acme))
        assert [(r, d) for _, r, d in store.keypoint_rows(rows[-1][0], 10)] == [(added, b"\x04" * 90)]
    finally:
        store.close()
