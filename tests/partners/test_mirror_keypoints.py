"""Stored keypoints carried to a mirror: a sync that asks for them stores each image's with the
record it adds, read strictly (a malformed one refuses its page, nothing of it applied); one
that does not ask stores none; an export file written with them imports them; CSV and te
never carry them; a database that does not share them refuses to export them."""

from __future__ import annotations

import io
import json
from contextlib import closing

import pytest
from partner_helpers import admin_of

from hashdb.config import Settings
from hashdb.errors import InvalidInput, NotShared
from hashdb.hashing import keypoints, keypoints_text
from hashdb.io.output import feed_json
from hashdb.partners import mirror
from hashdb.partners.formats import import_file, write_export
from hashdb.service import MAX_KEYPOINT_EXPORT_PAGE, HashingService
from hashdb.service.local import open_database
from hashdb.store.sqlite_store import SQLiteStore
from support import run_cli

SOURCE = mirror.Source.from_url("https://hashdb.example.org")


@pytest.fixture
def source(tmp_path, media):
    """A database holding chelsea.jpg submitted from the file (its PDQ with keypoints), and an
    md5 of another item, opened as an operator who shares keypoints."""
    db = tmp_path / "source.sqlite"
    for item in (str(media / "chelsea.jpg"), "md5:" + "a" * 32):
        assert run_cli("submit", "--db", str(db), "--label", "glorification", item).exit_code == 0
    service = open_database(db, Settings(share_keypoints=True))
    yield service
    service.store.close()


def blob_of(media) -> bytes:
    blob = HashingService(Settings()).hash_file(media / "chelsea.jpg").keypoints
    assert blob is not None
    return blob


class Feed:
    """GET /v1/export over a local service, as hashdb.partners.client.Client offers it; `edit`
    changes the documents a page carries."""

    def __init__(self, service, edit=lambda docs: docs):
        self.service, self.edit, self.asked = service, edit, []

    def export_page(self, since=None, limit=1000, keypoints=False):
        self.asked.append(keypoints)
        entries, cursor = self.service.export(admin_of(self.service), since, limit, keypoints)
        return self.edit([feed_json(e) for e in entries]), cursor, self.service.feed_identity()


def mirrored(db) -> dict[str, bytes]:
    """The mirror's stored keypoints, by the signal of the record holding them."""
    with closing(SQLiteStore(db)) as store:
        rows = store.keypoint_rows(0, 100)
        records = store.get_records([record_id for _, record_id, _ in rows])
        return {records[record_id].signal: data for _, record_id, data in rows}


def synced(tmp_path, name, feed, keypoints):
    service = open_database(tmp_path / name)
    try:
        return mirror.sync(service, feed, SOURCE, admin_of(service, "local"), 1000, lambda page: None, keypoints)
    finally:
        service.store.close()


def records_of(service) -> int:
    return service.store.last_seq()  # one change a record: each was added once


def test_a_sync_asking_for_keypoints_stores_them_with_the_records_it_adds(tmp_path, source, media):
    feed = Feed(source)
    outcome = synced(tmp_path, "mirror.sqlite", feed, True)
    assert outcome.added == records_of(source) and feed.asked == [True]
    assert mirrored(tmp_path / "mirror.sqlite") == {"pdq": blob_of(media)}


def test_a_sync_not_asking_stores_none_even_when_sent(tmp_path, source):
    # A server sending them unasked (not this one) is not taken at its word: the mirror
    # holds what its operator asked for.
    feed = Feed(source, lambda docs: [{**d, "keypoints": keypoints_text.encode_text(blob)} if d["signal"] == "pdq" else d
                                      for d in docs])
    blob = source.store.keypoint_rows(0, 1)[0][2]
    assert synced(tmp_path, "plain.sqlite", feed, False).added == records_of(source) and feed.asked == [False]
    assert mirrored(tmp_path / "plain.sqlite") == {}


@pytest.mark.parametrize("bad", ["short", "not base64", "a number", "on an md5"])
def test_a_malformed_keypoint_refuses_its_page_and_applies_none_of_it(tmp_path, source, bad):
    def spoil(docs):
        out = []
        for doc in docs:
            text = doc.get("keypoints")
            if bad == "on an md5" and doc["signal"] == "md5":
                doc = {**doc, "keypoints": next(d["keypoints"] for d in docs if "keypoints" in d)}
            elif text is not None:
                doc = {**doc, "keypoints": {"short": text[:-4], "not base64": "*" + text[1:], "a number": 7,
                                            "on an md5": text}[bad]}
            out.append(doc)
        return out

    db = tmp_path / "mirror.sqlite"
    with pytest.raises(InvalidInput, match="keypoints") as refused:
        synced(tmp_path, "mirror.sqlite", Feed(source, spoil), True)
    assert f"{SOURCE.key} page after the start, entry" in str(refused.value)
    with closing(SQLiteStore(db)) as store:
        assert store.last_seq() == 0 and store.mirror_cursor(SOURCE.key) is None
        assert store.keypoint_rows(0, 10) == []


