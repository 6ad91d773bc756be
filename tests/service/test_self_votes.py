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
