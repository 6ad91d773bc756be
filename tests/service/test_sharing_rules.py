"""What may be shared, and what a submission says about what it did: degenerate perceptual
hashes, PDQ quality, re-sharing a retracted hash, owners withdrawing quarantined records,
safelist holds and duplicates reported as such."""

from __future__ import annotations

import random

import pytest

from hashdb.errors import InvalidHash, InvalidInput, LowQuality
from hashdb.types import FrameHash, HashValue, Query, Submission
from support import flip, principal, random_pdq

LABELS = ("glorification",)


@pytest.mark.parametrize("signal, hex_value", [
    ("phash", "0000000000000000"),
    ("dhash", "ffffffffffffffff"),
    ("phash", "8000000000000000"),
    ("dhash", "fffffffffffffffe"),
    ("phash", "000000000000007f"),  # 7 bits: one under the edge
])
def test_degenerate_64_bit_hashes_are_refused_like_pdq(service, signal, hex_value):
    # Issue item 4: these were stored active, and an all-zero pHash then matched any flat image.
    alice = principal(service, "alice", "contributor")
    with pytest.raises(InvalidHash, match="degenerate"):
        service.submit([Submission("x", LABELS, (HashValue(signal, hex_value),))], alice)
    assert service.store.last_seq() == 0


@pytest.mark.parametrize("signal", ["md5", "sha256"])
def test_the_digest_of_an_empty_file_is_not_shared(service, signal):
    # It would match every empty upload. The expected values come from hashlib, not our table.
    import hashlib

    alice = principal(service, "alice", "contributor")
    empty = hashlib.new(signal, b"").hexdigest()
    with pytest.raises(InvalidHash, match="empty file"):
        service.submit([Submission("x", LABELS, (HashValue(signal, empty),))], alice)
    assert service.store.last_seq() == 0
    one_byte = hashlib.new(signal, b"\0").hexdigest()
    assert service.submit([Submission("y", LABELS, (HashValue(signal, one_byte),))], alice)[0].status == "active"


@pytest.mark.parametrize("reference", ["x\x1b[31mred", "tab\there", "line\nbreak", "bidi\u202ecase"])
def test_a_reference_with_control_or_format_characters_is_refused(service, reference):
    alice = principal(service, "alice", "contributor")
    value = HashValue("md5", "a" * 32)
    with pytest.raises(InvalidInput, match="reference contains a control or unprintable character"):
        service.submit([Submission("x", LABELS, (value,), reference=reference)], alice)
    assert service.store.last_seq() == 0
    assert service.submit([Submission("x", LABELS, (value,), reference="case 1234/é")], alice)[0].status == "active"


def test_the_degeneracy_bounds_are_an_eighth_of_the_bits(service):
    alice = principal(service, "alice", "contributor")
    edge_low, edge_high = "00000000000000ff", "ff00ffffffffffff"  # 8 and 56 bits set: accepted
    results = service.submit([Submission("lo", LABELS, (HashValue("phash", edge_low),)),
                              Submission("hi", LABELS, (HashValue("dhash", edge_high),))], alice)
    assert [r.status for r in results] == ["active", "active"]


def test_a_pdq_without_quality_is_refused(service):
    # Issue item 4: a PDQ submitted without quality skipped the quality rule.
    alice = principal(service, "alice", "contributor")
    with pytest.raises(LowQuality, match="quality is required"):
        service.submit([Submission("x", LABELS, (HashValue("pdq", random_pdq(random.Random(1))),))], alice)
    frames = tuple(FrameHash(n, float(n), HashValue("pdq", random_pdq(random.Random(n)))) for n in range(3))
    with pytest.raises(LowQuality, match="quality"):
        service.submit([Submission("clip", LABELS, frames=frames, media_type="video")], alice)
    assert service.store.last_seq() == 0


@pytest.mark.parametrize("when", [1e300, 4 * 3600.0 + 0.5, -1.0, float("nan"), float("inf")])
def test_a_video_frame_outside_any_video_this_service_hashes_is_refused(service, when):
    # A frame at 1e300 s was stored and exported as a 300-digit timestamp.
    alice = principal(service, "alice", "contributor")
    frames = tuple(FrameHash(n, float(n), HashValue("pdq", random_pdq(random.Random(n)), 90)) for n in range(3))
    late = (*frames, FrameHash(3, when, HashValue("pdq", random_pdq(random.Random(3)), 90)))
    with pytest.raises(InvalidInput, match="frame times run from 0 to 14400 s"):
        service.submit([Submission("clip", LABELS, frames=late, media_type="video")], alice)
    assert service.store.last_seq() == 0
    # Up to the longest video hashed here is fine.
    edge = (*frames, FrameHash(3, 4 * 3600.0, HashValue("pdq", random_pdq(random.Random(3)), 90)))
    assert service.submit([Submission("clip", LABELS, frames=edge, media_type="video")], alice)[0].ids


