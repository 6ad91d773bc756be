"""An image's keypoints through hashing and sharing: the stored side with the file's PDQ record
(on derived hashes' terms), a lookup's probe in its Query only, exported only when asked
for and shared."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from hashdb.errors import InvalidInput, NotShared
from hashdb.hashing import keypoints, keypoints_text
from hashdb.service import HashDB, HashingService
from hashdb.types import HashValue, Submission

from support import principal

LABELS = ("glorification",)


def pdq_record(service: HashDB, ids) -> int:
    records = service.store.get_records(list(ids))
    return next(r.id for r in records.values() if r.signal == "pdq")


def test_hashing_to_store_gives_the_blob_and_a_lookup_the_probe(service, media):
    stored = service.hash_file(media / "chelsea.jpg")
    looked = service.hash_file(media / "chelsea.jpg", dihedral=True)
    assert stored.probe is None and looked.keypoints is None
    assert keypoints.parse(stored.keypoints).descriptors.shape[1] == keypoints.DESCRIPTOR_BYTES
    assert isinstance(looked.probe, keypoints.Probe)
    assert service.query_for(looked).probe is looked.probe
    assert service.submission_for(stored, LABELS).keypoints == stored.keypoints
    # The probe is no part of the value: equal hashes are equal whatever it holds.
    assert dataclasses.replace(looked, probe=None) == looked


def test_the_setting_turns_keypoints_off(service, media):
    off = HashingService(dataclasses.replace(service.settings, keypoints=False))
    assert off.hash_file(media / "chelsea.jpg").keypoints is None
    assert off.hash_file(media / "chelsea.jpg", dihedral=True).probe is None


def test_the_process_pool_carries_the_probe_and_the_blob(service, media):
    paths = [media / "chelsea.jpg", media / "camera.png"]
    looked = list(service.hash_files(paths, dihedral=True, jobs=2))
    stored = list(service.hash_files(paths, jobs=2))
    for one, path in zip(looked, paths):
        alone = service.hash_file(path, dihedral=True)
        assert (one.probe.keypoints.descriptors == alone.probe.keypoints.descriptors).all()
        assert (one.probe.grey == alone.probe.grey).all()
    assert [s.keypoints for s in stored] == [service.hash_file(p).keypoints for p in paths]
    assert pickle.loads(pickle.dumps(looked[0])).probe is not None


def test_submitted_keypoints_go_with_the_pdq_record(service, media):
    alpha = principal(service, "alpha", "contributor")
    hashes = service.hash_file(media / "chelsea.jpg")
    [result] = service.submit([service.submission_for(hashes, LABELS)], alpha)
    record_id = pdq_record(service, result.ids)
    assert service.store.keypoints_of(result.ids) == {record_id: hashes.keypoints}
    # A duplicate keeps what was stored, as its derived hashes do.
    other = service.hash_file(media / "coffee.jpg").keypoints
    again = service.submit([dataclasses.replace(service.submission_for(hashes, LABELS), keypoints=other)], alpha)
    assert again[0].duplicate and service.store.keypoints_of([record_id]) == {record_id: hashes.keypoints}


def test_keypoints_without_a_shareable_pdq_are_said_and_not_stored(service, media):
    alpha = principal(service, "alpha", "contributor")
    blob = service.hash_file(media / "chelsea.jpg").keypoints
    low = Submission("low", LABELS, (HashValue("md5", "a" * 32), HashValue("pdq", "f0" * 32, 10)), keypoints=blob)
    [result] = service.submit([low], alpha)
    assert any("keypoints not shared" in note for note in result.skipped)
    assert service.store.keypoint_rows(0, 10) == []


def test_malformed_keypoints_refuse_the_batch(service, media):
    alpha = principal(service, "alpha", "contributor")
    blob = service.hash_file(media / "chelsea.jpg").keypoints
    good = service.submission_for(service.hash_file(media / "coffee.jpg"), LABELS)
    bad = Submission("bad", LABELS, (HashValue("pdq", "0f" * 32, 90),), keypoints=blob[:-1])
    with pytest.raises(InvalidInput, match="bad: keypoints"):
        service.submit([good, bad], alpha)
    assert service.store.keypoint_rows(0, 10) == [] and service.store.last_seq() == 0


def test_keypoints_are_in_the_export_only_when_asked_for_and_shared(service, media):
    # The defaults: not shared (Settings.share_keypoints), so asking is refused, and a feed not
    # asking carries none. tests/partners/test_mirror_keypoints.py has them shared.
    alpha = principal(service, "alpha", "contributor")
    partner = principal(service, "delta", "partner")
    hashes = service.hash_file(media / "chelsea.jpg")
    service.submit([service.submission_for(hashes, LABELS)], alpha)
    entries = service.export(partner)[0]
    assert entries and all(e.keypoints is None for e in entries)
    from hashdb.io.output import feed_json

    text = repr([feed_json(e) for e in entries])
    assert "keypoints" not in text and keypoints_text.encode_text(hashes.keypoints)[:40] not in text
    with pytest.raises(NotShared):
        service.export(partner, keypoints=True)
