"""An admin resolves a dispute in a record's favour (found in trial: there was no way to). Before,
`release` put a record back to active and applied every vote again, so a disputed record an
admin had reviewed and upheld went straight back to disputed. `uphold` is the ruling: the record
is active, the votes cast before it no longer dispute it (they stay on the record and in its
counts), and votes cast after it count as usual. Over both stores."""

from __future__ import annotations

import json

import pytest

from hashdb.errors import Conflict, Forbidden, InvalidInput, NotFound
from hashdb.types import HashValue, Submission
from support import principal

LABELS = ("glorification",)


def _disputed(service) -> int:
    """alice's record, disputed by bob's and carol's disagreement (the default rule: at least
    two voting organisations, half of them against)."""
    alice = principal(service, "alice", "contributor")
    [shared] = service.submit([Submission("x", LABELS, (HashValue("md5", "ab" * 16),))], alice)
    record_id = shared.ids[0]
    service.feedback(record_id, principal(service, "bob", "consumer"), "disagree", "a news still")
    record = service.feedback(record_id, principal(service, "carol", "consumer"), "false_positive")
    assert record.status == "disputed"
    return record_id


def _admin(service):
    return principal(service, "ops", "admin")


def _status(service, record_id: int) -> str:
    return service.store.get_records([record_id])[record_id].status


def test_an_upheld_record_is_active_and_keeps_its_votes(any_service):
    service = any_service
    record_id = _disputed(service)
    record = service.uphold(record_id, _admin(service), "reviewed: the attacker's video, label right")
    assert record.status == "active"
    # The votes stay: members and partners read what was said, the status says what was ruled.
    assert (record.agree, record.disagree, record.false_positive) == (0, 1, 1)
    votes = service.record_view(record_id, _admin(service)).votes
    assert [(v.org_name, v.verdict, v.overruled_at is not None) for v in votes] == [
        ("bob", "disagree", True), ("carol", "false_positive", True)]


def test_a_release_after_the_ruling_does_not_dispute_it_again(any_service):
    # The trial's path: the record is held for review, then released; the votes before the
    # ruling no longer count, so it comes back active.
    service = any_service
    record_id = _disputed(service)
    admin = _admin(service)
    service.uphold(record_id, admin, "reviewed")
    service.quarantine(record_id, admin, "second look")
    assert service.release(record_id, admin, "still right").status == "active"


def test_a_release_without_a_ruling_still_applies_the_votes(any_service):
    service = any_service
    record_id = _disputed(service)
    admin = _admin(service)
    service.quarantine(record_id, admin, "held for review")
    assert service.release(record_id, admin, "back").status == "disputed"


def test_votes_cast_after_the_ruling_count_as_usual(any_service):
    service = any_service
    record_id = _disputed(service)
    service.uphold(record_id, _admin(service), "reviewed")
    dave, erin = principal(service, "dave", "consumer"), principal(service, "erin", "consumer")
    # One new vote against is one of one: fewer than the two votes a dispute needs.
    assert service.feedback(record_id, dave, "disagree").status == "active"
    # A second is a new wave of disagreement: disputed again.
    record = service.feedback(record_id, erin, "false_positive")
    assert record.status == "disputed"
    assert (record.agree, record.disagree, record.false_positive) == (0, 2, 2)


def test_a_vote_cast_again_after_the_ruling_stands_again(any_service):
    service = any_service
    record_id = _disputed(service)
    service.uphold(record_id, _admin(service), "reviewed")
    bob = principal(service, "bob", "consumer")
    # bob says it again after the ruling: one standing vote against, not yet a dispute.
    assert service.feedback(record_id, bob, "disagree", "still a news still").status == "active"
    assert service.feedback(record_id, principal(service, "dave", "consumer"), "disagree").status == "disputed"
    votes = {v.org_name: v.overruled_at for v in service.record_view(record_id, _admin(service)).votes}
    assert votes["bob"] is None and votes["carol"] is not None and votes["dave"] is None


def test_agreement_after_the_ruling_outweighs_nothing_overruled(any_service):
    # Overruled votes neither dispute nor weigh against later ones: two new agrees and one new
    # disagree stand at one of three.
    service = any_service
    record_id = _disputed(service)
    service.uphold(record_id, _admin(service), "reviewed")
    for org, verdict in (("dave", "agree"), ("erin", "agree"), ("frank", "disagree")):
        record = service.feedback(record_id, principal(service, org, "consumer"), verdict)
    assert record.status == "active"


def test_the_ruling_is_in_the_audit_log_and_the_history_with_the_reason(any_service):
    service = any_service
    record_id = _disputed(service)
    admin = _admin(service)
    service.uphold(record_id, admin, "reviewed: genuine propaganda")
    entries, orgs = service.audit_log(admin)
    [ruling] = [e for e in entries if e.action == "dispute.uphold"]
    assert ruling.target == f"record:{record_id}" and orgs[ruling.org_id] == "ops"
    assert json.loads(ruling.detail) == {"from": "disputed", "to": "active", "reason": "reviewed: genuine propaganda",
                                         "overruled": 2}
    history = service.record_view(record_id, admin).history
    assert [e.action for e in history][-1] == "dispute.uphold"
    assert service.verify_audit(admin).ok
    # Partners' mirrors learn the status from the change feed.
    changes = service.store.changes_since(0, 100)
    assert (changes[-1].kind, changes[-1].record_id, changes[-1].status) == ("status", record_id, "active")


def test_the_console_offers_the_ruling_to_admins_on_disputed_records_only(any_service):
    service = any_service
    record_id = _disputed(service)
    admin = _admin(service)
    assert "uphold" in service.record_view(record_id, admin).actions
    assert "uphold" not in service.record_view(record_id, principal(service, "alice", "contributor")).actions
    service.uphold(record_id, admin, "reviewed")
    assert "uphold" not in service.record_view(record_id, admin).actions