def test_a_file_keeps_its_exact_hashes_when_a_perceptual_one_is_degenerate(service):
    alice = principal(service, "alice", "contributor")
    sub = Submission("flat.png", LABELS, (HashValue("md5", "ab" * 16), HashValue("dhash", "0" * 16)))
    [result] = service.submit([sub], alice)
    assert len(result.ids) == 1 and result.status == "active"
    assert result.skipped and "dhash hash is degenerate" in result.skipped[0]


def test_degenerate_video_frames_are_not_shared(service):
    # Found in trial: a frame of all zeros at quality 100 was stored as a video, which then
    # matched a query of near-flat frames at 100 %, though a single such PDQ is refused.
    alice = principal(service, "alice", "contributor")
    flat = FrameHash(0, 0.0, HashValue("pdq", "0" * 64, 100))
    full = FrameHash(1, 1.0, HashValue("pdq", "f" * 64, 100))
    with pytest.raises(InvalidInput, match="not degenerate"):
        service.submit([Submission("clip", LABELS, frames=(flat, full), media_type="video")], alice)
    assert service.store.last_seq() == 0
    good = FrameHash(2, 2.0, HashValue("pdq", random_pdq(random.Random(2)), 100))
    [result] = service.submit([Submission("clip", LABELS, frames=(flat, good, full), media_type="video")], alice)
    assert "2 video frame(s) not shared: degenerate PDQ" in " ".join(result.skipped)
    [frames] = service.store.timed_frames(result.ids).values()
    assert [f.hash.hex for f in frames] == [good.hash.hex]
    near_flat = tuple(FrameHash(n, float(n), HashValue("pdq", f"{n + 1:064x}", 100)) for n in range(3))
    [answer] = service.lookup([Query("flat video", frames=near_flat)], alice)
    assert not answer.matched


def test_degenerate_queries_still_get_an_answer(service):
    # Lookups are not refused: a platform may hash a flat upload; it simply matches nothing here.
    alice = principal(service, "alice", "contributor")
    [result] = service.lookup([Query("q", (HashValue("phash", "0" * 16),))], alice)
    assert not result.matched


# Item 16: re-sharing a retracted hash; owners withdrawing their quarantined records ----------


def pdq_value(seed: int) -> HashValue:
    return HashValue("pdq", random_pdq(random.Random(seed)), 100)


def test_an_owner_may_share_a_retracted_hash_again(service):
    # Issue item 16: a retracted hash could never be shared again by the same organisation (the
    # submit answered "already shared" with the tombstone's id and stored nothing).
    alice = principal(service, "alice", "contributor")
    value = pdq_value(160)
    [first] = service.submit([Submission("x", LABELS, (value,))], alice)
    service.retract(first.ids[0], alice, "shared by mistake")
    assert not service.lookup([Query("q", (value,))], alice)[0].matched
    [again] = service.submit([Submission("x", ("attacker_manifesto",), (value,))], alice)
    assert again.ids == first.ids and again.status == "active" and not again.duplicate
    [hit] = service.lookup([Query("q", (value,))], alice)[0].matches
    assert hit.id == first.ids[0] and hit.labels == ("attacker_manifesto",)
    entries, _ = service.export(principal(service, "ops", "admin"))
    assert [(e.kind, e.status, e.labels) for e in entries] == [
        ("add", "active", LABELS), ("retract", "retracted", LABELS), ("add", "active", ("attacker_manifesto",))]


def test_a_hash_an_admin_confirmed_out_is_not_shared_again_by_its_owner(service):
    alice, admin = principal(service, "alice", "contributor"), principal(service, "ops", "admin")
    value = pdq_value(161)
    [first] = service.submit([Submission("x", LABELS, (value,))], alice)
    service.quarantine(first.ids[0], admin, "member report")
    service.confirm_quarantine(first.ids[0], admin, "benign meme")
    [again] = service.submit([Submission("x", LABELS, (value,))], alice)
    assert again.status == "retracted" and again.duplicate
    assert any("admin" in note for note in again.notes)
    assert not service.lookup([Query("q", (value,))], admin)[0].matched


def keyed(service, org: str, role: str):
    """A principal with a real key, as a server request has: its role is in the key's row."""
    key, _ = service.create_key(org, role, principal(service, "ops", "admin"))
    return service.authenticate(key)


