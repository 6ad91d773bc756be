"""Applying another hashdb's change feed to a local mirror (hashdb.partners.mirror), on every store:
idempotent, order-preserving, statuses and labels kept, labels checked, one transaction a page."""

from __future__ import annotations

import dataclasses
import json
import random
from collections import Counter

import pytest
from click.testing import CliRunner
from partner_helpers import admin_of, feed_docs, fold, jsonl
from sqlite_utils import Database
from support import INDEX_FACTORY, flip, principal, random_pdq

from hashdb.cli import cli
from hashdb.config import Settings
from hashdb.errors import InvalidHash, InvalidInput, UnknownLabel, UnknownSignal
from hashdb.index.indexset import IndexSet
from hashdb.partners import mirror
from hashdb.service import HashDB
from hashdb.store.sqlite_store import SQLiteStore
from hashdb.trust.taxonomy import Taxonomy
from hashdb.types import FrameHash, HashValue, MirrorOutcome, Query, Submission

SOURCE = mirror.Source.from_url("https://hashdb.example.org")


def make_service(store, taxonomy: Taxonomy | None = None) -> HashDB:
    service = HashDB(Settings(), store, IndexSet(store, factory=INDEX_FACTORY), taxonomy)
    service.load_index()
    return service


@pytest.fixture
def source():
    service = make_service(SQLiteStore(Database(memory=True)))
    yield service
    service.store.close()


@pytest.fixture
def local(each_store):
    return make_service(each_store)


def submit(service: HashDB, org: str, *hexes: str, label: str = "glorification") -> list[int]:
    results = service.submit([Submission(f"pdq:{h}", (label,), (HashValue("pdq", h, 100),)) for h in hexes],
                             principal(service, org, "contributor"))
    return [r.ids[0] for r in results]


def apply_docs(local: HashDB, docs, cursor=None) -> MirrorOutcome:
    entries = mirror.check_entries(docs, local.taxonomy, lambda n: f"entry {n + 1}")
    return mirror.apply(local, SOURCE, entries, cursor, admin_of(local, "local"))


def mirror_docs(local: HashDB) -> list[dict]:
    return feed_docs(local)


def snapshot(local: HashDB):
    return (mirror_docs(local), local.store.last_seq(), len(local.store.audit_entries(0, 10_000)),
            local.store.mirror_cursor(SOURCE.key))


def matches(service: HashDB, hexes, admin=False):
    actor = admin_of(service, "local") if admin else principal(service, "checker", "consumer")
    results = service.lookup([Query(h, (HashValue("pdq", h),)) for h in hexes], actor)
    return [[(m.signal, m.status, m.labels, m.support) for m in r.matches] for r in results]


@pytest.fixture
def busy_source(source):
    """A source whose feed has every kind of entry: adds, a label change, a quarantine, a
    dispute, a retraction, and a record quarantined by the safelist at submission."""
    rng = random.Random(7)
    hexes = [random_pdq(rng) for _ in range(6)]
    ids = submit(source, "alpha", *hexes[:5])
    admin = admin_of(source)
    source.store.set_labels(ids[0], ["graphic_violence", "glorification"], admin)
    source.quarantine(ids[1], admin, "member report")
    source.store.set_status(ids[2], "disputed", admin, "votes")
    source.retract(ids[3], admin, "mistake")
    source.add_safelist([HashValue("pdq", hexes[5])], admin, "press photo")
    submit(source, "beta", hexes[5])  # held at submission: stored quarantined
    return source, hexes


