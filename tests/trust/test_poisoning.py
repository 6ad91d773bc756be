"""Poisoning defences: the safelist, the spike rule, and the admin review of quarantines."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone

import pytest

from hashdb.errors import Conflict, Forbidden, InvalidHash, InvalidInput
from hashdb.trust.spike import hour_bucket
from hashdb.types import HashValue, Query, Submission
from support import flip, principal, random_pdq
from trust_helpers import lines


def submit(service, actor, value: HashValue, label: str = "glorification"):
    if value.signal == "pdq" and value.quality is None:
        value = HashValue("pdq", value.hex, 100)
    [result] = service.submit([Submission(str(value), (label,), (value,))], actor)
    return result


def look(service, actor, value: HashValue):
    [result] = service.lookup([Query(str(value), (value,))], actor)
    return result


def audit_actions(service) -> list[tuple[str, str, int | None]]:
    return [(e.action, e.target, e.org_id) for e in service.store.audit_entries(0, 1000)]


# safelist ---------------------------------------------------------------------------------------

def test_submission_near_a_safelisted_pdq_is_quarantined_not_active(make_service):
    service = make_service()
    rng = random.Random(1)
    admin, contributor = principal(service, "ops", "admin"), principal(service, "a", "contributor")
    consumer = principal(service, "c", "consumer")
    benign = random_pdq(rng)
    service.add_safelist([HashValue("pdq", benign)], admin, "news photo")

    near = submit(service, contributor, HashValue("pdq", flip(benign, 31, rng)))
    far = submit(service, contributor, HashValue("pdq", flip(benign, 40, rng)))
    assert (near.status, near.duplicate) == ("quarantined", False)
    assert far.status == "active"

    # Members no longer match the poisoned record; admins still see it, marked.
    assert [m.id for m in look(service, consumer, HashValue("pdq", benign)).matches] == []
    assert [(m.id, m.status) for m in look(service, admin, HashValue("pdq", benign)).matches] == [
        (near.ids[0], "quarantined")]
    [held] = service.quarantined(admin)
    assert (held.record.id, held.rule) == (near.ids[0], "safelist")
    assert "within 31 bits of safelist entry 1" in held.reason
    # The hold is the listing admin's (its safelist entry's), not the submitter's.
    assert ("quarantine.open", f"record:{near.ids[0]}", admin.org_id) in audit_actions(service)
    assert ("safelist.add", "batch:1", admin.org_id) in audit_actions(service)


def test_exact_signals_are_safelisted_by_equality(make_service):
    service = make_service()
    admin, contributor = principal(service, "ops", "admin"), principal(service, "a", "contributor")
    service.add_safelist([HashValue("md5", "0" * 31 + "1")], admin)
    assert submit(service, contributor, HashValue("md5", "0" * 31 + "1")).status == "quarantined"
    assert submit(service, contributor, HashValue("md5", "0" * 31 + "3")).status == "active"


def test_a_safelisted_image_file_covers_its_hashes(make_service, media):
    service = make_service()
    admin, contributor = principal(service, "ops", "admin"), principal(service, "a", "contributor")
    path = sorted(p for p in media.iterdir() if p.suffix in (".jpg", ".png"))[0]
    hashes = service.hash_file(path)
    service.add_safelist([hashes], admin)
    [result] = service.submit([service.submission_for(hashes, ["glorification"])], actor=contributor)
    assert result.status == "quarantined"
    assert {q.record.signal for q in service.quarantined(admin)} == {v.signal for v in hashes.hashes + hashes.variants}


def test_safelisting_quarantines_records_already_shared(make_service):
    service = make_service()
    rng = random.Random(2)
    admin, contributor = principal(service, "ops", "admin"), principal(service, "a", "contributor")
    poisoned = random_pdq(rng)
    early = submit(service, contributor, HashValue("pdq", poisoned))
    other = submit(service, contributor, HashValue("pdq", random_pdq(rng)))
    assert early.status == "active"
    added, held = service.add_safelist([HashValue("pdq", flip(poisoned, 5, rng))], admin)
    assert (added, held) == (1, [early.ids[0]])
    records = service.store.get_records([early.ids[0], other.ids[0]])
    assert (records[early.ids[0]].status, records[other.ids[0]].status) == ("quarantined", "active")


def test_safelist_refuses_degenerate_hashes_and_non_admins(make_service):
    service = make_service()
    admin, contributor = principal(service, "ops", "admin"), principal(service, "a", "contributor")
    with pytest.raises(InvalidHash, match="degenerate"):
        service.add_safelist([HashValue("pdq", "0" * 64)], admin)
    with pytest.raises(Forbidden):
        service.add_safelist([HashValue("md5", "a" * 32)], contributor)
    assert service.store.safelist_version() == (0, 0, "", "")


# spike rule -------------------------------------------------------------------------------------

@pytest.fixture
def spiky(make_service):
    """More than 3 matches from at least 2 organisations in 24 h; counts written on every lookup."""
    service = make_service(spike_max_matches=3, spike_min_orgs=2, spike_window_hours=24, spike_flush_seconds=0)
    rng = random.Random(3)
    value = HashValue("pdq", random_pdq(rng))
    record = submit(service, principal(service, "a", "contributor"), value)
    return service, value, record.ids[0]


def status(service, record_id: int) -> str:
    return service.store.get_records([record_id])[record_id].status


def test_many_matches_from_one_organisation_is_not_a_spike(spiky):
    service, value, record_id = spiky
    busy = principal(service, "busy", "consumer")
    for _ in range(10):
        assert look(service, busy, value).matched
    assert status(service, record_id) == "active"


def test_many_matches_from_enough_organisations_quarantines(spiky):
    service, value, record_id = spiky
    one, two = principal(service, "one", "consumer"), principal(service, "two", "consumer")
    for _ in range(2):
        assert look(service, one, value).matched
    assert look(service, two, value).matched
    assert status(service, record_id) == "active"
    assert look(service, two, value).matched  # 4th match, 2 from each organisation: trips the rule
    assert status(service, record_id) == "quarantined"
    assert not look(service, one, value).matched
    admin = principal(service, "ops", "admin")
    [held] = service.quarantined(admin)
    assert held.rule == "spike" and "4 matching lookups from 2 organisations" in held.reason


def test_one_organisation_s_flood_counts_for_its_share_only(spiky):
    # Found by trying it: one consumer's batch repeating a shared hash, plus a single match at
    # one other member, quarantined the record for every member. With the line at 3 and 2
    # organisations, each counts for at most 3 // 2 + 1 = 2 matches.
    service, value, record_id = spiky
    flood, other = principal(service, "flood", "consumer"), principal(service, "other", "consumer")
    batch = [Query(f"copy {n}", (value,)) for n in range(50)]
    assert all(r.matched for r in service.lookup(batch, flood))
    assert look(service, other, value).matched  # 51 matches, 2 organisations, 3 counted
    assert status(service, record_id) == "active"
    assert look(service, other, value).matched  # the second member's 2nd: 4 counted
    assert status(service, record_id) == "quarantined"
    [held] = service.quarantined(principal(service, "ops", "admin"))
    assert "52 matching lookups from 2 organisations within 24 h, 4 counted" in held.reason
    assert "each organisation counting for at most 2" in held.reason
    # Automatic: the audit entry names no organisation or key.
    assert ("quarantine.open", f"record:{record_id}", None) in audit_actions(service)


def test_exactly_the_limit_is_not_a_spike(spiky):
    service, value, record_id = spiky
    one, two = principal(service, "one", "consumer"), principal(service, "two", "consumer")
    for actor in (one, one, two):
        look(service, actor, value)
    assert status(service, record_id) == "active"


def test_admin_lookups_are_not_counted(spiky):
    service, value, record_id = spiky
    for org in ("x", "y", "z"):
        for _ in range(3):
            look(service, principal(service, org, "admin"), value)
    assert status(service, record_id) == "active"


def test_matches_older_than_the_window_do_not_count(spiky):
    service, value, record_id = spiky
    one, two = principal(service, "one", "consumer"), principal(service, "two", "consumer")
    now = datetime.now(timezone.utc)
    old, inside = hour_bucket(now - timedelta(hours=24)), hour_bucket(now - timedelta(hours=22))
    start = hour_bucket(now - timedelta(hours=23))
    service.store.count_matches([(record_id, old, one.org_id, 100), (record_id, old, two.org_id, 100)], start)
    look(service, two, value)
    assert status(service, record_id) == "active"
    service.store.count_matches([(record_id, inside, one.org_id, 2)], start)
    look(service, two, value)  # 2 (22 h ago) + 2 now = 4 > 3, from 2 organisations, 2 each
    assert status(service, record_id) == "quarantined"


def test_counts_are_buffered_until_the_flush_interval(make_service):
    service = make_service(spike_max_matches=1, spike_min_orgs=1, spike_flush_seconds=3600)
    value = HashValue("md5", "c" * 32)
    record_id = submit(service, principal(service, "a", "contributor"), value).ids[0]
    consumer = principal(service, "c", "consumer")
    for _ in range(3):
        look(service, consumer, value)
    # Nothing is written before the interval has passed since start-up (or the last flush).
    assert service.store.count_matches([], "0") == {}
    assert status(service, record_id) == "active"
    assert service.flush_match_counts() == [record_id]
    assert status(service, record_id) == "quarantined"


# review -----------------------------------------------------------------------------------------

def quarantined_record(spiky):
    service, value, record_id = spiky
    admin = principal(service, "ops", "admin")
    service.quarantine(record_id, admin, "member report")
    return service, value, record_id, admin


def test_release_restores_matching_and_resets_the_counter(spiky):
    service, value, record_id, admin = quarantined_record(spiky)
    one, two = principal(service, "one", "consumer"), principal(service, "two", "consumer")
    service.store.count_matches([(record_id, hour_bucket(datetime.now(timezone.utc)), one.org_id, 50)], "0")
    assert service.release(record_id, admin, "reviewed").status == "active"
    assert look(service, two, value).matched
    assert status(service, record_id) == "active"  # the 50 before the release are forgotten
    assert service.quarantined(admin) == []
    assert ("quarantine.release", f"record:{record_id}", admin.org_id) in audit_actions(service)


def test_confirm_retracts_with_the_reason_and_tells_partners(spiky):
    service, value, record_id, admin = quarantined_record(spiky)
    with pytest.raises(InvalidInput):
        service.confirm_quarantine(record_id, admin, " ")
    assert service.confirm_quarantine(record_id, admin, "benign meme").status == "retracted"
    assert not look(service, admin, value).matched
    entries, _ = service.export(admin)
    assert [e.kind for e in entries if e.id == record_id][-1] == "retract"
    [entry] = [e for e in service.store.audit_entries(0, 1000) if e.action == "quarantine.confirm"]
    assert json.loads(entry.detail)["reason"] == "benign meme"
    with pytest.raises(Conflict):
        service.release(record_id, admin)


def test_only_active_or_disputed_records_can_be_quarantined(spiky):
    service, value, record_id, admin = quarantined_record(spiky)
    with pytest.raises(Conflict):
        service.quarantine(record_id, admin, "again")
    with pytest.raises(Forbidden):
        service.quarantined(principal(service, "c", "contributor"))


# CLI --------------------------------------------------------------------------------------------

def test_cli_safelist_submit_list_release_confirm(run):
    rng = random.Random(9)
    benign, other = random_pdq(rng), random_pdq(rng)
    added = run("safelist", "add", "--json", f"pdq:{benign}", "--note", "news photo")
    assert added.exit_code == 0 and lines(added) == [{"added": 1, "quarantined": []}]
    submitted = run("submit", "--pdq-quality", "100", "--json", f"pdq:{flip(benign, 3, rng)}", f"pdq:{other}", "--label", "glorification")
    assert [(d["ids"], d["status"]) for d in lines(submitted)] == [([1], "quarantined"), ([2], "active")]
    listed = lines(run("quarantine", "list", "--json"))
    assert [(d["id"], d["status"], d["rule"]) for d in listed] == [(1, "quarantined", "safelist")]
    assert run("quarantine", "add", "2", "--reason", "report").exit_code == 0
    assert lines(run("quarantine", "release", "--json", "1"))[0]["status"] == "active"
    assert lines(run("quarantine", "confirm", "--json", "2", "--reason", "benign"))[0]["status"] == "retracted"
    assert run("quarantine", "list", "--json").stdout == ""
    again = run("quarantine", "release", "2")
    assert again.exit_code == 1 and "retracted, not quarantined" in again.stderr


@pytest.mark.parametrize("exempt", [True, False])
def test_records_under_an_open_incident_may_spike(make_service, exempt):
    service = make_service(spike_max_matches=1, spike_min_orgs=1, spike_flush_seconds=0,
                           spike_exempt_open_incidents=exempt)
    admin = principal(service, "ops", "admin")
    incident = service.open_incident("attack-1", admin)
    contributor, consumer = principal(service, "a", "contributor"), principal(service, "c", "consumer")
    [tagged] = service.submit([Submission("t", ("attacker_manifesto",), (HashValue("md5", "1" * 32),),
                                          incident="attack-1")], contributor)
    plain = submit(service, contributor, HashValue("md5", "2" * 32))
    for _ in range(2):
        look(service, consumer, HashValue("md5", "1" * 32))
        look(service, consumer, HashValue("md5", "2" * 32))
    assert status(service, plain.ids[0]) == "quarantined"
    assert status(service, tagged.ids[0]) == ("active" if exempt else "quarantined")
    if exempt:  # once the incident is closed, the rule applies to it again
        service.close_incident(incident.id, admin)
        look(service, consumer, HashValue("md5", "1" * 32))
        assert status(service, tagged.ids[0]) == "quarantined"


def keyed(service, org: str, role: str):
    """A principal with a real key, as a server request has (its key id goes in the audit log)."""
    key, _ = service.create_key(org, role, principal(service, "operator", "admin"))
    return service.authenticate(key)


def holds(service, record_id: int, admin) -> list[tuple[str, str]]:
    """Who the record's history (the console's record page) says opened each quarantine."""
    history = service.record_view(record_id, admin).history
    return [(event.org_name, json.loads(event.detail)["reason"]) for event in history
            if event.action == "quarantine.open"]


def test_a_safelist_hold_is_the_listing_admin_s_whenever_the_record_came(make_service):
    # Found in trial: a submission held by a safelist entry showed in its history, and in the
    # audit log, as quarantined by its own submitter; a record held by the entry's addition
    # showed the admin. Both holds are the admin's decision to list that hash.
    service = make_service()
    rng = random.Random(11)
    admin, contributor = keyed(service, "ops", "admin"), keyed(service, "alpha", "contributor")
    benign = random_pdq(rng)
    early = submit(service, contributor, HashValue("pdq", flip(benign, 4, rng)))
    service.add_safelist([HashValue("pdq", benign)], admin, "news photo")
    late = submit(service, contributor, HashValue("pdq", flip(benign, 6, rng)))
    assert late.status == "quarantined"

    assert holds(service, early.ids[0], admin) == [("ops", "pdq within 4 bits of safelist entry 1")]
    assert holds(service, late.ids[0], admin) == [("ops", "pdq within 6 bits of safelist entry 1")]
    opened = [(e.target, e.org_id, e.key_id) for e in service.store.audit_entries(0, 1000)
              if e.action == "quarantine.open"]
    assert opened == [(f"record:{early.ids[0]}", admin.org_id, admin.key_id),
                      (f"record:{late.ids[0]}", admin.org_id, admin.key_id)]
    submitted = [e for e in service.store.audit_entries(0, 1000) if e.action == "hashes.submit"]
    assert {(e.org_id, e.key_id) for e in submitted} == {(contributor.org_id, contributor.key_id)}
