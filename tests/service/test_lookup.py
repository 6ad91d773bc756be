"""Lookup semantics of the service: thresholds, visibility, retraction, restart."""

from __future__ import annotations

import dataclasses
import random

import pytest

from hashdb.config import Settings
from hashdb.errors import Forbidden, InvalidInput, LowQuality, NotFound, InvalidHash
from hashdb.bits import hex_to_codes
from hashdb.index.indexset import IndexSet
from hashdb.service import HashDB
from hashdb.store.sqlite_store import SQLiteStore
from hashdb.types import HashValue, Query, Submission

from support import INDEX_FACTORY, flip, principal, random_pdq

LABELS = ("glorification",)


def submit_pdq(service, actor, hex_value, quality=90):
    [result] = service.submit([Submission(hex_value, LABELS, (HashValue("pdq", hex_value, quality),))], actor)
    return result


def test_threshold_is_inclusive_at_31_and_excludes_32(service):
    rng = random.Random(1)
    alice = principal(service, "alice", "contributor")
    base = random_pdq(rng)
    stored = submit_pdq(service, alice, base)
    reader = principal(service, "bob", "consumer")
    near, far = flip(base, 31, rng), flip(base, 32, rng)
    r_near, r_far = service.lookup([Query("near", (HashValue("pdq", near),)),
                                    Query("far", (HashValue("pdq", far),))], reader)
    assert r_near.matched and r_near.matches[0].id == stored.ids[0] and r_near.matches[0].distance == 31
    assert not r_far.matched and r_far.matches == ()


def test_tighter_threshold_allowed_looser_refused(service):
    rng = random.Random(2)
    alice = principal(service, "alice", "contributor")
    base = random_pdq(rng)
    submit_pdq(service, alice, base)
    query = [Query("q", (HashValue("pdq", flip(base, 20, rng)),))]
    assert service.lookup(query, alice)[0].matched
    assert not service.lookup(query, alice, {"pdq": 10})[0].matched
    with pytest.raises(InvalidInput):
        service.lookup(query, alice, {"pdq": 40})
    # The ceiling is exactly the default: 31 may be asked for, 32 may not.
    assert service.lookup(query, alice, {"pdq": 31})[0].matched
    for signal, past in (("pdq", 32), ("phash", 11), ("dhash", 11), ("vpdq", 32)):
        with pytest.raises(InvalidInput, match=f"may not exceed {past - 1}"):
            service.lookup(query, alice, {signal: past})


@pytest.mark.parametrize("signal", ["phash", "dhash"])
def test_imagehash_threshold_is_inclusive_at_10_and_excludes_11(service, signal):
    rng = random.Random(11)
    alice = principal(service, "alice", "contributor")
    bits = [1] * 32 + [0] * 32
    rng.shuffle(bits)
    base = int("".join(map(str, bits)), 2)

    def flipped(k: int) -> str:
        value = base
        for bit in rng.sample(range(64), k):
            value ^= 1 << bit
        return f"{value:016x}"

    [stored] = service.submit([Submission("x", LABELS, (HashValue(signal, f"{base:016x}"),))], alice)
    near, far = service.lookup([Query("near", (HashValue(signal, flipped(10)),)),
                                Query("far", (HashValue(signal, flipped(11)),))], alice)
    assert [(m.id, m.distance) for m in near.matches] == [(stored.ids[0], 10)]
    assert not far.matched


@pytest.mark.parametrize("signal", ["phash", "dhash"])
def test_a_query_carrying_a_pdq_gets_no_64_bit_matches(service, signal):
    # Measured on clip art and flags (BENCHMARKS.md "Matching quality"): 64-bit matches of
    # queries that also carry a PDQ were most false positives and wrong matches, even at 0 bits.
    rng = random.Random(12)
    alice = principal(service, "alice", "contributor")
    value = HashValue(signal, "5a5a5a5a0f0f3c3c")
    [stored] = service.submit([Submission("x", LABELS, (value,))], alice)
    unrelated_pdq = HashValue("pdq", random_pdq(rng), 90)
    alone, with_pdq = service.lookup([Query("alone", (value,)), Query("both", (value, unrelated_pdq))], alice)
    assert [m.id for m in alone.matches] == [stored.ids[0]]
    assert not with_pdq.matched
    # A deployment may keep them up to a distance instead.
    kept = HashDB(dataclasses.replace(service.settings, imagehash_threshold_with_pdq=2), service.store,
                  service.indexes, service.taxonomy, service.server_secret)
    [both] = kept.lookup([Query("both", (value, unrelated_pdq))], alice)
    assert [m.id for m in both.matches] == [stored.ids[0]]


def test_retraction_stops_matching_at_once_and_only_owner_or_admin(service):
    rng = random.Random(3)
    alice, bob = principal(service, "alice", "contributor"), principal(service, "bob", "contributor")
    base = random_pdq(rng)
    record_id = submit_pdq(service, alice, base).ids[0]
    query = [Query("q", (HashValue("pdq", base),))]
    assert service.lookup(query, bob)[0].matched
    with pytest.raises(Forbidden):
        service.retract(record_id, bob)
    service.retract(record_id, alice, "mistake")
    assert not service.lookup(query, bob)[0].matched
    # An admin of another organisation may retract too, with the same immediate effect.
    admin = principal(service, "ops", "admin")
    other = random_pdq(rng)
    other_id = submit_pdq(service, alice, other).ids[0]
    other_query = [Query("q", (HashValue("pdq", other),))]
    assert service.lookup(other_query, bob)[0].matched
    retracted = service.retract(other_id, admin, "operator decision")
    assert (retracted.id, retracted.status) == (other_id, "retracted")
    assert not service.lookup(other_query, bob)[0].matched