def test_the_mirror_holds_what_the_source_holds(busy_source, local):
    source, hexes = busy_source
    docs = feed_docs(source)
    outcome = apply_docs(local, docs, "c1")
    assert outcome == MirrorOutcome(added=5, changed=0, retracted=0, unchanged=1)
    assert fold(mirror_docs(local)) == fold(docs)
    statuses = Counter(state[2] for state in fold(mirror_docs(local)))
    assert statuses == Counter({"active": 2, "quarantined": 2, "disputed": 1})
    assert local.store.mirror_cursor(SOURCE.key) == "c1"
    # Quarantined records are held back from members here as there; retracted ones match nobody.
    found = matches(local, hexes)
    assert found[0] == [("pdq", "active", ("graphic_violence", "glorification"), 1)]
    assert found[1] == found[3] == found[5] == []
    assert found[2] == [("pdq", "disputed", ("glorification",), 1)]
    assert matches(local, hexes[1:2], admin=True) == [[("pdq", "quarantined", ("glorification",), 1)]]


def test_a_page_applied_twice_changes_nothing(busy_source, local):
    source, _ = busy_source
    docs = feed_docs(source)
    half = len(docs) // 2
    apply_docs(local, docs[:half], "c1")
    apply_docs(local, docs[half:], "c2")
    before = snapshot(local)
    for page, cursor in ((docs[half:], "c2"), (docs, "c2"), (docs[:half], "c2")):
        outcome = apply_docs(local, page, cursor)
        assert (outcome.added, outcome.changed, outcome.retracted) == (0, 0, 0)
        assert snapshot(local) == before


def test_an_older_page_applied_after_a_newer_one_is_ignored(source, local):
    [record] = submit(source, "alpha", random_pdq(random.Random(8)))
    added = feed_docs(source)
    source.retract(record, admin_of(source))
    retracted = feed_docs(source)[len(added):]
    apply_docs(local, added)
    assert apply_docs(local, retracted).retracted == 1
    assert apply_docs(local, added) == MirrorOutcome(unchanged=1)
    assert fold(mirror_docs(local)) == Counter()


def test_changes_arrive_in_order_across_pages(source, local):
    rng = random.Random(9)
    [record] = submit(source, "alpha", random_pdq(rng))
    admin = admin_of(source)
    source.quarantine(record, admin, "check")
    source.release(record, admin, "fine")
    source.store.set_labels(record, ["recruitment_instruction"], admin)
    docs = feed_docs(source)
    assert [d["kind"] for d in docs] == ["add", "status", "status", "labels"]
    for doc in docs:  # one entry a page: every intermediate state is applied in turn
        apply_docs(local, [doc])
        assert fold(mirror_docs(local)) == fold(docs, doc["seq"])


def test_a_retraction_stops_matching_at_once(source, local):
    value = random_pdq(random.Random(10))
    [record] = submit(source, "alpha", value)
    apply_docs(local, feed_docs(source))
    near = flip(value, 5, random.Random(11))
    assert matches(local, [near]) == [[("pdq", "active", ("glorification",), 1)]]
    seen = len(feed_docs(source))
    source.retract(record, admin_of(source))
    assert apply_docs(local, feed_docs(source)[seen:]).retracted == 1
    assert matches(local, [near]) == [[]]  # the same service, index not reloaded


def test_one_hash_from_two_members_stays_two_records(source, local):
    value = random_pdq(random.Random(12))
    first = submit(source, "alpha", value)[0]
    submit(source, "beta", value)
    assert matches(source, [value]) == [[("pdq", "active", ("glorification",), 2)] * 2]
    apply_docs(local, feed_docs(source))
    # Support is what the source reports: the feed names no members, the mirror keeps one
    # record per source record.
    assert matches(local, [value]) == matches(source, [value])
    seen = len(feed_docs(source))
    source.retract(first, admin_of(source))
    apply_docs(local, feed_docs(source)[seen:])
    assert matches(local, [value]) == matches(source, [value]) == [[("pdq", "active", ("glorification",), 1)]]


def test_records_are_keyed_by_the_source_ids(source, local):
    ids = submit(source, "alpha", *(random_pdq(random.Random(n)) for n in (13, 14)))
    local_org = principal(local, "local", "contributor")
    local.submit([Submission("x", ("glorification",), (HashValue("pdq", random_pdq(random.Random(15)), 100),))],
                 local_org)
    apply_docs(local, feed_docs(source))
    mapped = local.store.mirror_ids(SOURCE.key, ids)
    assert sorted(mapped) == ids and len(set(mapped.values())) == 2
    held = local.store.get_records(list(mapped.values()))
    assert {held[i].value for i in mapped.values()} == {r.value for r in source.store.get_records(ids).values()}
    assert {local.store.get_org(SOURCE.org).id} == {r.org_id for r in held.values()}  # type: ignore[union-attr]
    assert SOURCE.org == "mirror:hashdb.example.org"