@pytest.mark.parametrize("retracter", ["another organisation's admin", "its organisation's admin key"])
def test_a_hash_an_admin_retracted_is_not_shared_again_by_its_owner(service, retracter):
    # Found in trial: `hashdb retract 35 --reason "admin: poisoning"` by an admin, then the
    # owner's resubmission answered `ids [35] active`, undoing the admin's decision unseen.
    alice = keyed(service, "alice", "contributor")
    admin = keyed(service, "ops" if retracter.startswith("another") else "alice", "admin")
    value = pdq_value(162)
    [first] = service.submit([Submission("x", LABELS, (value,))], alice)
    service.retract(first.ids[0], admin, "admin: poisoning")
    [again] = service.submit([Submission("x", LABELS, (value,))], alice)
    assert again.ids == first.ids and again.status == "retracted" and again.duplicate
    assert again.notes == (f"record {first.ids[0]} was retracted by an admin (a retraction or a confirmed "
                           "quarantine); it stays out (ask an admin)",)
    assert not service.lookup([Query("q", (value,))], alice)[0].matched
    assert [e.kind for e in service.export(principal(service, "ops", "admin"))[0]] == ["add", "retract"]
    # An admin of the organisation may share it again: the decision was an admin's to undo.
    if not retracter.startswith("another"):
        [back] = service.submit([Submission("x", LABELS, (value,))], admin)
        assert back.ids == first.ids and back.status == "active" and not back.duplicate


def test_the_owner_s_own_retraction_after_an_admin_s_is_its_own_again(service):
    # The last retraction decides: retracted by an admin, shared again by that admin's
    # organisation's admin key, then retracted by the owner itself, the owner may share it again.
    alice, alice_admin = keyed(service, "alice", "contributor"), keyed(service, "alice", "admin")
    value = pdq_value(163)
    [first] = service.submit([Submission("x", LABELS, (value,))], alice)
    service.retract(first.ids[0], alice_admin, "admin: poisoning")
    service.submit([Submission("x", LABELS, (value,))], alice_admin)
    service.retract(first.ids[0], alice, "shared by mistake")
    [again] = service.submit([Submission("x", LABELS, (value,))], alice)
    assert again.status == "active" and not again.duplicate


def test_an_owner_may_retract_its_own_quarantined_record(service):
    # Issue item 16: owners got 404 retracting their own quarantined records.
    alice, bob = principal(service, "alice", "contributor"), principal(service, "bob", "contributor")
    admin = principal(service, "ops", "admin")
    [result] = service.submit([Submission("x", LABELS, (pdq_value(162),))], alice)
    record_id = result.ids[0]
    service.quarantine(record_id, admin, "member report")
    from hashdb.errors import NotFound

    with pytest.raises(NotFound):  # another member still cannot tell it exists
        service.retract(record_id, bob)
    assert service.retract(record_id, alice, "ours, withdrawn").status == "retracted"
    assert service.quarantined(admin) == []
    counts = service.store.integrity_counts()["quarantine_outcome"]
    assert counts == {"withdrawn": 1}


# Item 19: what a submission says about safelist holds and duplicates ---------------------------


def test_a_file_held_by_the_safelist_says_quarantined(service):
    # Issue item 19: a file whose PDQ the safelist held answered "active" (its md5's status).
    alice, admin = principal(service, "alice", "contributor"), principal(service, "ops", "admin")
    benign = pdq_value(190)
    service.add_safelist([benign], admin, "press photo")
    sub = Submission("photo.jpg", LABELS, (HashValue("md5", "12" * 16), benign))
    [result] = service.submit([sub], alice)
    assert result.status == "quarantined"
    # Held whole (found in trial: its md5 and sha256 stayed active and matched, while the answer
    # said "quarantined"): the md5 of a file that looks like a safelisted benign picture would
    # flag its exact re-uploads, the commonest copies.
    records = service.store.get_records(list(result.ids))
    assert [r.status for r in records.values()] == ["quarantined", "quarantined"]
    assert not service.lookup([Query("q", (HashValue("md5", "12" * 16),))], alice)[0].matched
    reasons = {q.record.signal: q.reason for q in service.quarantined(admin)}
    assert reasons == {"pdq": "pdq within 0 bits of safelist entry 1",
                       "md5": "held with its file's pdq within 0 bits of safelist entry 1"}
    assert result.notes == ()


