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
