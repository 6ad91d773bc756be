"""Keypoints are tied to the record they are stored with: keypoints of another picture than the
submission's PDQ are not shared, and the safelist screens their boxes as it screens derived
hashes, so a benign picture's keypoints cannot make a record match that picture."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hashdb.errors import InvalidInput
from hashdb.hashing import keypoints
from hashdb.service import HashDB
from hashdb.types import HashValue, Submission

from support import principal

LABELS = ("glorification",)


def test_keypoints_of_another_picture_are_not_shared(service: HashDB, media):
    alice = principal(service, "alice", "contributor")
    benign = service.hash_file(media / "camera.png")
    other = service.hash_file(media / "chelsea.jpg")
    mixed = dataclasses.replace(service.submission_for(other, LABELS), keypoints=benign.keypoints)
    [result] = service.submit([mixed], alice)
    assert any("keypoints not shared" in note and "another picture" in note for note in result.skipped)
    assert result.ids and service.store.keypoint_rows(0, 10) == []
    # the file shared again with its own keypoints: one record, theirs stored with it
    other_alice = principal(service, "bob", "contributor")
    [own] = service.submit([service.submission_for(other, LABELS)], other_alice)
    assert len(service.store.keypoint_rows(0, 10)) == 1 and own.status == "active"
    assert not any("keypoints" in note for note in own.skipped)


def test_keypoints_beside_a_bare_random_pdq_are_not_shared(service: HashDB, media):
    alice = principal(service, "alice", "contributor")
    benign = service.hash_file(media / "camera.png")
    random_pdq = "".join(f"{b:02x}" for b in np.random.default_rng(7).integers(0, 256, 32, dtype=np.uint8))
    crafted = Submission("crafted", LABELS, (HashValue("pdq", random_pdq, 100),), keypoints=benign.keypoints)
    [result] = service.submit([crafted], alice)
    assert any("another picture" in note for note in result.skipped)
    assert service.store.keypoint_rows(0, 10) == []
    assert not service.lookup([service.query_for(service.hash_file(media / "camera.png", dihedral=True))],
                              alice)[0].matched


def test_the_safelist_screens_the_boxes_of_keypoints(service: HashDB, media):
    admin = principal(service, "ops", "admin")
    alice = principal(service, "alice", "contributor")
    benign = service.hash_file(media / "camera.png")
    service.add_safelist([benign], admin)
    # Another picture's keypoints whose smaller boxes are the benign picture's: its whole box
    # (and PDQ) are the other picture's, so only the boxes can say what it would match.
    other = service.hash_file(media / "chelsea.jpg")
    mine, theirs = keypoints.parse(other.keypoints), keypoints.parse(benign.keypoints)
    boxes = {share: theirs.boxes[share] for share in theirs.boxes if share != keypoints.WHOLE}
    assert boxes
    crafted = keypoints.encode(dataclasses.replace(theirs, boxes={keypoints.WHOLE: mine.boxes[keypoints.WHOLE], **boxes}))
    [result] = service.submit([dataclasses.replace(service.submission_for(other, LABELS), keypoints=crafted)], alice)
    assert result.status == "quarantined"
    # the same file with its own keypoints is not held
    [fine] = service.submit([service.submission_for(service.hash_file(media / "coffee.jpg"), LABELS)], alice)
    assert fine.status == "active"


def test_a_crop_of_a_picture_two_members_shared_finds_both_records(service: HashDB, media, tmp_path):
    from PIL import Image

    records = []
    for name in ("alice", "bob"):
        [result] = service.submit([service.submission_for(service.hash_file(media / "chelsea.jpg"), LABELS)],
                                  principal(service, name, "contributor"))
        records.append(next(r.id for r in service.store.get_records(list(result.ids)).values() if r.signal == "pdq"))
    photo = Image.open(media / "chelsea.jpg").convert("RGB")
    width, height = photo.size
    crop = tmp_path / "crop.jpg"
    photo.crop((width - round(0.8 * width), 0, width, round(0.8 * height))).save(crop, quality=90)
    reader = principal(service, "carol", "consumer")
    [answer] = service.lookup([service.query_for(service.hash_file(crop, dihedral=True))], reader)
    assert sorted(m.id for m in answer.matches if m.via == "aligned") == sorted(records)


def test_a_safelist_added_later_holds_a_record_whose_keypoints_boxes_are_the_benign_pictures(service: HashDB, media):
    admin = principal(service, "ops", "admin")
    alice = principal(service, "alice", "contributor")
    benign = service.hash_file(media / "camera.png")
    other = service.hash_file(media / "chelsea.jpg")
    mine, theirs = keypoints.parse(other.keypoints), keypoints.parse(benign.keypoints)
    boxes = {share: theirs.boxes[share] for share in theirs.boxes if share != keypoints.WHOLE}
    crafted = keypoints.encode(dataclasses.replace(theirs, boxes={keypoints.WHOLE: mine.boxes[keypoints.WHOLE], **boxes}))
    [result] = service.submit([dataclasses.replace(service.submission_for(other, LABELS), keypoints=crafted)], alice)
    assert result.status == "active"  # nothing safelisted yet
    record = next(r.id for r in service.store.get_records(list(result.ids)).values() if r.signal == "pdq")
    _, held = service.add_safelist([benign], admin)
    assert record in held
    assert service.store.get_records([record])[record].status == "quarantined"


def test_a_database_that_keeps_no_keypoints_stores_none_a_hash_line_brings(media):
    from hashdb.config import Settings
    from hashdb.service.local import open_database

    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        off = open_database(Path(tmp) / "db.sqlite", Settings(keypoints=False))
        hashed = HashDB(Settings(), off.store).hash_file(media / "chelsea.jpg")  # computed elsewhere
        assert hashed.keypoints is not None
        [result] = off.submit([off.submission_for(hashed, LABELS)], principal(off, "alice", "contributor"))
        assert any("keeps none" in note for note in result.skipped)
        assert off.store.keypoint_rows(0, 10) == []
        off.store.close()