def test_what_may_not_be_upheld_is_refused_and_nothing_is_written(any_service):
    service = any_service
    record_id = _disputed(service)
    admin = _admin(service)
    before = len(service.store.audit_entries())
    with pytest.raises(Forbidden, match="the contributor role may not uphold a disputed record"):
        service.uphold(record_id, principal(service, "alice", "contributor"), "mine is right")
    with pytest.raises(InvalidInput, match="say why the record stands"):
        service.uphold(record_id, admin, "  ")
    with pytest.raises(InvalidInput, match="control or unprintable"):
        service.uphold(record_id, admin, "ok\x1b[2J")
    with pytest.raises(NotFound, match="no hash record with id 999"):
        service.uphold(999, admin, "reviewed")
    assert len(service.store.audit_entries()) == before and _status(service, record_id) == "disputed"

    service.quarantine(record_id, admin, "held")
    with pytest.raises(Conflict, match=f"hash record {record_id} is quarantined, not disputed.*release it first"):
        service.uphold(record_id, admin, "reviewed")
    alice = principal(service, "alice", "contributor")
    [other] = service.submit([Submission("y", LABELS, (HashValue("md5", "cd" * 16),))], alice)
    with pytest.raises(Conflict, match=f"hash record {other.ids[0]} is active, not disputed"):
        service.uphold(other.ids[0], admin, "reviewed")


def test_a_mirrored_record_is_ruled_on_at_its_source(any_service):
    # A mirror's record takes its status (and its source's votes) from the feed: a ruling here
    # would be undone by the next sync that changes it.
    from hashdb.store.rows import now
    from hashdb.types import FeedEntry, Votes

    service = any_service
    admin = _admin(service)
    at = now()
    entry = FeedEntry(1, "add", 7, "md5", "ef" * 16, None, "image", LABELS, "disputed", None, at, at,
                      votes=Votes(0, 2, 0))
    service.store.apply_feed("https://source.example", "mirror:source.example", [entry], "c1", admin)
    [mirrored] = service.store.find_values("md5", ["ef" * 16])
    with pytest.raises(Conflict, match=f"hash record {mirrored.id} is mirrored from https://source.example"):
        service.uphold(mirrored.id, admin, "reviewed")
    assert _status(service, mirrored.id) == "disputed"


# The organisation whose submission the votes judge does not rule on them (found in trial): an
# admin key of the record's organisation, or of one that shared the same hash too, is refused.

def test_an_admin_of_the_records_organisation_may_not_uphold_it(any_service):
    service = any_service
    record_id = _disputed(service)
    alice_admin = principal(service, "alice", "admin")
    before = len(service.store.audit_entries())
    with pytest.raises(Forbidden, match=f"record {record_id} is your organisation's own: another organisation's "
                                        "admin must rule"):
        service.uphold(record_id, alice_admin, "mine is right")
    assert _status(service, record_id) == "disputed" and len(service.store.audit_entries()) == before
    assert "uphold" not in service.record_view(record_id, alice_admin).actions
    assert service.uphold(record_id, _admin(service), "reviewed").status == "active"


def test_an_admin_of_an_organisation_that_shared_the_hash_too_may_not_uphold_it(any_service):
    service = any_service
    record_id = _disputed(service)
    dave = principal(service, "dave", "contributor")
    [copy] = service.submit([Submission("x", LABELS, (HashValue("md5", "ab" * 16),))], dave)
    dave_admin = principal(service, "dave", "admin")
    with pytest.raises(Forbidden, match=f"shared by your organisation too \\(record {copy.ids[0]}\\): another "
                                        "organisation's admin must rule"):
        service.uphold(record_id, dave_admin, "ours too, it is right")
    assert _status(service, record_id) == "disputed"
    assert "uphold" not in service.record_view(record_id, dave_admin).actions
    # Its copy retracted, it judges nothing of its own: it may rule.
    service.retract(copy.ids[0], dave)
    assert "uphold" in service.record_view(record_id, dave_admin).actions
    assert service.uphold(record_id, dave_admin, "reviewed").status == "active"


def test_the_ruling_overrules_the_votes_against_and_the_agree_votes_stand(any_service):
    # Before, every vote was overruled, agrees too: the dissenters voting again disputed the
    # record at once, while the members who agreed had to vote again (found in trial).
    service = any_service
    alice = principal(service, "alice", "contributor")
    [shared] = service.submit([Submission("x", LABELS, (HashValue("md5", "ab" * 16),))], alice)
    record_id = shared.ids[0]
    votes = (("bob", "disagree"), ("carol", "false_positive"), ("frank", "disagree"), ("gina", "disagree"),
             ("dave", "agree"), ("erin", "agree"), ("hank", "agree"))
    for org, verdict in votes:
        record = service.feedback(record_id, principal(service, org, "consumer"), verdict)
    assert record.status == "disputed"  # four of seven against
    admin = _admin(service)
    service.uphold(record_id, admin, "reviewed")
    overruled = {v.org_name: v.overruled_at is not None for v in service.record_view(record_id, admin).votes}
    assert overruled == {org: verdict != "agree" for org, verdict in votes}
    ruling = [e for e in service.store.audit_entries() if e.action == "dispute.uphold"][-1]
    assert json.loads(ruling.detail)["overruled"] == 4
    assert service.store.standing_votes(record_id).agree == 3
    # Two dissenters voting again are two of five: it stands.
    service.feedback(record_id, principal(service, "bob", "consumer"), "disagree", "still a news still")
    assert service.feedback(record_id, principal(service, "carol", "consumer"), "disagree").status == "active"