def test_retracting_again_answers_the_record_and_writes_nothing_more(service):
    rng = random.Random(31)
    alice, bob = principal(service, "alice", "contributor"), principal(service, "bob", "contributor")
    record_id = submit_pdq(service, alice, random_pdq(rng)).ids[0]
    service.retract(record_id, alice, "mistake")
    seq = service.store.last_seq()
    again = service.retract(record_id, alice, "retried")  # a script retrying after a timeout
    assert (again.id, again.status) == (record_id, "retracted")
    assert service.store.last_seq() == seq
    # Another organisation learns nothing from it: the record is gone for it.
    with pytest.raises(NotFound):
        service.retract(record_id, bob)


def test_quarantined_visible_to_admins_only_and_answers_are_identical(service):
    rng = random.Random(4)
    alice = principal(service, "alice", "contributor")
    admin = principal(service, "ops", "admin")
    base = random_pdq(rng)
    record_id = submit_pdq(service, alice, base).ids[0]
    service.store.set_status(record_id, "quarantined", admin, "review")
    hidden = service.lookup([Query("q", (HashValue("pdq", base),))], alice)[0]
    absent = service.lookup([Query("q", (HashValue("pdq", random_pdq(rng)),))], alice)[0]
    assert hidden == absent and not hidden.matched
    assert service.lookup([Query("q", (HashValue("pdq", base),))], admin)[0].matched


def test_support_counts_organisations_and_duplicates_are_reported(service):
    rng = random.Random(5)
    alice, bob = principal(service, "alice", "contributor"), principal(service, "bob", "contributor")
    base = random_pdq(rng)
    first = submit_pdq(service, alice, base)
    again = submit_pdq(service, alice, base)
    other = submit_pdq(service, bob, base)
    assert again.duplicate and again.ids == first.ids
    assert not other.duplicate and other.ids != first.ids
    [result] = service.lookup([Query("q", (HashValue("pdq", base),))], alice)
    assert {m.id for m in result.matches} == {first.ids[0], other.ids[0]}
    assert all(m.support == 2 for m in result.matches)


def test_exact_signals_match_on_equality(service):
    alice = principal(service, "alice", "contributor")
    md5 = "0" * 31 + "1"
    service.submit([Submission("m", LABELS, (HashValue("md5", md5),))], alice)
    hit, miss = service.lookup([Query("a", (HashValue("md5", md5),)), Query("b", (HashValue("md5", "0" * 32),))], alice)
    assert hit.matched and hit.matches[0].distance == 0 and not miss.matched


def test_low_quality_and_degenerate_pdq_refused_and_nothing_stored(service):
    rng = random.Random(6)
    alice = principal(service, "alice", "contributor")
    good = random_pdq(rng)
    with pytest.raises(LowQuality):
        service.submit([Submission("ok", LABELS, (HashValue("pdq", good, 90),)),
                        Submission("bad", LABELS, (HashValue("pdq", random_pdq(rng), 49),))], alice)
    with pytest.raises(InvalidHash):
        service.submit([Submission("zero", LABELS, (HashValue("pdq", "0" * 64, 100),))], alice)
    assert service.store.last_seq() == 0


def test_consumers_cannot_submit_and_unknown_records_are_not_found(service):
    reader = principal(service, "reader", "consumer")
    with pytest.raises(Forbidden):
        service.submit([Submission("x", LABELS, (HashValue("md5", "1" * 32),))], reader)
    with pytest.raises(NotFound):
        service.feedback(999, reader, "agree")


def test_index_after_restart_equals_store(tmp_path):
    rng = random.Random(7)

    def open_db():
        store = SQLiteStore(tmp_path / "db.sqlite")
        db = HashDB(Settings(), store, IndexSet(store, tmp_path / "index", factory=INDEX_FACTORY))
        db.load_index()
        return db

    db = open_db()
    alice = principal(db, "alice", "contributor")
    values = [random_pdq(rng) for _ in range(50)]
    results = db.submit([Submission(v, LABELS, (HashValue("pdq", v, 90),)) for v in values], alice)
    db.rebuild_index()  # snapshot covers these 50
    late = random_pdq(rng)
    late_id = submit_pdq(db, alice, late).ids[0]  # after the snapshot: must be replayed
    db.retract(results[0].ids[0], alice)
    db.store.close()

    db = open_db()
    found = db.indexes.indexes["pdq"].search(hex_to_codes(values + [late], 256), 0)
    indexed = {i for batch in found for i, _ in batch}
    expected = {r.ids[0] for r in results[1:]} | {late_id}
    assert indexed == expected



def test_an_index_that_outgrows_brute_force_is_rebuilt_as_faiss(tmp_path):
    from hashdb.index.faiss_index import FaissIndex
    from hashdb.index.linear import LinearIndex
    from hashdb.index.registry import LINEAR_MAX_SIZE

    rng = random.Random(8)
    store = SQLiteStore(tmp_path / "db.sqlite")
    db = HashDB(Settings(), store, IndexSet(store))  # production factory: make_index
    db.load_index()
    alice = principal(db, "alice", "contributor")
    assert isinstance(db.indexes.indexes["pdq"], LinearIndex)
    values = [random_pdq(rng) for _ in range(LINEAR_MAX_SIZE + 1)]
    db.submit([Submission(v, LABELS, (HashValue("pdq", v, 90),)) for v in values], alice)
    probe = flip(values[-1], 5, rng)
    [result] = db.lookup([Query("q", (HashValue("pdq", probe),))], alice)
    assert isinstance(db.indexes.indexes["pdq"], FaissIndex)
    assert len(db.indexes.indexes["pdq"]) == len(values)
    assert [m.distance for m in result.matches] == [5]
