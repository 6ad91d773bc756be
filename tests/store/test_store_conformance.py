"""One suite, every store: what the service may rely on, whichever database is behind it."""

from __future__ import annotations

import dataclasses
import json
import threading
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from store_helpers import GENESIS, actor, chain_problems, pdq, record, video

from hashdb.errors import Conflict, InvalidInput, NotFound
from hashdb.store.sql import SQLStore
from hashdb.types import FrameHash, HashValue, NewRecord, SubmitOutcome, Votes

# organisations and keys -------------------------------------------------------------------


def test_ensure_org_is_idempotent(store: SQLStore) -> None:
    first = store.ensure_org("Acme")
    again = store.ensure_org("Acme")
    other = store.ensure_org("Globex")
    assert first == again
    assert other.id != first.id
    assert store.get_org("Acme") == first
    assert store.get_org("Nobody") is None


def test_api_keys_create_find_list_revoke(store: SQLStore) -> None:
    admin = actor(store, "Root", "admin")
    org = store.ensure_org("Acme")
    key = store.create_api_key(org.id, "contributor", "pfx1", "hash1")
    other = store.create_api_key(org.id, "partner", "pfx2", "hash2")
    assert (key.org_id, key.org_name, key.role, key.prefix, key.secret_hash, key.revoked_at) == (
        org.id, "Acme", "contributor", "pfx1", "hash1", None)
    assert store.find_api_key("pfx2") == other
    assert store.find_api_key("nope") is None
    assert store.list_api_keys() == [key, other]

    revoked = store.revoke_api_key(key.id, admin)
    assert revoked.revoked_at is not None
    assert store.find_api_key("pfx1") == revoked
    # Revoking twice keeps the first time: the key stopped working then.
    assert store.revoke_api_key(key.id, admin).revoked_at == revoked.revoked_at
    assert store.find_api_key("pfx2") == other
    actions = [(e.action, e.target) for e in store.audit_entries()]
    assert actions == [("key.create", f"key:{key.id}"), ("key.create", f"key:{other.id}"),
                       ("key.revoke", f"key:{key.id}"), ("key.revoke", f"key:{key.id}")]


def test_api_key_errors_are_typed(store: SQLStore) -> None:
    admin = actor(store, "Root", "admin")
    org = store.ensure_org("Acme")
    store.create_api_key(org.id, "consumer", "taken", "h")
    with pytest.raises(Conflict):
        store.create_api_key(org.id, "consumer", "taken", "h2")
    with pytest.raises(InvalidInput):
        store.create_api_key(org.id, "superuser", "p", "h")
    with pytest.raises(NotFound):
        store.create_api_key(org.id + 1000, "consumer", "p", "h")
    with pytest.raises(NotFound):
        store.revoke_api_key(999, admin)
    assert [k.prefix for k in store.list_api_keys()] == ["taken"]


# records ----------------------------------------------------------------------------------


def test_duplicates_are_per_organisation(store: SQLStore) -> None:
    acme, globex = actor(store, "Acme"), actor(store, "Globex")
    first = store.add_records([record(pdq(1)), record(pdq(2))], acme)
    assert [o.duplicate for o in first] == [False, False]
    assert first[0].id != first[1].id

    # The same hash from the same member is the same record, whatever else differs.
    again = store.add_records([record(pdq(1), labels=("other",), reference="x")], acme)
    assert again == [SubmitOutcome(first[0].id, "active", duplicate=True)]

    # From another member it is a new record, and both now have support 2.
    theirs = store.add_records([record(pdq(1))], globex)
    assert theirs[0].duplicate is False and theirs[0].id not in (first[0].id, first[1].id)
    records = store.get_records([first[0].id, theirs[0].id, first[1].id])
    assert records[first[0].id].support == 2
    assert records[theirs[0].id].support == 2
    assert records[first[1].id].support == 1
    assert records[first[0].id].labels == ("terrorism",)  # the duplicate changed nothing

    # One add in the change log per new record, none for duplicates.
    adds = [(c.kind, c.record_id) for c in store.changes_since(0, 100)]
    assert adds == [("add", first[0].id), ("add", first[1].id), ("add", theirs[0].id)]

    # A copy in quarantine does not support the others (found in trial: a copy the safelist
    # held counted as a second organisation's agreement); it still counts for itself.
    store.set_status(theirs[0].id, "quarantined", acme, "held")
    records = store.get_records([first[0].id, theirs[0].id])
    assert records[first[0].id].support == 1
    assert records[theirs[0].id].support == 2
    store.set_status(theirs[0].id, "active", acme, "released")
    assert store.get_records([first[0].id])[first[0].id].support == 2


