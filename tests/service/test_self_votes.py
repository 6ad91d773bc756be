"""A contributor could vote `agree` on its own record and so raise the precision estimate that
members read as other members' judgement (a trial found it). Votes by the record's own
organisation are refused (403), whichever of its keys sends them; an owner retracts or
relabels instead."""

from __future__ import annotations

import pytest

from hashdb.errors import Forbidden
from hashdb.trust import policy
from hashdb.types import HashValue, Submission
from support import principal


def _shared(service) -> int:
    alice = principal(service, "alice", "contributor")
    return service.submit([Submission("x", ("glorification",), (HashValue("md5", "ab" * 16),))], alice)[0].ids[0]


@pytest.mark.parametrize("role", ["contributor", "consumer", "partner", "admin"])
@pytest.mark.parametrize("verdict", ["agree", "disagree", "false_positive"])
def test_the_owning_organisation_may_not_vote_on_its_record(service, role, verdict):
    record_id = _shared(service)
    with pytest.raises(Forbidden, match="your organisation's own.*retract or relabel it instead"):
        service.feedback(record_id, principal(service, "alice", role), verdict)
    record = service.store.get_records([record_id])[record_id]
    assert (record.agree, record.disagree, record.false_positive) == (0, 0, 0)
    assert policy.precision_estimate(record) == 0.5
    assert "feedback" not in service.record_view(record_id, principal(service, "alice", role)).actions


def test_another_organisation_still_votes(service):
    record_id = _shared(service)
    record = service.feedback(record_id, principal(service, "bob", "consumer"), "agree")
    assert record.agree == 1 and policy.precision_estimate(record) == 2 / 3
    assert "feedback" in service.record_view(record_id, principal(service, "bob", "consumer")).actions


# Co-sharers. Each member's submission of a hash is a record of its own (records are unique per
# signal, value and organisation), and every member holding a live one counts in each copy's
# support. A member that shared the hash too voting "agree" on another's copy counted itself
# twice in what consumers read (found in trial): refused as the owner's vote is.

MD5 = HashValue("md5", "ab" * 16)


def _co_shared(service) -> tuple[int, int]:
    alice, bob = principal(service, "alice", "contributor"), principal(service, "bob", "contributor")
    [first] = service.submit([Submission("x", ("glorification",), (MD5,))], alice)
    [second] = service.submit([Submission("x", ("glorification",), (MD5,))], bob)
    assert first.ids != second.ids and not second.duplicate  # a record each
    return first.ids[0], second.ids[0]


@pytest.mark.parametrize("role", ["contributor", "consumer", "partner", "admin"])
@pytest.mark.parametrize("verdict", ["agree", "disagree", "false_positive"])
def test_an_organisation_that_shared_the_same_hash_may_not_vote_on_another_copy(any_service, role, verdict):
    service = any_service
    alices, bobs = _co_shared(service)
    bob = principal(service, "bob", role)
    assert service.store.get_records([alices])[alices].support == 2
    with pytest.raises(Forbidden, match=f"shared this hash too \\(record {bobs}\\).*retract or relabel record {bobs}"):
        service.feedback(alices, bob, verdict)
    record = service.store.get_records([alices])[alices]
    assert (record.agree, record.disagree, record.false_positive) == (0, 0, 0)
    assert "feedback" not in service.record_view(alices, bob).actions


def test_a_member_that_did_not_share_it_still_votes_on_either_copy(any_service):
    service = any_service
    alices, bobs = _co_shared(service)
    carol = principal(service, "carol", "consumer")
    assert service.feedback(alices, carol, "agree").agree == 1
    assert service.feedback(bobs, carol, "agree").agree == 1
    assert "feedback" in service.record_view(alices, carol).actions


def test_a_retracted_copy_is_a_judgement_withdrawn_and_a_held_one_is_not(any_service):
    service = any_service
    alices, bobs = _co_shared(service)
    bob, admin = principal(service, "bob", "contributor"), principal(service, "ops", "admin")
    service.quarantine(bobs, admin, "member report")
    with pytest.raises(Forbidden, match=f"record {bobs}"):
        service.feedback(alices, bob, "agree")
    service.confirm_quarantine(bobs, admin, "benign after all")  # retracted
    assert service.feedback(alices, bob, "disagree").disagree == 1


# A vote cast before the organisation shared the hash, or while its copy was retracted, was
# kept once its copy was live (found in trial): it counted in both `support` and `agree`, and
# check_voter then refused the organisation any change to it. Its own record becoming live
# withdraws it, in the submission's write, and the record voted on moves as the votes left say.

def _withdrawals(service, record_id: int) -> list[dict[str, str]]:
    import json

    return [json.loads(e.detail) for e in service.store.audit_entries()
            if e.action == "hashes.feedback.withdraw" and e.target == f"record:{record_id}"]


