"""The keypoint index's snapshot beside the database: a later lookup loads it and reads only the
keypoint rows stored since; one of another database, of another history of this one, or damaged
is rebuilt from the store, never used; what a snapshot holds of a record retracted or held back
since never matches; HASHDB_KEYPOINTS=0 and a database without keypoints write none."""

from __future__ import annotations

import json
import logging
import shutil
import zlib
from pathlib import Path

import pytest
from PIL import Image

from hashdb.config import Settings
from hashdb.index._files import read_manifest
from hashdb.index.indexset import IndexSet
from hashdb.service import HashDB
from hashdb.service import keypoint_matching, keypoint_snapshot
from hashdb.store.sqlite_store import SQLiteStore
from hashdb.types import HashValue, Submission

from support import INDEX_FACTORY, principal

LABELS = ("glorification",)
MEDIA = Path(__file__).resolve().parents[2] / "fixtures" / "media"
LOGGER = "hashdb.service.keypoint_snapshot"


class ReadingStore(SQLiteStore):
    """The SQLite store, noting where each read of keypoint rows started (0: from the first)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.reads: list[int] = []

    def keypoint_rows(self, after: int, limit: int) -> list[tuple[int, int, bytes]]:
        if limit > 1:  # not the snapshot's check of the one row it covers
            self.reads.append(after)
        return super().keypoint_rows(after, limit)


def open_db(path: Path, settings: Settings | None = None) -> HashDB:
    store = ReadingStore(path)
    db = HashDB(settings or Settings(), store, IndexSet(store, folder(path), factory=INDEX_FACTORY),
                server_secret=b"s" * 32)
    db.load_index()
    return db


def folder(path: Path) -> Path:
    return path.with_name(path.name + ".index")


def snapshot(path: Path) -> Path:
    return folder(path) / keypoint_snapshot.FILE_NAME


def submit(db: HashDB, name: str) -> list[int]:
    alice = principal(db, "alice", "contributor")
    [result] = db.submit([db.submission_for(db.hash_file(MEDIA / name), LABELS)], alice)
    return list(result.ids)


def aligned(db: HashDB, name: str, tmp_path: Path, role: str = "consumer") -> list[int]:
    """Records a crop of the fixture `name` (the right 80 %, bottom 80 %: no PDQ of the picture
    finds it) matches through its keypoints."""
    photo = Image.open(MEDIA / name).convert("RGB")
    width, height = photo.size
    crop = tmp_path / f"crop-{Path(name).stem}.jpg"
    photo.crop((0, round(0.2 * height), round(0.8 * width), height)).save(crop, quality=90)
    [found] = db.lookup([db.query_for(db.hash_file(crop, dihedral=True))], principal(db, "bob", role))
    return [m.id for m in found.matches if m.via == "aligned"]


def pdq_id(db: HashDB, ids: list[int]) -> int:
    return next(r.id for r in db.store.get_records(ids).values() if r.signal == "pdq")


def test_a_lookup_loads_the_snapshot_and_reads_only_the_rows_stored_since(tmp_path):
    path = tmp_path / "db.sqlite"
    first = open_db(path)
    chelsea = pdq_id(first, submit(first, "chelsea.jpg"))
    assert aligned(first, "chelsea.jpg", tmp_path) == [chelsea]  # no snapshot yet: built, then saved
    assert read_manifest(snapshot(path), ("keypoints",)).covers_seq == 1
    coffee = pdq_id(first, submit(first, "coffee.jpg"))  # keypoint row 2, after the snapshot
    first.store.close()

    later = open_db(path)
    assert aligned(later, "coffee.jpg", tmp_path) == [coffee]
    assert aligned(later, "chelsea.jpg", tmp_path) == [chelsea]
    assert min(later.store.reads) == 1  # from the snapshot's row on, never the whole table
    # One row past it is no reason to write it again.
    assert read_manifest(snapshot(path), ("keypoints",)).covers_seq == 1


def test_a_load_that_adds_many_rows_saves_the_snapshot_again(tmp_path, monkeypatch):
    path = tmp_path / "db.sqlite"
    first = open_db(path)
    submit(first, "chelsea.jpg")
    aligned(first, "chelsea.jpg", tmp_path)
    submit(first, "coffee.jpg")
    first.store.close()
    monkeypatch.setattr(keypoint_matching, "SAVE_AFTER_ADDING", 0)
    later = open_db(path)
    aligned(later, "coffee.jpg", tmp_path)
    assert read_manifest(snapshot(path), ("keypoints",)).covers_seq == 2


def test_another_databases_snapshot_is_rebuilt_never_used(tmp_path, caplog):
    theirs, ours = tmp_path / "a.sqlite", tmp_path / "b.sqlite"
    a = open_db(theirs)
    submit(a, "chelsea.jpg")
    aligned(a, "chelsea.jpg", tmp_path)  # a's snapshot: its keypoint row 1, record 3
    a.store.close()
    b = open_db(ours)
    coffee = pdq_id(b, submit(b, "coffee.jpg"))  # b's keypoint row 1, record 3 too
    b.store.close()
    shutil.rmtree(folder(ours))
    shutil.copytree(folder(theirs), folder(ours))

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        b = open_db(ours)
        # Used, a's snapshot would stand for b's row 1: coffee's keypoints never indexed.
        assert aligned(b, "coffee.jpg", tmp_path) == [coffee]
        assert aligned(b, "chelsea.jpg", tmp_path) == []
    assert "was saved from another database; rebuilding" in caplog.text
    assert read_manifest(snapshot(ours), ("keypoints",)).owner.startswith(b.store.database_id() + "/")


def restore(path: Path, backup: Path) -> None:
    for name in (path.name + "-wal", path.name + "-shm"):
        (path.parent / name).unlink(missing_ok=True)
    shutil.copyfile(backup, path)


@pytest.mark.parametrize(("how", "row", "why"), [
    ("retracted", 3, "was saved up to keypoint row 2, which this database does not hold (retracted since"),
    ("restored", 2, "covers a history this database does not have"),
])
def test_a_snapshot_whose_last_row_is_another_now_is_rebuilt(tmp_path, caplog, how, row, why):
    """Its last row retracted (the next row stored takes a new id), or an older backup put back
    that has stored another row under that id since: the same database, not the same rows."""
    path, backup = tmp_path / "db.sqlite", tmp_path / "backup.sqlite"
    db = open_db(path)
    submit(db, "chelsea.jpg")
    db.store.close()
    shutil.copyfile(path, backup)  # closed: the file is the whole database
    db = open_db(path)
    coffee = submit(db, "coffee.jpg")
    aligned(db, "coffee.jpg", tmp_path)  # the snapshot holds keypoint row 2: coffee's
    if how == "retracted":
        for record_id in coffee:
            db.retract(record_id, principal(db, "alice", "contributor"))
    db.store.close()
    if how == "restored":
        restore(path, backup)
    db = open_db(path)
    astronaut = pdq_id(db, submit(db, "astronaut.jpg"))
    assert db.store.keypoint_rows(1, 10)[0][:2] == (row, astronaut)
    db.store.close()

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        db = open_db(path)
        assert aligned(db, "astronaut.jpg", tmp_path) == [astronaut]
    assert why in caplog.text


def damage(path: Path, what: str) -> None:
    files = read_manifest(path, ("keypoints",)).files
    if what == "manifest":
        path.write_text(path.read_text()[:50])
    elif what == "half-written":  # killed before its manifest: data files and a temporary one
        for name in files.values():
            shutil.copyfile(path.parent / name, path.parent / name.replace(name.split(".")[2], "0123456789abcdef"))
        (path.parent / f".{path.name}.0123456789abcdef.tmp").write_text("{")
        for name in files.values():
            (path.parent / name).unlink()
        path.unlink()
    elif what == "no checksums":  # as saved before they were kept
        body = json.loads(path.read_text())
        body["params"] = {k: v for k, v in body["params"].items() if not k.startswith("crc32_")}
        path.write_text(json.dumps(body))
    elif what.startswith("changed "):  # bytes changed in place, the length kept
        data = path.parent / files[what.split()[1]]
        body = bytearray(data.read_bytes())
        middle = len(body) // 2
        body[middle:middle + 64] = bytes(b ^ 0x5A for b in body[middle:middle + 64])
        data.write_bytes(bytes(body))
    else:
        data = path.parent / files[what]
        data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])


@pytest.mark.parametrize("what", ["manifest", "faiss", "codes", "owners", "half-written",
                                  "changed faiss", "changed owners", "changed codes", "no checksums"])
def test_a_damaged_or_half_written_snapshot_is_rebuilt(tmp_path, caplog, what):
    path = tmp_path / "db.sqlite"
    db = open_db(path)
    chelsea = pdq_id(db, submit(db, "chelsea.jpg"))
    aligned(db, "chelsea.jpg", tmp_path)
    db.store.close()
    damage(snapshot(path), what)

    with caplog.at_level(logging.INFO, logger=LOGGER):
        db = open_db(path)
        assert aligned(db, "chelsea.jpg", tmp_path) == [chelsea]
    assert min(db.store.reads) == 0  # rebuilt from the store
    if what == "half-written":
        assert "removed 4 files of an unfinished keypoint index save" in caplog.text
    elif what.startswith("changed "):
        assert "does not match its checksum); rebuilding it from the store" in caplog.text
    elif what == "no checksums":
        assert "has no checksums (an earlier hashdb saved it)); rebuilding it from the store" in caplog.text
    else:
        assert "damaged" in caplog.text and "rebuilding it from the store" in caplog.text
        assert "; rebuild it" not in caplog.text  # one remedy, said once
    # Saved whole again, with nothing of the damaged one left beside it.
    manifest = read_manifest(snapshot(path), ("keypoints",))
    left = {p.name for p in folder(path).glob("*keypoints.faiss*")}
    assert left == {keypoint_snapshot.FILE_NAME, ".keypoints.faiss.lock", *manifest.files.values()}
    db.store.close()
    assert aligned(open_db(path), "chelsea.jpg", tmp_path) == [chelsea]


def test_a_snapshot_damaged_inside_faiss_is_rebuilt_at_its_first_search(tmp_path, caplog, monkeypatch):
    """A FAISS file that reads as whole but names descriptors the snapshot does not hold (its
    ids changed in place, which no size or manifest check sees): rebuilt, not a traceback."""
    import faiss
    import numpy as np

    from hashdb.index import keypoints as keypoint_index

    monkeypatch.setattr(keypoint_index, "FLAT_MAX", 10)  # an inverted file, whose ids are stored
    path = tmp_path / "db.sqlite"
    db = open_db(path)
    chelsea = pdq_id(db, submit(db, "chelsea.jpg"))
    aligned(db, "chelsea.jpg", tmp_path)
    db.store.close()
    manifest = read_manifest(snapshot(path), ("keypoints",))
    codes = np.load(folder(path) / manifest.files["codes"])
    saved = faiss.read_index_binary(str(folder(path) / manifest.files["faiss"]))
    shifted = faiss.IndexBinaryIVF(faiss.IndexBinaryFlat(256), 256, saved.nlist)
    shifted.train(codes)
    shifted.add_with_ids(codes, np.arange(len(codes), dtype=np.int64) + len(codes))
    faiss.write_index_binary(shifted, str(folder(path) / manifest.files["faiss"]))
    # ... and its manifest's checksum with it (as a damage no checksum sees would leave it), so
    # the search's own check is what finds it.
    body = json.loads(snapshot(path).read_text())
    body["params"]["crc32_faiss"] = zlib.crc32((folder(path) / manifest.files["faiss"]).read_bytes())
    snapshot(path).write_text(json.dumps(body))

    with caplog.at_level(logging.WARNING, logger="hashdb.service.keypoint_matching"):
        db = open_db(path)
        assert aligned(db, "chelsea.jpg", tmp_path) == [chelsea]
    assert "names descriptors it does not hold; rebuilding" in caplog.text
    assert min(db.store.reads) == 0  # rebuilt from the store, and saved again
    db.store.close()
    caplog.clear()
    assert aligned(open_db(path), "chelsea.jpg", tmp_path) == [chelsea]
    assert "rebuilding" not in caplog.text


def test_a_record_retracted_or_held_back_after_the_snapshot_does_not_match(tmp_path):
    path = tmp_path / "db.sqlite"
    db = open_db(path)
    chelsea = submit(db, "chelsea.jpg")
    coffee = pdq_id(db, submit(db, "coffee.jpg"))
    aligned(db, "coffee.jpg", tmp_path)  # the snapshot holds both pictures' descriptors
    for record_id in chelsea:
        db.retract(record_id, principal(db, "alice", "contributor"))
    db.quarantine(coffee, principal(db, "operator", "admin"), "reported")
    db.store.close()

    db = open_db(path)
    assert aligned(db, "chelsea.jpg", tmp_path) == []
    assert aligned(db, "coffee.jpg", tmp_path) == []
    assert aligned(db, "coffee.jpg", tmp_path, role="admin") == [coffee]  # held back, not lost
    assert min(db.store.reads) == 2  # the snapshot's descriptors were there to vote


def test_keypoints_off_or_none_stored_write_no_snapshot(tmp_path):
    path = tmp_path / "db.sqlite"
    db = open_db(path, Settings(keypoints=False))
    submit(db, "chelsea.jpg")  # stores no keypoints
    db.store.close()
    db = open_db(path)
    submit(db, "coffee.jpg")
    alice = principal(db, "alice", "contributor")
    db.submit([Submission("plain", LABELS, (HashValue("md5", "a" * 32),))], alice)
    db.store.close()

    off = open_db(path, Settings(keypoints=False))
    assert "keypoints" not in off.rebuild_saved_index().indexed
    assert aligned(off, "coffee.jpg", tmp_path) == []
    assert not snapshot(path).exists()
    off.store.close()
    assert open_db(path).rebuild_saved_index().indexed["keypoints"] > 0
    assert snapshot(path).exists()

    empty = tmp_path / "empty.sqlite"
    none = open_db(empty)
    none.submit([Submission("plain", LABELS, (HashValue("md5", "b" * 32),))], principal(none, "alice", "contributor"))
    assert none.rebuild_saved_index().indexed["keypoints"] == 0
    assert not snapshot(empty).exists()


def test_index_rebuild_replaces_the_snapshot(tmp_path):
    path = tmp_path / "db.sqlite"
    db = open_db(path)
    submit(db, "chelsea.jpg")
    aligned(db, "chelsea.jpg", tmp_path)
    coffee = pdq_id(db, submit(db, "coffee.jpg"))
    held = db.rebuild_saved_index().indexed["keypoints"]
    manifest = read_manifest(snapshot(path), ("keypoints",))
    assert (manifest.covers_seq, manifest.count) == (2, held)
    db.store.close()
    db = open_db(path)
    assert aligned(db, "coffee.jpg", tmp_path) == [coffee]
    assert min(db.store.reads) == 2


def test_index_rebuild_with_no_keypoints_left_removes_the_snapshot(tmp_path, caplog):
    path = tmp_path / "db.sqlite"
    db = open_db(path)
    chelsea = submit(db, "chelsea.jpg")
    aligned(db, "chelsea.jpg", tmp_path)
    assert snapshot(path).exists()
    for record_id in chelsea:
        db.retract(record_id, principal(db, "alice", "contributor"))
    assert db.rebuild_saved_index().indexed["keypoints"] == 0
    assert not list(folder(path).glob("keypoints.faiss*"))
    db.store.close()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        db = open_db(path)
        coffee = pdq_id(db, submit(db, "coffee.jpg"))
        assert aligned(db, "coffee.jpg", tmp_path) == [coffee]
    assert caplog.text == ""  # no snapshot of the retracted rows to find wanting
    db.store.close()


@pytest.mark.postgres
def test_postgresql_keeps_the_snapshot_in_hashdb_index_dir(postgres_dsn, tmp_path, monkeypatch):
    from hashdb.service.local import open_database

    monkeypatch.setenv("HASHDB_SECRET", "x" * 40)
    monkeypatch.setenv("HASHDB_INDEX_DIR", str(tmp_path / "index"))
    first = open_database(postgres_dsn)
    first.load_index()
    chelsea = pdq_id(first, submit(first, "chelsea.jpg"))
    assert aligned(first, "chelsea.jpg", tmp_path) == [chelsea]
    first.store.close()
    later = open_database(postgres_dsn)
    later.load_index()
    coffee = pdq_id(later, submit(later, "coffee.jpg"))
    try:
        assert aligned(later, "coffee.jpg", tmp_path) == [coffee]
        assert aligned(later, "chelsea.jpg", tmp_path) == [chelsea]
        # Loaded, not rebuilt (which would have saved it again, holding coffee's row too).
        manifest = read_manifest(tmp_path / "index" / keypoint_snapshot.FILE_NAME, ("keypoints",))
        assert manifest.covers_seq == later.store.keypoint_rows(0, 1)[0][0]
        assert manifest.owner.startswith(later.store.database_id() + "/")
    finally:
        later.store.close()