def test_same_hash_twice_in_one_batch_is_one_record(store: SQLStore) -> None:
    acme = actor(store, "Acme")
    out = store.add_records([record(pdq(5)), record(pdq(6)), record(pdq(5))], acme)
    assert out[0].id == out[2].id
    assert [o.duplicate for o in out] == [False, False, True]
    assert len(store.changes_since(0, 100)) == 2


def test_same_hex_under_another_signal_is_another_record(store: SQLStore) -> None:
    acme = actor(store, "Acme")
    hex64 = "ab" * 8
    out = store.add_records([record(hex64, signal="phash"), record(hex64, signal="dhash")], acme)
    assert out[0].id != out[1].id and not any(o.duplicate for o in out)


def test_idempotency_key_replays_the_first_answer(store: SQLStore) -> None:
    acme, globex = actor(store, "Acme"), actor(store, "Globex")
    batch = [record(pdq(1)), record(pdq(2)), record(pdq(1))]
    first = store.add_records(batch, acme, "key-1", "digest-a")
    changes, audit, counts = store.last_seq(), len(store.audit_entries()), store.counts()

    assert store.add_records(batch, acme, "key-1", "digest-a") == first
    # Nothing was stored twice: no new records, change-log rows or audit entries.
    assert (store.last_seq(), len(store.audit_entries()), store.counts()) == (changes, audit, counts)

    with pytest.raises(Conflict):
        store.add_records([record(pdq(3))], acme, "key-1", "digest-b")
    assert store.find_values("pdq", [pdq(3)]) == []

    # Keys belong to the member that sent them: the same key from another member is new.
    theirs = store.add_records(batch, globex, "key-1", "digest-b")
    assert [o.duplicate for o in theirs] == [False, False, True]
    assert {o.id for o in theirs}.isdisjoint({o.id for o in first})


def test_database_identity_and_change_marks(store: SQLStore, tmp_path) -> None:
    # What an index snapshot records of the database it was saved from (IndexSet._owner).
    identity = store.database_id()
    assert len(identity) == 32 and int(identity, 16) >= 0
    assert store.database_id() == identity  # made once, with the database
    assert store.change_mark(0) is None and store.change_mark(1) is None
    acme = actor(store, "Acme")
    [added] = store.add_records([record(pdq(1))], acme)
    [change] = store.changes_since(0, 10)
    assert store.change_mark(change.seq) == f"{change.at}/{added.id}"
    assert store.change_mark(change.seq + 1) is None
    # Another database has another identity.
    from hashdb.store.sqlite_store import SQLiteStore

    other = SQLiteStore(tmp_path / "other.sqlite")
    assert other.database_id() != identity
    other.close()


def test_a_refused_batch_stores_nothing(store: SQLStore) -> None:
    acme = actor(store, "Acme")
    bad = NewRecord(HashValue("pdq", pdq(2)), "image", (), status="deleted")
    with pytest.raises(InvalidInput):
        store.add_records([record(pdq(1)), bad], acme, "k", "d")
    with pytest.raises(InvalidInput):
        store.add_records([record(pdq(1), reference="a\x00b")], acme)
    assert store.find_values("pdq", [pdq(1), pdq(2)]) == []
    assert store.last_seq() == 0
    # The key was not spent on the refused batch.
    assert not store.add_records([record(pdq(1))], acme, "k", "d")[0].duplicate


def test_get_records_and_find_values(store: SQLStore) -> None:
    acme, globex = actor(store, "Acme"), actor(store, "Globex")
    mine = store.add_records([record(pdq(1), incident="inc-1", reference="ref-9", removed_at="2024-01-02",
                                     labels=("a", "b"), quality=77)], acme)[0]
    theirs = store.add_records([record(pdq(1)), record(pdq(2))], globex)
    got = store.get_records([mine.id, 10_000, mine.id])
    assert list(got) == [mine.id]
    r = got[mine.id]
    assert (r.signal, r.value, r.quality, r.media_type, r.labels, r.org_id, r.status) == (
        "pdq", pdq(1), 77, "image", ("a", "b"), acme.org_id, "active")
    assert (r.incident, r.reference, r.removed_at) == ("inc-1", "ref-9", "2024-01-02")
    assert store.get_records([]) == {}

    found = store.find_values("pdq", [pdq(1), pdq(2), pdq(3)])
    assert [(f.id, f.value, f.org_id) for f in found] == [
        (mine.id, pdq(1), acme.org_id), (theirs[0].id, pdq(1), globex.org_id), (theirs[1].id, pdq(2), globex.org_id)]
    assert store.find_values("phash", [pdq(1)]) == []
    assert store.find_values("pdq", []) == []


