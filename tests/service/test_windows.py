"""A lookup's windows (hashing/crops.py) meet stored centred crops only, each no larger than
the window, in agreeing colours; records never keep them (service/matching.py, sharing.py).
Hand-made hashes first, so every distance is known; then an off-centre crop of a photograph."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from hashdb.service import HashDB
from hashdb.service.derived_gates import WINDOW_RADIUS
from hashdb.types import DerivedHash, Query, Submission

from support import principal
from test_colour_gate import GUINEA, IRELAND, layout
from test_derived_gates import LABELS, OTHER_WHOLE, REGION, WHOLE, flipped, matches, pdq, store


def window(hexv: str, share: float | None, colours: str | None = None) -> DerivedHash:
    return DerivedHash("window", pdq(hexv), share, colours)


@pytest.mark.parametrize(("stored_share", "window_share", "matched"), [
    (0.64, 0.7921, True),  # the stored 80 % inside a window of 89 %
    (0.7225, 0.7921, True),  # the stored 85 %
    (0.81, 0.9025, True),  # the stored 90 % inside a window of 95 %
    (0.81, 0.7921, False),  # the stored 90 %: as large as a window of 89 % (within SAME_SHARE)
    (0.9025, 0.9025, False),  # as large: the query would be the whole picture
    (0.9025, 0.7921, False),  # the stored 95 % is more than a window of 89 % can hold
    (0.64, None, False),  # a window whose share is not known fits nothing
])
def test_a_window_matches_a_stored_crop_smaller_than_itself(service, stored_share, window_share, matched):
    record = store(service, WHOLE, (DerivedHash("cropped", pdq(REGION), stored_share),))
    query = Query("crop", (pdq(OTHER_WHOLE),), derived=(window(flipped(REGION, 20), window_share),))
    assert matches(service, query) == ([(record, "window")] if matched else [])


@pytest.mark.parametrize(("bits", "threshold", "matched"), [
    (WINDOW_RADIUS, None, True), (WINDOW_RADIUS + 2, None, False), (WINDOW_RADIUS, WINDOW_RADIUS - 2, False),
])
def test_a_window_matches_within_its_own_radius(service, bits, threshold, matched):
    record = store(service, WHOLE, (DerivedHash("cropped", pdq(REGION), 0.64),))
    query = Query("crop", (pdq(OTHER_WHOLE),), derived=(window(flipped(REGION, bits), 0.7921),))
    bob = principal(service, "bob", "contributor")
    found = service.lookup([query], bob, {"pdq": threshold} if threshold is not None else None)[0].matches
    assert [(m.id, m.via, m.distance) for m in found] == ([(record, "window", bits)] if matched else [])


@pytest.mark.parametrize("via", ["trimmed", "content", "masked", "deskewed"])
def test_a_window_matches_no_other_kind_of_stored_hash(service, via):
    store(service, WHOLE, (DerivedHash(via, pdq(REGION), 0.64),))
    assert matches(service, Query("crop", (pdq(OTHER_WHOLE),), derived=(window(REGION, 0.7921),))) == []
    # Nor a stored whole image, at 0 bits.
    assert matches(service, Query("crop", (pdq(OTHER_WHOLE),), derived=(window(WHOLE, 0.7921),))) == []


def test_a_window_and_the_stored_crop_must_agree_in_colour(service):
    record = store(service, WHOLE, (DerivedHash("cropped", pdq(REGION), 0.64, layout(IRELAND)),))
    same = window(flipped(REGION, 12), 0.7921, layout(IRELAND))
    other = window(flipped(REGION, 12), 0.7921, layout(GUINEA))
    assert matches(service, Query("same", (pdq(OTHER_WHOLE),), derived=(same,))) == [(record, "window")]
    assert matches(service, Query("other", (pdq(OTHER_WHOLE),), derived=(other,))) == []


def test_a_submitted_window_is_not_stored(service: HashDB):
    alice = principal(service, "alice", "contributor")
    sub = Submission("original", LABELS, (pdq(WHOLE),),
                     derived=(DerivedHash("trimmed", pdq(REGION), 0.8), window(OTHER_WHOLE, 0.7921)))
    result = service.submit([sub], alice)[0]
    [record_id] = result.ids
    assert [d.via for _, d in service.store.derived_hashes([record_id])[record_id]] == ["trimmed"]
    assert any("window" in note for note in result.skipped)


def test_an_off_centre_crop_of_a_photograph_matches_through_a_window(service, media):
    alice = principal(service, "alice", "contributor")
    photo = Image.open(media / "chelsea.jpg").convert("RGB")

    def jpeg(image: Image.Image) -> bytes:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=90)
        return buffer.getvalue()

    original = service.hash_bytes(jpeg(photo), "original")
    [result] = service.submit([service.submission_for(original, LABELS)], alice)
    width, height = photo.size
    # 90 % of each side, taken at the bottom right: the whole image and every region miss it.
    cut = photo.crop((width - round(width * 0.9), height - round(height * 0.9), width, height))
    query = service.query_for(service.hash_bytes(jpeg(cut), "crop", dihedral=True))
    found = service.lookup([query], alice)[0].matches
    assert [(m.id in result.ids, m.via) for m in found] == [(True, "window")]
    assert found[0].distance <= 31
    without = Query("crop", query.hashes, query.frames, tuple(d for d in query.derived if d.via != "window"))
    assert not service.lookup([without], alice)[0].matched