def test_a_server_from_before_keypoints_is_named_as_such(tmp_path, source):
    class Older(Feed):
        def export_page(self, since=None, limit=1000, keypoints=False):
            if keypoints:  # what bodies.query_args answers for a parameter it does not know
                raise InvalidInput("unknown query parameter 'keypoints'")
            return super().export_page(since, limit)

    with pytest.raises(InvalidInput, match="does not offer keypoints in its feed .* sync without --keypoints"):
        synced(tmp_path, "mirror.sqlite", Older(source), True)
    assert synced(tmp_path, "mirror.sqlite", Older(source), False).added == records_of(source)


def test_a_sync_with_keypoints_takes_pages_of_at_most_the_cap(tmp_path, source):
    service = open_database(tmp_path / "mirror.sqlite")
    try:
        with pytest.raises(InvalidInput, match=f"between 1 and {MAX_KEYPOINT_EXPORT_PAGE} with keypoints"):
            mirror.sync(service, Feed(source), SOURCE, admin_of(service, "local"), MAX_KEYPOINT_EXPORT_PAGE + 1,
                        lambda page: None, True)
        assert service.store.last_seq() == 0
    finally:
        service.store.close()


def test_an_export_file_with_keypoints_imports_them(tmp_path, source, media):
    out = io.StringIO()
    write_export(source, admin_of(source), out, "jsonl", None, None, keypoints=True)
    docs = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [d["signal"] for d in docs if "keypoints" in d] == ["pdq"]
    plain = io.StringIO()
    write_export(source, admin_of(source), plain, "jsonl", None, None)
    assert "keypoints" not in plain.getvalue()
    assert [{k: v for k, v in d.items() if k != "keypoints"} for d in docs] == \
        [json.loads(line) for line in plain.getvalue().splitlines()]
    feed = tmp_path / "feed.jsonl"
    feed.write_text(out.getvalue())
    db = tmp_path / "mirror.sqlite"
    service = open_database(db)
    try:
        assert import_file(service, admin_of(service, "local"), feed)["added"] == records_of(source)
    finally:
        service.store.close()
    assert mirrored(db) == {"pdq": blob_of(media)}
    # A malformed one refuses the whole file.
    spoilt = tmp_path / "spoilt.jsonl"
    spoilt.write_text("".join(json.dumps({**d, "keypoints": d["keypoints"][:-4]} if "keypoints" in d else d) + "\n"
                              for d in docs))
    other = tmp_path / "other.sqlite"
    result = run_cli("import", "--db", str(other), str(spoilt))
    assert result.exit_code == 1 and result.output.count("\n") == 1 and "keypoints" in result.output
    assert mirrored(other) == {}


@pytest.mark.parametrize("fmt", ["csv", "te"])
def test_csv_and_te_never_carry_keypoints(tmp_path, source, fmt):
    with pytest.raises(InvalidInput, match=f"jsonl format only, not {fmt}"):
        write_export(source, admin_of(source), io.StringIO(), fmt, None, None, keypoints=True)
    result = run_cli("export", "--db", str(tmp_path / "source.sqlite"), "--format", fmt, "--keypoints")
    assert result.exit_code == 2 and "--keypoints" in result.output


def test_a_database_that_does_not_share_them_refuses_to_export_them(tmp_path, source):
    db = str(tmp_path / "source.sqlite")
    plain = open_database(db)  # the default settings: not shared
    try:
        with pytest.raises(NotShared, match="HASHDB_SHARE_KEYPOINTS"):
            write_export(plain, admin_of(plain), io.StringIO(), "jsonl", None, None, keypoints=True)
    finally:
        plain.store.close()
    refused = run_cli("export", "--db", db, "--keypoints")
    assert refused.exit_code == 1 and refused.output.count("\n") == 1 and "HASHDB_SHARE_KEYPOINTS" in refused.output
    shared = run_cli("export", "--db", db, "--keypoints", HASHDB_SHARE_KEYPOINTS="1")
    assert shared.exit_code == 0, shared.output
    carried = [json.loads(line)["signal"] for line in shared.stdout.splitlines() if "keypoints" in json.loads(line)]
    assert carried == ["pdq"] and len(shared.stdout.splitlines()) == records_of(source)