def test_video_records_keep_their_frames(source, local):
    rng = random.Random(16)
    frames = tuple(FrameHash(n, float(n), HashValue("pdq", random_pdq(rng), 90)) for n in range(6))
    source.submit([Submission("clip", ("attacker_manifesto",), (), frames, "video")], admin_of(source))
    apply_docs(local, feed_docs(source))
    query = Query("q", (), tuple(FrameHash(f.frame_number, 0.0, HashValue("pdq", flip(f.hash.hex, 3, rng), 90))
                                 for f in frames))
    [result] = local.lookup([query], admin_of(local, "local"))
    assert [(m.signal, m.video.query_pct) for m in result.matches] == [("vpdq", 100.0)]  # type: ignore[union-attr]
    [doc] = feed_docs(source)
    with pytest.raises(InvalidHash, match="entry 1 .*vpdq hash must be 64 hex characters"):
        apply_docs(local, [{**doc, "hash": "f" * 63}])
    with pytest.raises(InvalidInput, match="a vpdq entry must list its frames"):
        apply_docs(local, [{**doc, "frames": []}])
    # Each frame's time travels with it, so the mirror's own feed says the same; a bad one is
    # refused, and a feed from before frames carried times reads as 0.
    assert [f["t"] for f in doc["frames"]] == [float(n) for n in range(6)]
    assert [f["t"] for f in feed_docs(local)[0]["frames"]] == [float(n) for n in range(6)]
    for bad in (-1, "1.0", float("nan"), True):
        with pytest.raises(InvalidInput, match="a frame's t must be a number of seconds >= 0"):
            apply_docs(local, [{**doc, "frames": [{**doc["frames"][0], "t": bad}]}])
    older = {**doc, "id": doc["id"] + 100, "seq": doc["seq"] + 100,
             "frames": [{"pdq": f["pdq"], "quality": f["quality"]} for f in doc["frames"]]}
    apply_docs(local, [older])
    assert {f["t"] for f in feed_docs(local)[-1]["frames"]} == {0.0}


@pytest.mark.parametrize("pages", ["after each share", "one entry a page", "the whole feed at once"])
def test_a_hash_shared_again_under_another_incident_is_mirrored_as_shared_again(source, local, pages):
    # Its organisation retracted it and shared it again under another incident, at another
    # quality: the mirror held the first incident and quality for good (and, with each entry
    # describing its own time, a mirror reading one entry a page would have too).
    admin, alpha = admin_of(source), principal(source, "alpha", "contributor")
    for incident in ("attack-1", "attack-2"):
        source.open_incident(incident, admin)
    hex_value = random_pdq(random.Random(17))

    def share(incident: str, quality: int) -> None:
        source.submit([Submission("x", ("glorification",), (HashValue("pdq", hex_value, quality),),
                                  media_type="image", incident=incident)], alpha)

    share("attack-1", 60)
    first = feed_docs(source)
    if pages == "after each share":
        apply_docs(local, first)
    [record_id] = {d["id"] for d in first}
    source.retract(record_id, alpha, "wrong incident")
    share("attack-2", 95)
    docs = feed_docs(source)
    if pages == "after each share":
        assert apply_docs(local, docs[len(first):]).changed == 1
    elif pages == "one entry a page":
        for doc in docs:
            apply_docs(local, [doc])
    else:
        apply_docs(local, docs)
    [held] = local.store.mirror_ids(SOURCE.key, [record_id]).values()
    record = local.store.get_records([held])[held]
    assert (record.status, record.incident, record.quality) == ("active", "attack-2", 95)
    # The mirror's own feed says so too, for the partners that follow it.
    last = [d for d in feed_docs(local) if d["id"] == held][-1]
    assert (last["status"], last["incident"], last["quality"]) == ("active", "attack-2", 95)
    assert matches(local, [hex_value]) == [[("pdq", "active", ("glorification",), 1)]]


