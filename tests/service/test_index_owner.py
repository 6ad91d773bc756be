"""An index snapshot answers only for the database history it was saved from: beside a replaced
database, another database's copied folder or an older backup put back, it is rebuilt, never
replayed onto (which would answer with its hashes under this database's record ids)."""

from __future__ import annotations

import json
import logging
import random
import shutil
from pathlib import Path

from hashdb.config import Settings
from hashdb.index.indexset import INDEXED_SIGNALS, IndexSet
from hashdb.service import HashDB
from hashdb.store.sqlite_store import SQLiteStore
from hashdb.types import HashValue, Query, Submission

from support import INDEX_FACTORY, flip, principal, random_pdq

LABELS = ("glorification",)


def open_db(path: Path) -> HashDB:
    store = SQLiteStore(path)
    db = HashDB(Settings(), store, IndexSet(store, path.with_name(path.name + ".index"), factory=INDEX_FACTORY))
    db.load_index()
    return db


def submit(db: HashDB, values: list[str]) -> list[int]:
    alice = principal(db, "alice", "contributor")
    results = db.submit([Submission(v, LABELS, (HashValue("pdq", v, 90),)) for v in values], alice)
    return [r.ids[0] for r in results]


def matched_ids(db: HashDB, value: str) -> list[int]:
    reader = principal(db, "bob", "consumer")
    [result] = db.lookup([Query("q", (HashValue("pdq", value),))], reader)
    return [m.id for m in result.matches]


def remove_database(path: Path) -> None:
    for name in (path.name, path.name + "-wal", path.name + "-shm"):
        (path.parent / name).unlink(missing_ok=True)


def test_a_replaced_database_rebuilds_the_snapshot_left_beside_it(tmp_path, caplog):
    rng = random.Random(21)
    old, new = random_pdq(rng), random_pdq(rng)
    path = tmp_path / "re.sqlite"
    db = open_db(path)
    submit(db, [old])
    db.rebuild_index()  # the snapshot of the first database
    db.store.close()
    remove_database(path)  # the .index folder stays

    db = open_db(path)
    [new_id] = submit(db, [new])
    db.store.close()
    with caplog.at_level(logging.WARNING, logger="hashdb.index.indexset"):
        db = open_db(path)
    # The old snapshot held `old` under the id `new` has now: replayed, `old` matched as `new`.
    assert matched_ids(db, flip(old, 2, rng)) == []
    assert matched_ids(db, flip(new, 2, rng)) == [new_id]
    assert "saved from another database; rebuilding" in caplog.text


def test_another_databases_index_folder_copied_beside_a_database_is_rebuilt(tmp_path):
    rng = random.Random(22)
    theirs, ours = random_pdq(rng), random_pdq(rng)
    a, b = tmp_path / "a.sqlite", tmp_path / "b.sqlite"
    db_a = open_db(a)
    submit(db_a, [theirs])
    db_a.rebuild_index()
    db_a.store.close()
    db_b = open_db(b)
    [our_id] = submit(db_b, [ours])
    db_b.store.close()
    shutil.rmtree(tmp_path / "b.sqlite.index")
    shutil.copytree(tmp_path / "a.sqlite.index", tmp_path / "b.sqlite.index")

    db_b = open_db(b)
    assert matched_ids(db_b, theirs) == []
    assert matched_ids(db_b, ours) == [our_id]


def test_an_older_backup_put_back_rebuilds_a_snapshot_of_its_later_history(tmp_path, caplog):
    # The backup's change log has the snapshot's sequence once it has written as much again,
    # but not the same changes: only their marks tell the two histories apart.
    rng = random.Random(23)
    first, later, after = random_pdq(rng), random_pdq(rng), random_pdq(rng)
    path = tmp_path / "db.sqlite"
    db = open_db(path)
    submit(db, [first])
    db.store.close()
    shutil.copy(path, tmp_path / "backup.sqlite")
    db = open_db(path)
    submit(db, [later])
    db.rebuild_index()  # covers `later`
    db.store.close()
    remove_database(path)
    shutil.copy(tmp_path / "backup.sqlite", path)
    db = open_db(path)
    [after_id] = submit(db, [after])  # the id and sequence `later` had
    db.store.close()

    with caplog.at_level(logging.WARNING, logger="hashdb.index.indexset"):
        db = open_db(path)
    assert matched_ids(db, later) == []
    assert matched_ids(db, after) == [after_id]
    assert "covers a history this database does not have" in caplog.text


def test_the_databases_own_snapshot_is_loaded_and_a_copy_of_the_database_may_use_it(tmp_path, caplog):
    rng = random.Random(24)
    value, late = random_pdq(rng), random_pdq(rng)
    path = tmp_path / "db.sqlite"
    db = open_db(path)
    [value_id] = submit(db, [value])
    db.rebuild_index()
    db.store.close()
    # A copy of the file (a backup, as new as the snapshot) is the same database.
    shutil.copy(path, tmp_path / "copy.sqlite")
    shutil.copytree(tmp_path / "db.sqlite.index", tmp_path / "copy.sqlite.index")
    with caplog.at_level(logging.WARNING, logger="hashdb.index.indexset"):
        db = open_db(path)
        [late_id] = submit(db, [late])
        copy = open_db(tmp_path / "copy.sqlite")
    assert "rebuilding" not in caplog.text
    assert matched_ids(db, value) == [value_id] and matched_ids(db, late) == [late_id]
    assert matched_ids(copy, value) == [value_id] and matched_ids(copy, late) == []


def test_a_snapshot_that_does_not_name_its_database_is_rebuilt(tmp_path, caplog):
    # Saved before snapshots recorded their database: which one it was cannot be known.
    path = tmp_path / "db.sqlite"
    db = open_db(path)
    submit(db, [random_pdq(random.Random(25))])
    db.rebuild_index()
    db.store.close()
    for signal in INDEXED_SIGNALS:
        manifest = tmp_path / "db.sqlite.index" / f"{signal}.faiss"
        body = json.loads(manifest.read_text())
        del body["owner"]
        manifest.write_text(json.dumps(body))
    with caplog.at_level(logging.WARNING, logger="hashdb.index.indexset"):
        open_db(path)
    assert "does not say which database it was saved from; rebuilding" in caplog.text
