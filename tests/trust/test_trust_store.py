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
    assert any_store.safelist_version() == (0, 0, "", "")
    values = [HashValue("md5", "a" * 32), HashValue("pdq", "f0" * 32), HashValue("md5", "a" * 32)]
    assert any_store.add_safelist(values, "benign", actor) == 2
    first = any_store.safelist_version()
    assert any_store.add_safelist(values[:1], "again", actor) == 0
    assert any_store.safelist_version() == first
    assert any_store.add_safelist([HashValue("md5", "b" * 32)], "", actor) == 1
    assert any_store.safelist_version() != first
    assert [v for _, v in any_store.safelist_values("md5")] == ["a" * 32, "b" * 32]
    assert [e.action for e in any_store.audit_entries()][-3:] == ["safelist.add"] * 3


def test_safelist_listers_name_the_admin_and_key_that_listed_each_entry(any_store):
    actor, other, _ = setup(any_store)
    keyed = Principal(other.id, other.name, "admin", 7)
    any_store.add_safelist([HashValue("md5", "a" * 32)], "", actor)  # locally: no key
    any_store.add_safelist([HashValue("md5", "b" * 32)], "", keyed)
    (first, _), (second, _) = any_store.safelist_values("md5")
    assert any_store.safelist_listers([second, first, 99]) == {first: actor, second: keyed}
    # Listed again after its removal, an entry is the new lister's.
    any_store.remove_safelist([first], actor, "")
    any_store.add_safelist([HashValue("md5", "a" * 32)], "", keyed)
    assert any_store.safelist_listers([first]) == {first: keyed}


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
    assert totals == {r1: (3, 2)}  # each organisation's, largest first; r2's only bucket is before the window
    totals = any_store.count_matches([(r1, "2026-01-01T11", other.id, 1), (r2, "2026-01-01T12", other.id, 1)],
                                     "2026-01-01T11")
    assert totals == {r1: (4,), r2: (1,)}
    # The 10:00 bucket was dropped: widening the window again does not bring it back.
    assert any_store.count_matches([(r1, "2026-01-01T11", other.id, 0)], "2026-01-01T00") == {r1: (4,)}


def test_incidents_open_close_find(any_store):
    actor, _, _ = setup(any_store)
    opened = any_store.open_incident("attack-1", "stream", actor)
    with pytest.raises(Conflict):
        any_store.open_incident("attack-1", "", actor)
    assert any_store.find_incident("attack-1") == opened and any_store.get_incident(opened.id) == opened
    closed = any_store.close_incident(opened.id, actor)
    assert (closed.status, closed.closed_at is not None) == ("closed", True)
    assert any_store.close_incident(opened.id, actor) == closed  # closing twice changes nothing
    assert any_store.incidents(open_only=True) == [] and any_store.incidents() == [closed]
    assert [e.action for e in any_store.audit_entries()][-2:] == ["incident.open", "incident.close"]