def test_an_unknown_label_is_refused_naming_the_entry(source, tmp_path):
    submit(source, "alpha", random_pdq(random.Random(17)))
    submit(source, "alpha", random_pdq(random.Random(18)), label="branded_publication")
    narrow = Taxonomy("test-1", {"glorification": "glorification"})
    store = SQLiteStore(tmp_path / "narrow.sqlite")
    local = make_service(store, narrow)
    docs = feed_docs(source)
    with pytest.raises(UnknownLabel) as caught:
        apply_docs(local, docs)
    message = str(caught.value)
    assert message.startswith("entry 2 (seq 2, record 2): unknown label 'branded_publication'")
    assert "valid labels: glorification" in message and "\n" not in message
    assert store.last_seq() == 0  # the page was refused whole
    store.close()


@pytest.mark.parametrize(("field", "value", "error", "words"), [
    ("hash", "zz" * 32, InvalidHash, "not ASCII hex"),
    ("signal", "shazam", UnknownSignal, "unknown signal 'shazam'"),
    ("status", "deleted", InvalidInput, "status must be one of"),
    ("kind", "rename", InvalidInput, "kind must be one of"),
    ("seq", "3", InvalidInput, "seq must be a positive integer"),
    # SQLite's integers end at 2**63 - 1: past it the database raised OverflowError, a traceback.
    ("seq", 2**63, InvalidInput, "seq must be a positive integer up to 9223372036854775807"),
    ("id", 10**30, InvalidInput, "id must be a positive integer up to 9223372036854775807"),
    ("labels", "glorification", InvalidInput, "labels must be a list"),
    ("quality", 101, InvalidHash, "quality must be an integer from 0 to 100"),
    ("created_at", None, InvalidInput, "created_at must be a timestamp"),
])
def test_malformed_entries_are_typed_errors(source, local, field, value, error, words):
    submit(source, "alpha", random_pdq(random.Random(19)))
    [doc] = feed_docs(source)
    with pytest.raises(error) as caught:
        apply_docs(local, [{**doc, field: value}])
    assert words in str(caught.value) and str(caught.value).startswith("entry 1")
    assert local.store.last_seq() == 0


def test_derived_hashes_of_a_kind_this_version_does_not_know_are_left_out(source, local):
    # A newer source may derive hashes of a new kind (a via, or a field, added after this
    # version), or more of them: the mirror keeps the record and the kinds it can match. The
    # whole page was refused before, so an older mirror stopped syncing for good.
    rng = random.Random(23)
    stored, known = random_pdq(rng), random_pdq(rng)
    submit(source, "alpha", stored)
    [doc] = feed_docs(source)
    newer = [{"via": "aligned", "pdq": random_pdq(rng), "quality": 90},
             {"via": "trimmed", "pdq": known, "quality": 80, "share": 0.81},
             {"via": "trimmed", "pdq": random_pdq(rng), "quality": 80, "share": 0.5, "angle": 3.0},
             *({"via": "aligned", "pdq": random_pdq(rng), "quality": 90} for _ in range(20))]
    assert apply_docs(local, [{**doc, "derived": newer}]).added == 1
    [mirrored] = feed_docs(local)
    assert (mirrored["hash"], mirrored["derived"]) == (stored, [newer[1]])
    # A known kind is as strictly checked as ever, and a submission's list stays strict.
    with pytest.raises(InvalidInput, match="entry 1.*derived\\[0\\].share"):
        apply_docs(local, [{**doc, "seq": doc["seq"] + 1, "derived": [{**newer[1], "share": 2}]}])
    from hashdb.hashing.derived import derived_from_json

    with pytest.raises(InvalidInput, match="via must be one of"):
        derived_from_json(newer[:1])