def test_another_pictures_keypoints_in_an_entry_refuse_its_page(tmp_path, source, media):
    # A feed whose chelsea entry carries camera.png's keypoints (a file edited on its way): the
    # record would match camera.png's crops as chelsea's, so the page is refused, as a
    # malformed one is.
    other = HashingService(Settings()).hash_file(media / "camera.png").keypoints
    assert other is not None
    feed = Feed(source, lambda docs: [{**d, "keypoints": keypoints_text.encode_text(other)} if "keypoints" in d else d
                                      for d in docs])
    with pytest.raises(InvalidInput, match="keypoints are of another picture"):
        synced(tmp_path, "mirror.sqlite", feed, True)
    assert mirrored(tmp_path / "mirror.sqlite") == {}


def test_a_database_that_keeps_no_keypoints_neither_syncs_nor_imports_them(tmp_path, source, media):
    service = open_database(tmp_path / "off.sqlite", Settings(keypoints=False))
    try:
        with pytest.raises(InvalidInput, match="HASHDB_KEYPOINTS=0"):
            mirror.sync(service, Feed(source), SOURCE, admin_of(service, "local"), 1000, lambda page: None, True)
        exported = tmp_path / "feed.jsonl"
        with exported.open("w") as out:
            write_export(source, admin_of(source), out, "jsonl", None, None, True)
        assert '"keypoints"' in exported.read_text()
        notes: list[str] = []
        outcome = mirror.import_feed(service, SOURCE, exported, admin_of(service, "local"), notes=notes)
        assert outcome.added == records_of(source)
        assert service.store.keypoint_rows(0, 10) == []
        # Said, as a submission with keypoints says it: the file's were not stored.
        assert notes == ["this database keeps no keypoints (HASHDB_KEYPOINTS=0), so the file's were not stored"]
        plain = tmp_path / "plain.jsonl"
        with plain.open("w") as out:
            write_export(source, admin_of(source), out, "jsonl", None, None)
        notes.clear()
        mirror.import_feed(service, SOURCE, plain, admin_of(service, "local"), notes=notes)
        assert notes == []  # nothing carried, nothing dropped
    finally:
        service.store.close()
    result = run_cli("import", "--db", str(tmp_path / "off2.sqlite"), str(exported), HASHDB_KEYPOINTS="0")
    assert result.exit_code == 0 and result.output.count("\n") == 1, result.output
    assert "(note: this database keeps no keypoints (HASHDB_KEYPOINTS=0)" in result.output


def test_a_quarantined_records_keypoints_stay_home(tmp_path, source):
    [(_, record_id, _)] = source.store.keypoint_rows(0, 10)
    entries, _ = source.export(admin_of(source), None, 100, True)
    assert [e.keypoints is not None for e in entries if e.id == record_id] == [True]
    source.store.quarantine(record_id, "safelist", "held for the test", admin_of(source))
    entries, _ = source.export(admin_of(source), None, 100, True)
    held = [e for e in entries if e.id == record_id]  # its add and its status change
    assert len(held) == 2 and all(e.keypoints is None for e in held)


def test_a_mirror_does_not_pass_on_the_keypoints_it_took(tmp_path, source):
    assert synced(tmp_path, "mirror.sqlite", Feed(source), True).added == records_of(source)
    service = open_database(tmp_path / "mirror.sqlite", Settings(share_keypoints=True))
    try:
        assert service.store.keypoint_rows(0, 10)  # held, and matched against...
        entries, _ = service.export(admin_of(service, "local"), None, 100, True)
        assert entries and all(e.keypoints is None for e in entries)  # ...but not shared on
    finally:
        service.store.close()


def test_an_import_says_where_records_go_without_the_keypoints_the_mirror_wants(tmp_path, source, media):
    # As a sync says it: keypoints come only with the records an import adds.
    files = {}
    for name, with_keypoints in (("plain.jsonl", False), ("keypoints.jsonl", True)):
        files[name] = tmp_path / name
        with files[name].open("w") as out:
            write_export(source, admin_of(source), out, "jsonl", None, None, with_keypoints)

    def imported(db: str, name: str) -> dict:
        service = open_database(tmp_path / db)
        try:
            return import_file(service, admin_of(service, "local"), files[name], source=SOURCE.key)
        finally:
            service.store.close()

    assert "notes" not in imported("plain.sqlite", "plain.jsonl")
    late = imported("plain.sqlite", "keypoints.jsonl")  # the records are held: none is added
    [note] = late["notes"]
    assert late["added"] == 0 and "have no keypoints" in note and "import into a new --db" in note, late
    assert mirrored(tmp_path / "plain.sqlite") == {}
    assert "notes" not in imported("kp.sqlite", "keypoints.jsonl")
    assert mirrored(tmp_path / "kp.sqlite") == {"pdq": blob_of(media)}
    # A plain file into the mirror that took them: what it adds would go without.
    [dropped] = imported("kp.sqlite", "plain.jsonl")["notes"]
    assert "took keypoints" in dropped, dropped
