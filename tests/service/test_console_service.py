"""The console's service methods apply the API's rules: who may list records and whose, what a
record page shows each viewer, one-time sign-in links, and when counts are recounted."""

from __future__ import annotations

import random

import pytest

from hashdb.errors import Forbidden, NotFound, Unauthorized
from hashdb.service import console
from hashdb.types import HashValue, RecordQuery, Submission
from support import principal, random_pdq


def _share(service, who, n, label, rng):
    subs = [Submission(f"i{k}", (label,), (HashValue("pdq", random_pdq(rng), 100),)) for k in range(n)]
    return [i for r in service.submit(subs, who) for i in r.ids]


@pytest.fixture
def world(service):
    rng = random.Random(3)
    admin = principal(service, "op", "admin")
    alpha = principal(service, "alpha", "contributor")
    beta = principal(service, "beta", "contributor")
    a_ids = _share(service, alpha, 5, "glorification", rng)
    b_ids = _share(service, beta, 4, "graphic_violence", rng)
    service.quarantine(a_ids[0], admin, "held")
    return admin, alpha, beta, a_ids, b_ids


def test_who_may_list_records_and_whose(service, world):
    admin, alpha, _, a_ids, b_ids = world
    for role in ("consumer", "partner"):
        with pytest.raises(Forbidden):
            service.browse_records(principal(service, "gamma", role), RecordQuery())
    mine = service.browse_records(alpha, RecordQuery(), org="beta")  # org is ignored: not an admin
    assert [r.id for r in mine.records] == sorted(a_ids, reverse=True)  # its quarantined one too
    everyone = service.browse_records(admin, RecordQuery(limit=4))
    assert [r.id for r in everyone.records] == sorted(a_ids + b_ids, reverse=True)[:4]
    rest = service.browse_records(admin, RecordQuery(before=everyone.next_before, limit=50))
    assert [r.id for r in everyone.records + rest.records] == sorted(a_ids + b_ids, reverse=True)
    assert rest.next_before is None
    with pytest.raises(NotFound):
        service.browse_records(admin, RecordQuery(), org="nobody")


def test_a_record_page_shows_each_viewer_what_it_may(service, world):
    admin, alpha, beta, a_ids, _ = world
    consumer = principal(service, "gamma", "consumer")
    seen = service.record_view(a_ids[1], consumer)
    assert seen.value is None and seen.history is None and seen.votes is None and seen.actions == ("feedback",)
    other = service.record_view(a_ids[1], beta)
    assert other.value is None and other.actions == ("feedback",)
    own = service.record_view(a_ids[1], alpha)
    assert own.value == service.store.get_records([a_ids[1]])[a_ids[1]].value
    assert set(own.actions) == {"relabel", "retract"}  # no vote on its own (policy.check_voter)
    assert [e.action for e in own.history] == ["hashes.submit"]
    with pytest.raises(NotFound):  # quarantined: to another member as absent as in a lookup
        service.record_view(a_ids[0], beta)
    own_held = service.record_view(a_ids[0], alpha)  # to its owner, there, with what it may do
    assert own_held.record.status == "quarantined" and own_held.quarantine[:2] == ("manual", "held")
    assert own_held.actions == ("retract",)  # as the API: DELETE works, a vote or relabel is 404
    held = service.record_view(a_ids[0], admin)
    assert set(held.actions) == {"feedback", "relabel", "retract", "release", "confirm"}
    assert held.quarantine[:2] == ("manual", "held")


def test_an_owner_finds_its_quarantined_and_retracted_records_by_their_status(service, world):
    admin, alpha, beta, a_ids, b_ids = world
    service.retract(a_ids[1], alpha, "shared by mistake")
    for status, expected in (("quarantined", [a_ids[0]]), ("retracted", [a_ids[1]])):
        assert [r.id for r in service.browse_records(alpha, RecordQuery(status=status)).records] == expected
        assert [r.id for r in service.browse_records(admin, RecordQuery(status=status)).records] == expected
        assert service.browse_records(beta, RecordQuery(status=status)).records == ()
    gone = service.record_view(a_ids[1], alpha)
    assert gone.record.status == "retracted" and gone.actions == ()
    with pytest.raises(NotFound):
        service.record_view(a_ids[1], beta)
    value = service.store.get_records([a_ids[0]])[a_ids[0]].value
    assert [r.id for r in service.find_by_hash(alpha, f"pdq:{value}").records] == [a_ids[0]]
    assert service.find_by_hash(beta, f"pdq:{value}").records == ()