def test_a_page_commits_whole_or_not_at_all(source, local):
    rng = random.Random(20)
    [record] = submit(source, "alpha", random_pdq(rng))
    apply_docs(local, feed_docs(source), "c1")
    seen = len(feed_docs(source))
    source.retract(record, admin_of(source))
    submit(source, "alpha", random_pdq(rng))
    later = mirror.check_entries(feed_docs(source)[seen:], local.taxonomy, str)
    # A bad record after a good retraction: the store refuses it inside the transaction.
    broken = [later[0], dataclasses.replace(later[1], status="bogus")]
    before = snapshot(local)
    with pytest.raises(InvalidInput):
        local.store.apply_feed(SOURCE.key, SOURCE.org, broken, "c2", admin_of(local, "local"))
    assert snapshot(local) == before


# `hashdb import` of an export file goes through the same module -----------------------------


def run(*args):
    result = CliRunner().invoke(cli, list(args), env={"HASHDB_DB": None, "HASHDB_SERVER": None})
    return result.exit_code, result.stdout, result.stderr


def test_import_of_an_export_keeps_statuses_and_is_idempotent(tmp_path):
    rng = random.Random(21)
    src, dst = str(tmp_path / "src.sqlite"), str(tmp_path / "dst.sqlite")
    held, kept, gone = (random_pdq(rng) for _ in range(3))
    assert run("submit", "--pdq-quality", "100", "--db", src, f"pdq:{held}", f"pdq:{kept}", f"pdq:{gone}", "--label", "glorification")[0] == 0
    assert run("quarantine", "add", "1", "--reason", "report", "--db", src)[0] == 0
    assert run("retract", "3", "--db", src)[0] == 0
    code, feed, err = run("export", "--db", src)
    assert code == 0, err
    (tmp_path / "feed.jsonl").write_text(feed)
    code, out, err = run("import", "--json", "--db", dst, str(tmp_path / "feed.jsonl"))
    assert code == 0, err
    assert json.loads(out) == {"added": 2, "changed": 0, "retracted": 0, "unchanged": 1}
    mirrored = run("export", "--db", dst)[1]
    states = fold(json.loads(line) for line in mirrored.splitlines())
    assert states == fold(json.loads(line) for line in feed.splitlines())
    assert sorted(s[2] for s in states) == ["active", "quarantined"]  # not brought in as active
    # Importing it again changes nothing; an increment written later continues the same records.
    assert json.loads(run("import", "--json", "--db", dst, str(tmp_path / "feed.jsonl"))[1])["added"] == 0
    assert run("export", "--db", dst)[1] == mirrored
    cursor = run("export", "--db", src)[2].split()[-1]
    assert run("quarantine", "release", "1", "--db", src)[0] == 0
    (tmp_path / "more.jsonl").write_text(run("export", "--db", src, "--since", cursor)[1])
    assert json.loads(run("import", "--json", "--db", dst, str(tmp_path / "more.jsonl"))[1])["changed"] == 1
    hit = json.loads(run("lookup", "--json", "--db", dst, f"pdq:{held}")[1])
    assert [m["status"] for m in hit["matches"]] == ["active"]


def test_import_refuses_a_file_with_a_bad_line_before_writing(tmp_path, source):
    rng = random.Random(22)
    submit(source, "alpha", random_pdq(rng), random_pdq(rng))
    docs = feed_docs(source)
    docs[1]["labels"] = ["not_a_label"]
    (tmp_path / "feed.jsonl").write_text(jsonl(docs))
    dst = str(tmp_path / "dst.sqlite")
    code, _, err = run("import", "--db", dst, str(tmp_path / "feed.jsonl"))
    assert code == 1
    assert err.startswith(f"Error: {tmp_path / 'feed.jsonl'}:2 (seq 2, record 2): unknown label 'not_a_label'")
    assert err.count("\n") == 1 and "Traceback" not in err
    assert run("export", "--db", dst)[1] == ""