def test_lookups_beyond_one_chunk(store: SQLStore) -> None:
    # More values than one IN (...) list holds (500): chunks must join up.
    acme = actor(store, "Acme")
    out = store.add_records([record(pdq(i)) for i in range(1203)], acme)
    ids = [o.id for o in out]
    assert sorted(store.get_records(ids)) == sorted(ids)
    assert len(store.find_values("pdq", [pdq(i) for i in range(1203)])) == 1203
    again = store.add_records([record(pdq(i)) for i in range(1203)], acme)
    assert [o.id for o in again] == ids and all(o.duplicate for o in again)


def test_set_status_writes_change_and_audit(store: SQLStore) -> None:
    acme = actor(store, "Acme")
    rid = store.add_records([record(pdq(1), labels=("x",))], acme)[0].id
    seq, n_audit = store.last_seq(), len(store.audit_entries())

    assert store.set_status(rid, "disputed", acme, "votes").status == "disputed"
    retracted = store.set_status(rid, "retracted", acme, "mistake")
    assert retracted.status == "retracted" and retracted.support == 0
    # Setting the status it already has records nothing.
    store.set_status(rid, "retracted", acme)

    changes = store.changes_since(seq, 10)
    assert [(c.kind, c.record_id, c.status, c.labels, c.signal) for c in changes] == [
        ("status", rid, "disputed", ("x",), "pdq"), ("retract", rid, "retracted", ("x",), "pdq")]
    audit = store.audit_entries()[n_audit:]
    assert [(a.action, a.target, a.org_id) for a in audit] == [
        ("hashes.status", f"record:{rid}", acme.org_id), ("hashes.retract", f"record:{rid}", acme.org_id)]
    assert json.loads(audit[1].detail) == {"from": "disputed", "to": "retracted", "reason": "mistake"}

    with pytest.raises(NotFound):
        store.set_status(rid + 100, "active", acme)
    with pytest.raises(InvalidInput):
        store.set_status(rid, "gone", acme)


def test_set_labels_writes_change_and_audit(store: SQLStore) -> None:
    acme = actor(store, "Acme")
    rid = store.add_records([record(pdq(1), labels=("a",))], acme)[0].id
    seq, n_audit = store.last_seq(), len(store.audit_entries())
    assert store.set_labels(rid, ["b", "c"], acme).labels == ("b", "c")
    store.set_labels(rid, ["b", "c"], acme)  # unchanged: nothing recorded
    assert [(c.kind, c.labels, c.status) for c in store.changes_since(seq, 10)] == [("labels", ("b", "c"), "active")]
    audit = store.audit_entries()[n_audit:]
    assert [a.action for a in audit] == ["hashes.labels"]
    assert json.loads(audit[0].detail) == {"from": ["a"], "to": ["b", "c"]}
    with pytest.raises(NotFound):
        store.set_labels(rid + 100, ["a"], acme)


def test_set_feedback_counts_votes_and_audits(store: SQLStore) -> None:
    acme, globex, initech = actor(store, "Acme"), actor(store, "Globex"), actor(store, "Initech")
    rid = store.add_records([record(pdq(1))], acme)[0].id
    seq, n_audit = store.last_seq(), len(store.audit_entries())
    store.set_feedback(rid, globex, "disagree", "not ours")
    store.set_feedback(rid, initech, "false_positive", "")
    after = store.set_feedback(rid, globex, "agree", "changed my mind")  # replaces globex's vote
    assert (after.agree, after.disagree, after.false_positive) == (1, 0, 1)
    audit = store.audit_entries()[n_audit:]
    assert [(a.action, a.org_id, json.loads(a.detail)["verdict"]) for a in audit] == [
        ("hashes.feedback", globex.org_id, "disagree"), ("hashes.feedback", initech.org_id, "false_positive"),
        ("hashes.feedback", globex.org_id, "agree")]
    # Each vote that changes the counts is a `status` change (status unchanged) for the feed...
    assert [(c.kind, c.status) for c in store.changes_since(seq, 10)] == [("status", "active")] * 3
    # ...and the same vote again (a new note) changes no count: no change.
    store.set_feedback(rid, globex, "agree", "still agree")
    assert store.last_seq() == seq + 3
    with pytest.raises(InvalidInput):
        store.set_feedback(rid, acme, "meh", "")
    with pytest.raises(NotFound):
        store.set_feedback(rid + 100, acme, "agree", "")


