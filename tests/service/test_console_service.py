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
    assert [r.id for r in mine.records] == sorted(a_ids[1:], reverse=True)  # not the quarantined one
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
    assert set(own.actions) == {"feedback", "relabel", "retract"}
    assert [e.action for e in own.history] == ["hashes.submit"]
    with pytest.raises(NotFound):  # quarantined: as absent as in a lookup
        service.record_view(a_ids[0], alpha)
    held = service.record_view(a_ids[0], admin)
    assert set(held.actions) == {"feedback", "relabel", "retract", "release", "confirm"}
    assert held.quarantine[:2] == ("manual", "held")


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