def _votes(service, record_id: int) -> list[tuple[str, str]]:
    admin = principal(service, "ops", "admin")
    return [(v.org_name, v.verdict) for v in service.record_view(record_id, admin).votes]


def test_a_vote_cast_before_sharing_the_hash_is_withdrawn_when_it_is_shared(any_service):
    service = any_service
    alice, bob = principal(service, "alice", "contributor"), principal(service, "bob", "contributor")
    [first] = service.submit([Submission("x", ("glorification",), (MD5,))], alice)
    alices = first.ids[0]
    assert service.feedback(alices, bob, "agree").agree == 1
    seq = service.store.last_seq()
    [second] = service.submit([Submission("x", ("glorification",), (MD5,))], bob)
    record = service.store.get_records([alices])[alices]
    # Counted once, in support: no longer in agree as well.
    assert (record.support, record.agree, record.disagree, record.false_positive) == (2, 0, 0, 0)
    assert _votes(service, alices) == []
    assert _withdrawals(service, alices) == [
        {"verdict": "agree", "reason": f"its organisation shared the hash too: record {second.ids[0]}"}]
    # Partners' mirrors learn the new counts from the feed, as they do a vote's.
    assert ("status", alices) in [(c.kind, c.record_id) for c in service.store.changes_since(seq, 10)]
    assert service.verify_audit(principal(service, "ops", "admin")).ok
    # Still refused a new vote: its record speaks for it.
    with pytest.raises(Forbidden, match=f"record {second.ids[0]}"):
        service.feedback(alices, bob, "agree")


def test_a_vote_cast_while_its_copy_was_retracted_is_withdrawn_when_shared_again(any_service):
    service = any_service
    alices, bobs = _co_shared(service)
    bob = principal(service, "bob", "contributor")
    service.retract(bobs, bob, "not sure")
    service.feedback(alices, bob, "disagree", "on second thoughts")
    [again] = service.submit([Submission("x", ("glorification",), (MD5,))], bob)
    assert again.ids == (bobs,) and again.status == "active"  # the same record, revived
    record = service.store.get_records([alices])[alices]
    assert (record.support, record.disagree) == (2, 0)
    assert [w["verdict"] for w in _withdrawals(service, alices)] == ["disagree"]


def test_a_record_disputed_only_by_the_withdrawn_vote_is_active_again(any_service):
    service = any_service
    alice, bob = principal(service, "alice", "contributor"), principal(service, "bob", "contributor")
    [first] = service.submit([Submission("x", ("glorification",), (MD5,))], alice)
    alices = first.ids[0]
    service.feedback(alices, bob, "disagree")
    assert service.feedback(alices, principal(service, "carol", "consumer"), "false_positive").status == "disputed"
    service.submit([Submission("x", ("glorification",), (MD5,))], bob)
    # carol's one vote is fewer than the two a dispute needs.
    assert service.store.get_records([alices])[alices].status == "active"
    [moved] = [e for e in service.store.audit_entries()
               if e.action == "hashes.status" and e.target == f"record:{alices}"][-1:]
    assert moved.org_id == bob.org_id


def test_a_record_active_only_by_the_withdrawn_agree_is_disputed(any_service):
    service = any_service
    alice, bob = principal(service, "alice", "contributor"), principal(service, "bob", "contributor")
    [first] = service.submit([Submission("x", ("glorification",), (MD5,))], alice)
    alices = first.ids[0]
    for org, verdict in (("bob", "agree"), ("carol", "agree"), ("dave", "disagree")):
        assert service.feedback(alices, principal(service, org, "consumer"), verdict).status == "active"
    service.submit([Submission("x", ("glorification",), (MD5,))], bob)
    # One agree against one disagree: half disagree.
    assert service.store.get_records([alices])[alices].status == "disputed"


def test_votes_on_other_hashes_and_a_copy_that_stays_retracted_keep_their_votes(any_service):
    service = any_service
    alices, bobs = _co_shared(service)
    bob, admin = principal(service, "bob", "contributor"), principal(service, "ops", "admin")
    alice = principal(service, "alice", "contributor")
    [other] = service.submit([Submission("y", ("glorification",), (HashValue("md5", "cd" * 16),))], alice)
    service.feedback(other.ids[0], bob, "agree")
    # bob's copy retracted by an admin's confirmed quarantine: sharing it again does not revive it.
    service.quarantine(bobs, admin, "member report")
    service.confirm_quarantine(bobs, admin, "benign after all")
    service.feedback(alices, bob, "disagree")
    [again] = service.submit([Submission("x", ("glorification",), (MD5,))], bob)
    assert again.status == "retracted"
    assert service.store.get_records([alices])[alices].disagree == 1
    assert service.store.get_records([other.ids[0]])[other.ids[0]].agree == 1
    assert _withdrawals(service, alices) == [] and _withdrawals(service, other.ids[0]) == []