def test_uphold_overrules_the_votes_so_far_and_a_vote_cast_again_stands(store: SQLStore) -> None:
    acme, globex, initech = actor(store, "Acme"), actor(store, "Globex"), actor(store, "Initech")
    admin = actor(store, "Root", "admin")
    rid = store.add_records([record(pdq(1))], acme)[0].id
    store.set_feedback(rid, globex, "disagree", "not ours")
    store.set_feedback(rid, initech, "false_positive", "")
    assert store.standing_votes(rid) == Votes(0, 1, 1)
    with pytest.raises(Conflict, match=f"hash record {rid} is active, not disputed"):
        store.uphold(rid, admin, "early")
    store.set_status(rid, "disputed", acme, "votes")
    seq = store.last_seq()
    upheld = store.uphold(rid, admin, "reviewed")
    # Active, the votes kept in its counts, none standing.
    assert (upheld.status, upheld.agree, upheld.disagree, upheld.false_positive) == ("active", 0, 1, 1)
    assert store.standing_votes(rid) == Votes()
    assert [(c.kind, c.status) for c in store.changes_since(seq, 10)] == [("status", "active")]
    last = store.audit_entries()[-1]
    assert (last.action, last.target, last.org_id) == ("dispute.uphold", f"record:{rid}", admin.org_id)
    assert json.loads(last.detail) == {"from": "disputed", "to": "active", "reason": "reviewed", "overruled": 2}
    assert [v.overruled_at is not None for v in store.votes([rid])[rid]] == [True, True]
    # A vote cast again after the ruling stands again, whatever it was.
    store.set_feedback(rid, globex, "disagree", "still not ours")
    assert store.standing_votes(rid) == Votes(0, 1, 0)
    assert {v.org_name: v.overruled_at is None for v in store.votes([rid])[rid]} == {"Globex": True, "Initech": False}
    assert chain_problems(store.audit_entries()) == []
    with pytest.raises(NotFound):
        store.uphold(rid + 100, admin, "reviewed")


# what the index is built from -------------------------------------------------------------


def test_live_hashes_skip_retracted_and_page_across_batches(store: SQLStore) -> None:
    acme = actor(store, "Acme")
    out = store.add_records([record(pdq(i)) for i in range(1, 9)] + [record("cd" * 8, signal="phash")], acme)
    ids = [o.id for o in out]
    store.set_status(ids[2], "retracted", acme)
    store.set_status(ids[6], "retracted", acme)
    store.set_status(ids[3], "quarantined", acme)  # quarantined stays in the index
    expected = [(ids[i], pdq(i + 1)) for i in (0, 1, 3, 4, 5, 7)]
    for batch in (1, 3, 4, 6, 100):
        batches = list(store.live_hashes("pdq", batch=batch))
        assert all(0 < len(b) <= batch for b in batches)
        assert [pair for b in batches for pair in b] == expected
    assert list(store.live_hashes("phash")) == [[(ids[8], "cd" * 8)]]
    assert list(store.live_hashes("md5")) == []
    with pytest.raises(InvalidInput):
        list(store.live_hashes("pdq", batch=0))


