"""The trust-and-safety store methods behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from hashdb.errors import Conflict, InvalidInput
from hashdb.types import HashValue, NewRecord, Principal


def setup(store):
    org = store.ensure_org("a")
    other = store.ensure_org("b")
    actor = Principal(org.id, org.name, "admin")
    outcomes = store.add_records(
        [NewRecord(HashValue("md5", f"{n:032x}"), "image", ("glorification",)) for n in range(3)], actor)
    return actor, other, [o.id for o in outcomes]


def test_safelist_add_is_idempotent_and_versioned(any_store):
    actor, _, _ = setup(any_store)
    assert any_store.safelist_version() == (0, 0)
    values = [HashValue("md5", "a" * 32), HashValue("pdq", "f0" * 32), HashValue("md5", "a" * 32)]
    assert any_store.add_safelist(values, "benign", actor) == 2
    first = any_store.safelist_version()
    assert any_store.add_safelist(values[:1], "again", actor) == 0
    assert any_store.safelist_version() == first
    assert any_store.add_safelist([HashValue("md5", "b" * 32)], "", actor) == 1
    assert any_store.safelist_version() != first
    assert [v for _, v in any_store.safelist_values("md5")] == ["a" * 32, "b" * 32]
    assert [e.action for e in any_store.audit_entries()][-3:] == ["safelist.add"] * 3


def test_quarantine_then_resolve(any_store):
    actor, _, (r1, r2, r3) = setup(any_store)
    assert any_store.quarantine(r1, "manual", "report", actor) is True
    assert any_store.quarantine(r1, "spike", "again", None) is False  # already held
    any_store.set_status(r2, "retracted", actor)
    assert any_store.quarantine(r2, "manual", "x", actor) is False
    with pytest.raises(InvalidInput):
        any_store.quarantine(r3, "whim", "x", actor)
    [held] = any_store.quarantined()
    assert (held.record.id, held.record.status, held.rule, held.reason) == (r1, "quarantined", "manual", "report")
    any_store.resolve_quarantine(r1, True, actor, "fine")
    assert any_store.get_records([r1])[r1].status == "active"
    assert any_store.quarantined() == []
    with pytest.raises(Conflict):
        any_store.resolve_quarantine(r1, False, actor, "no")
    any_store.quarantine(r1, "spike", "burst", None)
    any_store.resolve_quarantine(r1, False, actor, "benign")
    assert any_store.get_records([r1])[r1].status == "retracted"
    kinds = [(c.kind, c.status) for c in any_store.changes_since(0, 100) if c.record_id == r1]
    assert kinds == [("add", "active"), ("status", "quarantined"), ("status", "active"),
                     ("status", "quarantined"), ("retract", "retracted")]


def test_note_quarantine_gives_a_reason_to_a_record_stored_quarantined(any_store):
    actor, _, _ = setup(any_store)
    [outcome] = any_store.add_records(
        [NewRecord(HashValue("md5", "e" * 32), "image", ("glorification",), status="quarantined")], actor)
    [bare] = any_store.quarantined()
    assert (bare.record.id, bare.reason, bare.at) == (outcome.id, "", "")
    any_store.note_quarantine([outcome.id], "safelist", "near entry 1", actor)
    [held] = any_store.quarantined()
    assert (held.rule, held.reason) == ("safelist", "near entry 1") and held.at


def test_count_matches_sums_per_window_and_drops_old_buckets(any_store):
    actor, other, (r1, r2, _) = setup(any_store)
    totals = any_store.count_matches(
        [(r1, "2026-01-01T10", actor.org_id, 2), (r1, "2026-01-01T11", other.id, 3), (r2, "2026-01-01T09", actor.org_id, 7)],
        "2026-01-01T10",
    )
    assert totals == {r1: (5, 2)}  # r2's only bucket is before the window
    totals = any_store.count_matches([(r1, "2026-01-01T11", other.id, 1), (r2, "2026-01-01T12", other.id, 1)],
                                     "2026-01-01T11")
    assert totals == {r1: (4, 1), r2: (1, 1)}
    # The 10:00 bucket was dropped: widening the window again does not bring it back.
    assert any_store.count_matches([(r1, "2026-01-01T11", other.id, 0)], "2026-01-01T00") == {r1: (4, 1)}
