"""Relabelling (owner or admin, in the feed and the audit log) and the votes' precision estimate."""

from __future__ import annotations

import random

import pytest

from hashdb.errors import Conflict, Forbidden, NotFound, UnknownLabel
from hashdb.io import output
from hashdb.types import HashValue, Query, Submission

from support import principal, random_pdq


def share(service, actor):
    value = random_pdq(random.Random(41))
    [result] = service.submit([Submission("s", ("glorification",), (HashValue("pdq", value, 90),))], actor)
    return result.ids[0]


def test_owner_relabels_and_partners_see_a_labels_change(service):
    alice = principal(service, "alice", "contributor")
    record_id = share(service, alice)
    record = service.relabel(record_id, ["recruitment_instruction", "branded_publication"], alice)
    assert record.labels == ("recruitment_instruction", "branded_publication")
    partner = principal(service, "p", "partner")
    feed, _ = service.export(partner)
    assert [(e.kind, e.labels) for e in feed] == [
        ("add", ("glorification",)), ("labels", ("recruitment_instruction", "branded_publication"))]
    actions = [e.action for e in service.store.audit_entries()]
    assert "hashes.labels" in actions


def test_only_owner_or_admin_relabels_with_known_labels(service):
    alice, bob = principal(service, "alice", "contributor"), principal(service, "bob", "contributor")
    record_id = share(service, alice)
    with pytest.raises(Forbidden):
        service.relabel(record_id, ["glorification"], bob)
    with pytest.raises(UnknownLabel):
        service.relabel(record_id, ["nonsense"], alice)
    admin = principal(service, "ops", "admin")
    assert service.relabel(record_id, ["graphic_violence"], admin).labels == ("graphic_violence",)
    service.retract(record_id, alice)
    # Its organisation sees the retracted record: told it is retracted, not that it is missing.
    with pytest.raises(Conflict, match="is retracted"):
        service.relabel(record_id, ["glorification"], alice)
    with pytest.raises(NotFound):
        service.relabel(record_id, ["glorification"], principal(service, "bob", "contributor"))


def test_precision_estimate_follows_the_votes(service):
    alice = principal(service, "alice", "contributor")
    record_id = share(service, alice)
    voters = [principal(service, f"org{n}", "consumer") for n in range(4)]
    record = service.store.get_records([record_id])[record_id]
    assert output.record_json(record)["precision"] == 0.5  # no votes: (0 + 1) / (0 + 2)
    for voter, verdict in zip(voters, ["agree", "agree", "agree", "false_positive"]):
        record = service.feedback(record_id, voter, verdict)
    assert output.record_json(record)["precision"] == round((3 + 1) / (4 + 2), 4)


def test_a_lookup_shows_false_positive_reports_apart_from_label_votes(service):
    # A member checking an upload must see that others reported the record as not TVEC at all;
    # agree/disagree are votes on its labels and stayed 0 after such reports.
    owner = principal(service, "alpha", "contributor")
    record_id = share(service, owner)
    value = service.store.get_records([record_id])[record_id].value
    for n, verdict in enumerate(["false_positive", "false_positive", "disagree"]):
        service.feedback(record_id, principal(service, f"voter{n}", "consumer"), verdict)
    [result] = service.lookup([Query("q", (HashValue("pdq", value),))], principal(service, "gamma", "consumer"))
    [match] = [output.match_json(m) for m in result.matches]
    assert (match["agree"], match["disagree"], match["false_positive"]) == (0, 1, 2)