def test_live_hashes_of_every_kind_match_what_was_stored_at_any_page_size(store: SQLStore) -> None:
    """Records of three signals, videos and derived hashes interleaved (so a page of ids can hold
    none of a signal), some retracted and one shared again: each walk gives exactly the live
    hashes in key order, at page sizes from one id to more than all of them."""
    from hashdb.types import DerivedHash

    acme = actor(store, "Acme")
    news: list[NewRecord] = []
    for i in range(24):
        kind = i % 4
        if kind == 0:
            news.append(record(pdq(1000 + i)))
        elif kind == 1:
            derived = tuple(DerivedHash(via, HashValue("pdq", pdq(5000 + 10 * i + k), 80), 0.5)
                            for k, via in enumerate(("trimmed", "centre")[: 1 + (i // 4) % 2]))
            news.append(record(pdq(1000 + i), derived=derived))
        elif kind == 2:
            news.append(record(f"{i:016x}", signal="phash"))
        else:
            news.append(video(f"{i:064x}", [pdq(9000 + 10 * i + k) for k in range(1 + i % 3)]))
    ids = [o.id for o in store.add_records(news[:10], acme) + store.add_records(news[10:], acme)]
    retracted = {ids[i] for i in (0, 5, 6, 7, 13, 21)}
    for record_id in retracted:
        store.set_status(record_id, "retracted", acme)
    assert not store.add_records([news[13]], acme)[0].duplicate  # shared again: live once more
    retracted.discard(ids[13])
    store.set_status(ids[1], "quarantined", acme)  # quarantined hashes stay in the index

    frames = store.video_frames(ids)
    derived = store.derived_hashes(ids)
    live = [(rid, new) for rid, new in zip(ids, news) if rid not in retracted]
    expected = {
        "pdq": [(rid, new.hash.hex) for rid, new in live if new.hash.signal == "pdq"],
        "phash": [(rid, new.hash.hex) for rid, new in live if new.hash.signal == "phash"],
        "vpdq": sorted((f, h) for rid, _ in live for f, h, _ in frames[rid]),
        "pdq_derived": sorted((d, h.hash.hex) for rid, _ in live for d, h in derived.get(rid, [])),
    }
    # The test's own bookkeeping, so the expectations above are not empty by mistake.
    assert [len(v) for v in expected.values()] == [9, 5, 10, 5]
    for signal, want in expected.items():
        for batch in (1, 2, 3, 7, 1000):
            pages = list(store.live_hashes(signal, batch=batch))
            assert all(0 < len(page) <= batch for page in pages), (signal, batch)
            assert [pair for page in pages for pair in page] == want, (signal, batch)
    assert list(store.live_hashes("dhash")) == []


def test_index_entries_give_signal_value_and_status(store: SQLStore) -> None:
    acme = actor(store, "Acme")
    out = store.add_records([record(pdq(1)), record("cd" * 8, signal="phash")], acme)
    store.set_status(out[0].id, "retracted", acme)
    entries = store.index_entries([out[0].id, out[1].id, 999_999])
    assert entries == {out[0].id: ("pdq", pdq(1), "retracted"), out[1].id: ("phash", "cd" * 8, "active")}


def test_video_frames_stored_and_returned(store: SQLStore) -> None:
    acme = actor(store, "Acme")
    clip = video("aa" * 16, [pdq(10), pdq(11), pdq(12)])
    other = video("bb" * 16, [pdq(20)])
    out = store.add_records([clip, record(pdq(1)), other], acme)
    clip_id, other_id = out[0].id, out[2].id
    frames = store.video_frames([clip_id, other_id, out[1].id])
    assert [(h, q) for _, h, q in frames[clip_id]] == [(pdq(10), 50), (pdq(11), 51), (pdq(12), 52)]
    assert [(h, q) for _, h, q in frames[other_id]] == [(pdq(20), 50)]
    assert frames[out[1].id] == []
    frame_ids = [f for f, _, _ in frames[clip_id]]
    assert frame_ids == sorted(frame_ids)
    assert store.frame_records([*frame_ids, frames[other_id][0][0], 99_999]) == {
        **{f: clip_id for f in frame_ids}, frames[other_id][0][0]: other_id}

    live = [pair for batch in store.live_hashes("vpdq", batch=2) for pair in batch]
    assert live == [(f, h) for f, h, _ in frames[clip_id] + frames[other_id]]
    store.set_status(clip_id, "retracted", acme)
    assert [pair for batch in store.live_hashes("vpdq") for pair in batch] == [
        (f, h) for f, h, _ in frames[other_id]]
    # Shared again by its organisation, a retracted video comes back as the same record, and
    # its frames are not stored again; once live, a repeat is a duplicate.
    again = store.add_records([clip], acme)[0]
    assert (again.id, again.duplicate) == (clip_id, False)
    assert store.add_records([clip], acme)[0].duplicate
    assert len(store.video_frames([clip_id])[clip_id]) == 3


def test_image_keypoints_stored_with_their_record_and_read_back(store: SQLStore) -> None:
    # The store keeps the bytes as given (hashing/keypoints.py's format is not its business).
    acme, globex = actor(store, "Acme"), actor(store, "Globex")
    blobs = [bytes([n]) * (100 + n) + b"\x00\xff" for n in range(3)]
    out = store.add_records([record(pdq(1), keypoints=blobs[0]), record(pdq(2)),
                             record(pdq(3), keypoints=blobs[1])], acme)
    first, plain, third = (o.id for o in out)
    (other,) = (o.id for o in store.add_records([record(pdq(1), keypoints=blobs[2])], globex))
    assert store.keypoints_of([first, plain, third, other, 99_999]) == {
        first: blobs[0], third: blobs[1], other: blobs[2]}
    assert store.keypoints_of([]) == {}
    rows = store.keypoint_rows(0, 10)
    assert [(r, d) for _, r, d in rows] == [(first, blobs[0]), (third, blobs[1]), (other, blobs[2])]
    assert [i for i, _, _ in rows] == sorted(i for i, _, _ in rows)
    assert store.keypoint_rows(rows[0][0], 1) == [rows[1]]
    assert store.keypoint_rows(rows[-1][0], 10) == []
    with pytest.raises(InvalidInput):
        store.keypoint_rows(0, 0)
    # A duplicate keeps the record's keypoints as they were, as it keeps its derived hashes.
    assert store.add_records([record(pdq(1), keypoints=b"other")], acme)[0].duplicate
    assert store.keypoints_of([first]) == {first: blobs[0]}
    # A retraction deletes them (a sketch of the picture, which nothing matches or exports any
    # more); shared again by its organisation, the record takes the ones it comes with.
    store.set_status(first, "retracted", acme)
    assert store.keypoints_of([first]) == {}
    assert store.add_records([record(pdq(1), keypoints=b"other")], acme)[0].id == first
    assert store.keypoints_of([first]) == {first: b"other"}
    # A confirmed quarantine is a retraction too.
    store.quarantine(third, "safelist", "held", acme)
    store.resolve_quarantine(third, False, acme, "benign")
    assert store.keypoints_of([third]) == {}


def test_a_mirror_stores_the_keypoints_its_feed_carried_with_the_records_it_adds(store: SQLStore) -> None:
    from hashdb.types import FeedEntry

    local = actor(store, "local", "admin")
    at = "2026-01-01T00:00:00Z"
    entries = [FeedEntry(n, "add", 40 + n, "pdq", pdq(n), 90, "image", ("terrorism",), "active", None, at, at,
                         keypoints=blob) for n, blob in ((1, b"\x01" * 120), (2, None), (3, b"\x03" * 90))]
    assert store.apply_feed("https://source.example", "mirror:source.example", entries, "c1", local).added == 3
    ids = store.mirror_ids("https://source.example", [41, 42, 43])
    assert store.keypoints_of(list(ids.values())) == {ids[41]: b"\x01" * 120, ids[43]: b"\x03" * 90}
    # A later entry of a record the mirror holds changes its labels, never its keypoints.
    later = dataclasses.replace(entries[1], seq=4, kind="labels", labels=("other",), keypoints=b"\x02" * 50)
    assert store.apply_feed("https://source.example", "mirror:source.example", [later], "c2", local).changed == 1
    assert ids[42] not in store.keypoints_of([ids[42]])
    # Retracted at the source: gone here too; shared again there, the new ones come with it.
    gone = dataclasses.replace(entries[0], seq=5, kind="retract", status="retracted", keypoints=None)
    assert store.apply_feed("https://source.example", "mirror:source.example", [gone], "c3", local).retracted == 1
    assert store.keypoints_of([ids[41]]) == {}
    back = dataclasses.replace(entries[0], seq=6, keypoints=b"\x04" * 80)
    store.apply_feed("https://source.example", "mirror:source.example", [back], "c4", local)
    assert store.keypoints_of([ids[41]]) == {ids[41]: b"\x04" * 80}


def test_a_mirror_tells_whether_it_holds_images_and_keypoints_from_a_source(store: SQLStore) -> None:
    from hashdb.types import FeedEntry, MirrorKeypoints

    local = actor(store, "local", "admin")
    at = "2026-01-01T00:00:00Z"
    plain, shared = "https://plain.example", "https://shared.example"

    def add(source: str, seq: int, hex_: str, signal: str = "pdq", keypoints: bytes | None = None) -> None:
        entry = FeedEntry(seq, "add", seq, signal, hex_, 90 if signal == "pdq" else None, "image", ("terrorism",),
                          "active", None, at, at, keypoints=keypoints)
        store.apply_feed(source, f"mirror:{source[8:]}", [entry], f"c{seq}", local)

    nothing = MirrorKeypoints(images=False, keypoints=False)
    assert store.mirror_keypoints(plain) == nothing  # holds nothing from it
    add(plain, 1, "ab" * 16, signal="md5")
    assert store.mirror_keypoints(plain) == nothing  # nothing from it could carry keypoints
    # This database's own keypoints, and another source's, say nothing of this source's.
    store.add_records([record(pdq(9), keypoints=b"\x09" * 60)], actor(store, "Acme"))
    add(shared, 1, pdq(1), keypoints=b"\x01" * 120)
    assert store.mirror_keypoints(shared) == MirrorKeypoints(images=True, keypoints=True)
    add(plain, 2, pdq(2))
    assert store.mirror_keypoints(plain) == MirrorKeypoints(images=True, keypoints=False)
    # A retracted record is no image it holds.
    gone = FeedEntry(3, "retract", 2, "pdq", pdq(2), 90, "image", ("terrorism",), "retracted", None, at, at)
    store.apply_feed(plain, "mirror:plain.example", [gone], "c3", local)
    assert store.mirror_keypoints(plain) == nothing
    # A second source record of the same picture held under the shared source without them,
    # beside one with them: that source did send keypoints.
    add(shared, 2, pdq(2))
    assert store.mirror_keypoints(shared) == MirrorKeypoints(images=True, keypoints=True)


def test_keypoints_only_on_an_image_pdq_record(store: SQLStore) -> None:
    acme = actor(store, "Acme")
    for refused in (record("ab" * 16, signal="md5", keypoints=b"k"),
                    record(pdq(1), media_type="video", keypoints=b"k")):
        with pytest.raises(InvalidInput, match="keypoints"):
            store.add_records([record(pdq(2)), refused], acme)
    assert store.get_records([1, 2]) == {} and store.keypoint_rows(0, 10) == []


# change log and audit ---------------------------------------------------------------------


def test_changes_since_is_ordered_and_pages(store: SQLStore) -> None:
    acme = actor(store, "Acme")
    ids = [o.id for o in store.add_records([record(pdq(i)) for i in range(5)], acme)]
    store.set_labels(ids[1], ["x"], acme)
    store.set_status(ids[0], "retracted", acme)
    ids += [o.id for o in store.add_records([record(pdq(9))], acme)]

    everything = store.changes_since(0, 1000)
    seqs = [c.seq for c in everything]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert [(c.kind, c.record_id) for c in everything] == [
        *(("add", i) for i in ids[:5]), ("labels", ids[1]), ("retract", ids[0]), ("add", ids[5])]
    assert store.last_seq() == seqs[-1]

    paged, cursor = [], 0
    while page := store.changes_since(cursor, 3):
        assert len(page) <= 3
        paged += page
        cursor = page[-1].seq
    assert paged == everything
    assert store.changes_since(seqs[-1], 10) == []
    with pytest.raises(InvalidInput):
        store.changes_since(0, 0)


def test_empty_store(store: SQLStore) -> None:
    assert store.last_seq() == 0
    assert store.changes_since(0, 10) == []
    assert store.audit_entries() == []
    assert store.counts() == {"signal": {}, "status": {}, "month": {}, "label": {}}


def test_audit_chain_verifies(store: SQLStore) -> None:
    acme = actor(store, "Acme")
    admin = actor(store, "Root", "admin")
    key = store.create_api_key(acme.org_id, "contributor", "p1", "h")
    rid = store.add_records([record(pdq(1)), record(pdq(2))], acme)[0].id
    store.set_labels(rid, ["y"], acme)
    store.set_feedback(rid, admin, "agree", "")
    store.set_status(rid, "retracted", admin, "why")
    store.revoke_api_key(key.id, admin)
    store.audit(None, "index.rebuild", "pdq", "{}")
    store.audit(admin, "export", "feed", "")

    entries = store.audit_entries()
    assert len(entries) == 8
    assert entries[0].prev_hash == GENESIS
    assert chain_problems(entries) == []
    assert [e.id for e in entries] == sorted(e.id for e in entries)
    assert (entries[6].org_id, entries[6].key_id) == (None, None)
    # Paging by id returns the same entries.
    assert store.audit_entries(after_id=entries[2].id, limit=3) == entries[3:6]
    # The check can fail: an edited entry breaks its own hash, a removed one breaks the link.
    edited = [*entries[:3], dataclasses.replace(entries[3], detail='{"added": 0}'), *entries[4:]]
    assert chain_problems(edited) == [f"entry {entries[3].id}: entry_hash does not match its contents"]
    assert chain_problems(entries[:2] + entries[3:]) == [
        f"entry {entries[3].id}: prev_hash does not link to the entry before"]


def test_counts(store: SQLStore) -> None:
    acme, globex = actor(store, "Acme"), actor(store, "Globex")
    out = store.add_records([record(pdq(1), labels=("a", "b")), record(pdq(2), labels=("a",)),
                             record("ef" * 8, signal="phash", labels=("c",))], acme)
    store.add_records([record(pdq(1), labels=("a",))], globex)
    store.set_status(out[1].id, "retracted", acme)
    month = store.get_records([out[0].id])[out[0].id].created_at[:7]
    assert store.counts() == {
        "signal": {"pdq": 3, "phash": 1},
        "status": {"active": 3, "retracted": 1},
        "month": {month: 4},
        "label": {"a": 2, "b": 1, "c": 1},  # the retracted record's labels are not counted
    }


# property: what goes in comes out ---------------------------------------------------------

HEX_BITS = {"pdq": 256, "phash": 64, "md5": 128}
plain_text = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=20)


@st.composite
def new_records(draw: st.DrawFn) -> NewRecord:
    signal = draw(st.sampled_from(sorted(HEX_BITS) + ["vpdq"]))
    bits = HEX_BITS.get(signal, 128)
    hex_ = f"{draw(st.integers(0, 2 ** bits - 1)):0{bits // 4}x}"
    quality = draw(st.none() | st.integers(0, 100))
    frames: tuple[FrameHash, ...] = ()
    if signal == "vpdq":
        frames = tuple(
            FrameHash(i, draw(st.floats(0, 1e5, allow_nan=False)), HashValue(
                "pdq", f"{draw(st.integers(0, 2 ** 256 - 1)):064x}", draw(st.none() | st.integers(0, 100))))
            for i in range(draw(st.integers(0, 4))))
    return NewRecord(
        HashValue(signal, hex_, quality),
        draw(st.sampled_from(["image", "video"])),
        tuple(draw(st.lists(st.sampled_from(["terrorism", "violent_extremism", "x-ü", "a b"]), unique=True))),
        incident=draw(st.none() | plain_text),
        reference=draw(st.none() | plain_text),
        removed_at=draw(st.none() | plain_text),
        frames=frames,
        status=draw(st.sampled_from(["active", "quarantined"])),
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(new_records(), min_size=1, max_size=6))
def test_round_trip(store: SQLStore, batch: list[NewRecord]) -> None:
    who = actor(store, f"org-{uuid.uuid4().hex}")  # a fresh member: no duplicates from earlier examples
    outcomes = store.add_records(batch, who)
    got = store.get_records([o.id for o in outcomes])
    first: dict[tuple[str, str], NewRecord] = {}
    for new, outcome in zip(batch, outcomes):
        key = (new.hash.signal, new.hash.hex)
        assert outcome.duplicate == (key in first)
        sent = first.setdefault(key, new)
        r = got[outcome.id]
        assert (r.signal, r.value, r.quality, r.media_type, r.labels, r.incident, r.reference, r.removed_at,
                r.status, r.org_id) == (
            sent.hash.signal, sent.hash.hex, sent.hash.quality, sent.media_type, sent.labels, sent.incident,
            sent.reference, sent.removed_at, sent.status, who.org_id)
        stored_frames = store.video_frames([outcome.id])[outcome.id]
        assert [(h, q) for _, h, q in stored_frames] == [(f.hash.hex, f.hash.quality) for f in sent.frames]


def settled_answers_give_way_to_commits(reader: SQLStore, writer: SQLStore) -> int:
    """The key check's and the catch-up's answers, asked again and again while nothing is
    committed, then a change and a revocation committed through `writer`: `reader` reads each
    at its next ask. Returns the revoked key's id."""
    acme = actor(writer, "Acme")
    admin = actor(writer, "Root", "admin")
    key = writer.create_api_key(acme.org_id, "consumer", "p1", "h")
    last = reader.last_seq()
    for _ in range(3):
        assert reader.key_revoked(key.id) is False
        assert reader.changes_since(last, 10) == []
    rid = writer.add_records([record(pdq(1))], acme)[0].id
    assert [c.record_id for c in reader.changes_since(last, 10)] == [rid]
    assert reader.key_revoked(key.id) is False
    writer.revoke_api_key(key.id, admin)
    assert reader.key_revoked(key.id) is True
    return key.id


def test_a_revocation_and_a_change_are_read_by_the_next_check_after_settled_answers(store: SQLStore) -> None:
    # The key check and the index's catch-up ask these on every request; a store may remember
    # the settled answers (SQLite does, while nothing is committed), never past a commit.
    key_id = settled_answers_give_way_to_commits(store, store)
    assert store.key_revoked(key_id + 100) is True  # no such key
    with pytest.raises(InvalidInput):
        store.changes_since(store.last_seq(), 0)


def test_another_connections_commits_are_read_at_once_after_settled_answers(tmp_path: Path) -> None:
    # Another process (an admin's `hashdb keys revoke`, an import) writes through a connection
    # of its own: the reader's settled answers must not outlive its commit.
    from hashdb.store.sqlite_store import SQLiteStore

    server, other = SQLiteStore(tmp_path / "db.sqlite"), SQLiteStore(tmp_path / "db.sqlite")
    try:
        key_id = settled_answers_give_way_to_commits(server, other)
        # And from another thread of the server, with its own reader.
        seen: list[bool] = []
        thread = threading.Thread(target=lambda: seen.append(server.key_revoked(key_id)))
        thread.start()
        thread.join()
        assert seen == [True]
    finally:
        server.close()
        other.close()


def test_a_keypoint_row_id_is_never_given_again(store: SQLStore) -> None:
    # A keypoint index follows the rows by id (service/appended_rows.py): a row stored under the
    # id of the newest one, deleted by a retraction, would never reach a process that had read
    # it, nor one whose snapshot covers that id.
    acme = actor(store, "Acme")
    _, last = (o.id for o in store.add_records([record(pdq(1), keypoints=b"\x01" * 90),
                                               record(pdq(2), keypoints=b"\x02" * 90)], acme))
    newest = store.keypoint_rows(0, 10)[-1][0]
    store.set_status(last, "retracted", acme)
    (added,) = (o.id for o in store.add_records([record(pdq(3), keypoints=b"\x03" * 90)], acme))
    assert [(r, d) for _, r, d in store.keypoint_rows(newest, 10)] == [(added, b"\x03" * 90)]