def test_a_file_shared_again_says_what_its_records_are(service):
    # Found in trial: a resubmission answered "active" (its md5's status) while its PDQ record,
    # held since by a safelist entry added later, was quarantined.
    alice, admin = principal(service, "alice", "contributor"), principal(service, "ops", "admin")
    pdq, md5 = pdq_value(194), HashValue("md5", "78" * 16)
    sub = Submission("photo.jpg", LABELS, (md5, pdq))
    [first] = service.submit([sub], alice)
    assert first.status == "active" and first.notes == ()
    near = HashValue("pdq", flip(pdq.hex, 4, random.Random(1)))
    assert service.add_safelist([near], admin, "press photo") == (1, [first.ids[1]])
    [again] = service.submit([sub], alice)
    md5_id, pdq_id = first.ids
    assert again.ids == first.ids and again.duplicate and again.status == "quarantined"
    assert again.notes == (f"its records differ: {md5_id} md5 active, {pdq_id} pdq quarantined",)
    # Every record the same: no such note.
    service.retract(md5_id, alice)
    service.retract(pdq_id, alice)
    [third] = service.submit([Submission("photo.jpg", LABELS, (md5,))], alice)
    assert third.status == "active" and third.notes == ()


def test_safelisting_names_the_entry_that_held_each_record(service):
    # Issue item 19: quarantines made by `safelist add` recorded entry 0.
    alice, admin = principal(service, "alice", "contributor"), principal(service, "ops", "admin")
    service.add_safelist([pdq_value(191), HashValue("md5", "34" * 16)], admin, "first")
    live = pdq_value(192)
    [shared] = service.submit([Submission("x", LABELS, (live,))], alice)
    added, held = service.add_safelist([live], admin, "second")
    assert (added, held) == (1, list(shared.ids))
    entry_id = max(i for i, _ in service.store.safelist_values("pdq"))
    assert entry_id == 3
    [item] = service.quarantined(admin)
    assert item.reason == f"pdq within 0 bits of safelist entry {entry_id}"


def test_a_duplicate_says_so_and_that_its_new_labels_were_not_applied(service):
    # Issue item 19: a duplicate was listed without saying so, and its new labels and incident
    # were dropped silently.
    alice, admin = principal(service, "alice", "contributor"), principal(service, "ops", "admin")
    service.open_incident("attack-1", admin)
    value = pdq_value(193)
    [first] = service.submit([Submission("x", LABELS, (value,))], alice)
    sub = Submission("photo.jpg", ("attacker_manifesto",), (value, HashValue("md5", "56" * 16)), incident="attack-1")
    [second] = service.submit([sub], alice)
    assert not second.duplicate and second.duplicate_ids == first.ids
    [note] = second.notes
    assert f"record {first.ids[0]}" in note and "glorification" in note and "relabel" in note
    assert service.store.get_records(list(first.ids))[first.ids[0]].labels == LABELS


def test_relabel_or_quarantine_of_a_retracted_record_says_it_is_retracted(service):
    # Found in trial: "no hash record with id 340" to its owner and an admin, who both see it.
    from hashdb.errors import Conflict, NotFound

    alice, admin = principal(service, "alice", "contributor"), principal(service, "ops", "admin")
    bob = principal(service, "bob", "contributor")
    [shared] = service.submit([Submission("x", LABELS, (pdq_value(195),))], alice)
    [record_id] = shared.ids
    service.retract(record_id, alice, "shared by mistake")
    for who in (alice, admin):
        with pytest.raises(Conflict, match=f"hash record {record_id} is retracted; only a live record can "
                                           "change labels"):
            service.relabel(record_id, ("attacker_manifesto",), who)
    with pytest.raises(Conflict, match=f"hash record {record_id} is retracted; only active or disputed"):
        service.quarantine(record_id, admin, "member report")
    # Anyone else still learns nothing of it.
    with pytest.raises(NotFound, match=f"no hash record with id {record_id}"):
        service.relabel(record_id, ("attacker_manifesto",), bob)
    with pytest.raises(NotFound):
        service.quarantine(10_000, admin, "member report")


def test_relabel_of_its_own_quarantined_record_says_it_is_quarantined(service):
    # Found in trial: "no hash record with id 13" to its organisation, which sees it held (and
    # may retract it); anyone else still learns nothing of it, and an admin may relabel it.
    from hashdb.errors import Conflict, NotFound

    alice, admin = principal(service, "alice", "contributor"), principal(service, "ops", "admin")
    bob = principal(service, "bob", "contributor")
    [shared] = service.submit([Submission("x", LABELS, (pdq_value(196),))], alice)
    [record_id] = shared.ids
    service.quarantine(record_id, admin, "member report")
    with pytest.raises(Conflict, match=f"hash record {record_id} is quarantined; only a live record can "
                                       "change labels"):
        service.relabel(record_id, ("attacker_manifesto",), alice)
    with pytest.raises(NotFound, match=f"no hash record with id {record_id}"):
        service.relabel(record_id, ("attacker_manifesto",), bob)
    assert service.relabel(record_id, ("attacker_manifesto",), admin).labels == ("attacker_manifesto",)