def test_each_viewer_is_told_of_a_record_what_the_api_tells_its_key(service, world):
    admin, alpha, beta, _, _ = world
    service.open_incident("attack-1", admin)
    [shared] = service.submit([Submission("x", ("glorification",), (HashValue("pdq", random_pdq(random.Random(9)), 100),),
                                          incident="attack-1", reference="case-1")], alpha)
    record_id = shared.ids[0]
    service.feedback(record_id, beta, "agree", "a note")
    consumer, partner = principal(service, "gamma", "consumer"), principal(service, "delta", "partner")
    same_org_consumer = principal(service, "alpha", "consumer")
    for who in (consumer, beta, same_org_consumer):  # what a lookup answers
        seen = service.record_view(record_id, who)
        assert seen.scope == "lookup" and seen.value is None and seen.org_name is None
        assert (seen.record.incident, seen.record.reference, seen.record.value, seen.record.created_at) == \
            (None, None, "", "")
        assert seen.votes is None and seen.history is None and seen.record.labels == ("glorification",)
    fed = service.record_view(record_id, partner)  # what the export feed carries
    assert fed.scope == "feed" and fed.value and fed.record.incident == "attack-1"
    assert fed.record.reference is None and fed.org_name is None and fed.votes is None and fed.history is None
    for who in (alpha, admin):
        own = service.record_view(record_id, who)
        assert own.scope == "owner" and own.record.reference == "case-1" and own.org_name == "alpha"
        assert [v.note for v in own.votes] == ["a note"]
    assert service.record_view(record_id, same_org_consumer).actions == ()  # its organisation's own


def test_a_label_filter_searches_a_bounded_window_and_says_how_far(service, world, monkeypatch):
    admin, _, _, a_ids, b_ids = world
    monkeypatch.setattr(console, "LABEL_WINDOW", 3)
    top = max(a_ids + b_ids) + 1
    page = service.browse_records(admin, RecordQuery(label="glorification"))
    assert page.searched_to == top - 3 and page.next_before == top - 3
    assert page.records == ()  # the newest 3 ids are beta's


def test_a_signin_link_signs_in_once(service, world):
    admin, alpha, *_ = world
    _, key = service.create_key("alpha", "contributor", admin)
    with pytest.raises(Forbidden):
        service.create_signin_link(key.id, alpha)
    token = service.create_signin_link(key.id, admin)
    assert service.redeem_signin_link(token).key_id == key.id
    with pytest.raises(Unauthorized):
        service.redeem_signin_link(token)
    service.revoke_key(key.id, admin)
    with pytest.raises(Unauthorized):
        service.principal_for_key_id(key.id)


def test_a_hash_search_finds_only_what_the_caller_may_list(service, world):
    admin, alpha, beta, a_ids, b_ids = world
    value = service.store.get_records([b_ids[0]])[b_ids[0]].value
    assert [r.id for r in service.find_by_hash(admin, f"pdq:{value}").records] == [b_ids[0]]
    assert [r.id for r in service.find_by_hash(beta, value).records] == [b_ids[0]]  # signal from the length
    assert service.find_by_hash(alpha, f"pdq:{value}").records == ()  # beta's record
    with pytest.raises(Forbidden):
        service.find_by_hash(principal(service, "gamma", "consumer"), f"pdq:{value}")


def test_a_video_record_is_found_by_the_hash_its_page_shows_and_by_its_signal(service, world):
    # Found in trial: the records filter offered tmk and refused it, and a vpdq record could not
    # be found by the digest its own page shows as its hash.
    from hashdb.errors import InvalidHash, UnknownSignal
    from hashdb.types import FrameHash

    admin, alpha, *_ = world
    rng = random.Random(9)
    frames = tuple(FrameHash(n, float(n), HashValue("pdq", random_pdq(rng), 90)) for n in range(3))
    [result] = service.submit([Submission("clip", ("glorification",), frames=frames, media_type="video")], alpha)
    [video] = service.store.get_records(result.ids).values()
    assert video.signal == "vpdq"
    assert [r.id for r in service.find_by_hash(alpha, f"vpdq:{video.value}").records] == [video.id]
    assert [r.id for r in service.find_by_hash(alpha, video.value).records] == [video.id]  # from the length
    assert [r.id for r in service.browse_records(admin, RecordQuery(signal="vpdq")).records] == [video.id]
    assert service.browse_records(admin, RecordQuery(signal="tmk")).records == ()
    with pytest.raises(UnknownSignal, match="known: .*vpdq, tmk"):
        service.browse_records(admin, RecordQuery(signal="nope"))
    with pytest.raises(InvalidHash):
        service.find_by_hash(alpha, "tmk:abc")