def test_outbox_claim_lease_finish(any_store):
    actor, other, (r1, r2, _) = setup(any_store)
    hook = any_store.add_webhook(other.id, "https://hooks.example.com/x", "salt", actor)
    idle = any_store.add_webhook(other.id, "https://hooks.example.com/y", "salt2", actor)
    # Webhooks carry hash values: only an organisation holding a partner (or admin) key gets them.
    any_store.enqueue_deliveries([(r1, '{"n": 1}')])
    assert any_store.delivery_states() == {}
    any_store.create_api_key(other.id, "partner", "0123456789ab", "not a real hash")
    any_store.enqueue_deliveries([(r1, '{"n": 1}'), (r2, '{"n": 2}')])
    any_store.enqueue_deliveries([(r1, '{"n": 1}')])  # already queued: ignored
    assert any_store.delivery_states() == {"pending": 4}
    t = ["2999-01-01T00:00:0%d.000000+00:00" % n for n in range(10)]
    [claimed] = any_store.claim_subscribers(t[1], t[5], 1)
    assert (claimed.webhook_id, claimed.url, claimed.failures) == (hook.id, "https://hooks.example.com/x", 0)
    assert [s.webhook_id for s in any_store.claim_subscribers(t[1], t[5], 10)] == [idle.id]
    assert any_store.claim_subscribers(t[2], t[5], 10) == []  # both held until t5
    first, second = any_store.due_deliveries(hook.id, t[2], 10)
    assert [(d.webhook_id, d.payload, d.attempts) for d in (first, second)] == [
        (hook.id, '{"n": 1}', 0), (hook.id, '{"n": 2}', 0)]
    # A failure: the record is due again at t3, its subscriber held (backing off) until t4.
    any_store.finish_delivery(first.id, t[2], 500, "HTTP 500", 3, False, t[3], t[4], 1)
    assert any_store.claim_subscribers(t[3], t[6], 10) == []
    [again] = any_store.claim_subscribers(t[4], t[6], 10)
    assert (again.webhook_id, again.failures) == (hook.id, 1)
    assert [(d.id, d.attempts) for d in any_store.due_deliveries(hook.id, t[4], 10)] == [(second.id, 0), (first.id, 1)]
    any_store.finish_delivery(first.id, t[4], 200, "", 2, True, None, t[6], 0)
    any_store.release_subscriber(hook.id, t[4])
    assert any_store.delivery_states() == {"delivered": 1, "pending": 3}
    assert [(a.record_id, a.status_code) for a in any_store.delivery_attempts()] == [(r1, 500), (r1, 200)]
    assert [s.failures for s in any_store.claim_subscribers(t[6], t[9], 10) if s.webhook_id == hook.id] == [0]
    any_store.remove_webhook(hook.id, actor)
    any_store.remove_webhook(idle.id, actor)
    assert any_store.claim_subscribers(t[9], t[9], 10) == []  # a removed webhook gets nothing more


def test_report_counts(any_store):
    actor, other, (r1, r2, r3) = setup(any_store)
    any_store.set_status(r3, "retracted", actor)
    any_store.quarantine(r1, "spike", "burst", None)
    any_store.quarantine(r2, "manual", "report", actor)
    any_store.resolve_quarantine(r2, True, actor, "fine")
    any_store.open_incident("x", "", actor)
    any_store.add_safelist([HashValue("md5", "f" * 32)], "", actor)
    assert any_store.contributor_counts() == {"a": 2}
    assert any_store.integrity_counts() == {
        "quarantine_rule": {"manual": 1, "spike": 1},
        "quarantine_outcome": {"pending": 1, "released": 1},
        "incident": {"open": 1},
        "safelist": {"md5": 1},
    }


def test_outbox_says_what_became_of_a_record_and_queues_a_failed_one_again(any_store):
    actor, other, (r1, r2, _) = setup(any_store)
    hook = any_store.add_webhook(other.id, "https://hooks.example.com/x", "salt", actor)
    any_store.create_api_key(other.id, "partner", "0123456789ab", "not a real hash")
    any_store.enqueue_deliveries([(r1, '{"n": 1}'), (r2, '{"n": 2}')])
    any_store.set_status(r2, "retracted", actor)
    at = "2999-01-01T00:00:00.000000+00:00"
    due = any_store.due_deliveries(hook.id, at, 10)
    assert [(d.payload, d.record_status) for d in due] == [('{"n": 1}', "active"), ('{"n": 2}', "retracted")]
    any_store.finish_delivery(due[1].id, at, None, "not sent", 0, False, None, at, 0)
    any_store.enqueue_deliveries([(r2, '{"n": 3}')])  # queued before: left alone
    assert any_store.delivery_states() == {"pending": 1, "failed": 1}
    any_store.enqueue_deliveries([(r2, '{"n": 3}')], again=True)  # a release: due again, from 0
    assert any_store.delivery_states() == {"pending": 2}
    assert [(d.payload, d.attempts) for d in any_store.due_deliveries(hook.id, at, 10)] == [
        ('{"n": 1}', 0), ('{"n": 3}', 0)]
