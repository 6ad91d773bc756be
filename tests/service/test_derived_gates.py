"""What a derived match needs beyond a close PDQ: stored centred crops count only against a
query's whole-image PDQs, and two regions covering the same share of their images count only
if the whole images are close too (service/matching.py). Hashes are made by hand, so every
distance below is known without computing a PDQ."""

from __future__ import annotations

import io
import random

import pytest
from PIL import Image

from hashdb.errors import InvalidInput
from hashdb.hashing import crops
from hashdb.hashing.derived import derived_from_json, derived_json
from hashdb.hashing.pdq import PdqSignal
from hashdb.service import HashDB
from hashdb.service.derived_gates import NEAR_WHOLE, PART_SHARE, WHOLE_CORROBORATION
from hashdb.types import DerivedHash, HashValue, Query, Submission

from support import principal

LABELS = ("glorification",)


def random_pdq(seed: int) -> str:
    # Exactly 128 ones: far from degenerate, and any two such values are ~128 bits apart.
    bits = [1] * 128 + [0] * 128
    random.Random(seed).shuffle(bits)
    return f"{int(''.join(map(str, bits)), 2):064x}"


def flipped(hexv: str, n: int, seed: int = 0) -> str:
    """`hexv` with n distinct bits flipped: exactly n bits away."""
    positions = random.Random(seed).sample(range(256), n)
    value = int(hexv, 16)
    for p in positions:
        value ^= 1 << p
    return f"{value:064x}"


def pdq(hexv: str) -> HashValue:
    return HashValue("pdq", hexv, 100)


def store(service: HashDB, whole: str, derived: tuple[DerivedHash, ...]) -> int:
    alice = principal(service, "alice", "contributor")
    result = service.submit([Submission("original", LABELS, (pdq(whole),), derived=derived)], alice)[0]
    (record_id,) = result.ids
    return record_id


def matches(service: HashDB, query: Query) -> list[tuple[int, str | None]]:
    bob = principal(service, "bob", "contributor")
    return [(m.id, m.via) for m in service.lookup([query], bob)[0].matches]


WHOLE, OTHER_WHOLE, REGION = random_pdq(1), random_pdq(2), random_pdq(3)


def test_a_stored_crop_matches_a_querys_whole_image_only(service):
    record = store(service, WHOLE, (DerivedHash("cropped", pdq(REGION), 0.7225),))
    # The query is the cropped file: its whole-image PDQ is 10 bits from the stored crop.
    assert matches(service, Query("crop", (pdq(flipped(REGION, 10)),))) == [(record, "cropped")]
    # The same value as a region a detector cut from the query is no crop of anything stored.
    region = DerivedHash("content", pdq(flipped(REGION, 10)), 0.5)
    assert matches(service, Query("region", (pdq(OTHER_WHOLE),), derived=(region,))) == []
    # Nor does a query's own "cropped" hash (queries do not compute them) count.
    own = DerivedHash("cropped", pdq(REGION), 0.7225)
    assert matches(service, Query("own crop", (pdq(OTHER_WHOLE),), derived=(own,))) == []


@pytest.mark.parametrize(("query_share", "whole_bits", "matched"), [
    (0.5, 100, False),  # same share, whole images far apart: a part two pictures share
    (0.5, WHOLE_CORROBORATION, True),  # same share, whole images close enough: the same layout
    (0.51, 100, False),  # a 2 % larger share is the same share
    (0.7, 100, True),  # another share: an edit changed the layout (a caption, a border)
    (None, 100, True),  # a share not sent (an older client): no gate
])
def test_regions_of_the_same_share_need_close_whole_images(service, query_share, whole_bits, matched):
    record = store(service, WHOLE, (DerivedHash("content", pdq(REGION), 0.5),))
    query = Query("q", (pdq(flipped(WHOLE, whole_bits, seed=5)),),
                  derived=(DerivedHash("content", pdq(flipped(REGION, 6)), query_share),))
    assert matches(service, query) == ([(record, "content")] if matched else [])


def test_a_region_matching_a_stored_whole_image_needs_no_corroboration(service):
    # The edit added something around the picture: the query's region is the stored image.
    record = store(service, WHOLE, (DerivedHash("content", pdq(REGION), 0.5),))
    query = Query("q", (pdq(OTHER_WHOLE),), derived=(DerivedHash("content", pdq(flipped(WHOLE, 8)), 1.0),))
    assert matches(service, query) == [(record, "content")]


def test_share_round_trips_through_json_and_is_checked():
    derived = (DerivedHash("trimmed", pdq(REGION), 0.4321), DerivedHash("deskewed", pdq(WHOLE)))
    raw = derived_json(derived)
    assert raw[0]["share"] == 0.4321 and "share" not in raw[1]
    assert derived_from_json(raw) == derived
    for bad in (0, 1.5, "0.5", True):
        with pytest.raises(InvalidInput, match="share"):
            derived_from_json([{"via": "trimmed", "pdq": REGION, "share": bad}])


def test_centre_boxes_keep_the_middle_share_of_each_side():
    assert crops.centre_boxes(200, 100) == [(5, 2, 195, 97), (10, 5, 190, 95), (15, 7, 185, 92), (20, 10, 180, 90)]


def encoded(image: Image.Image, kind: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, kind)
    return buffer.getvalue()


def test_stored_images_keep_their_centred_crops_and_queries_compute_none(service, media):
    photo = Image.open(media / "chelsea.jpg").convert("RGB")
    stored = service.hash_bytes(encoded(photo), "original")
    cropped = [d for d in stored.derived if d.via == "cropped"]
    # Computed independently: PIL's crop of each centred box, hashed by PDQ.
    assert [d.hash.hex for d in cropped] == [PdqSignal().compute(photo.crop(box)).hex
                                            for box in crops.centre_boxes(*photo.size)]
    assert [round(d.share or 0, 2) for d in cropped] == [0.9, 0.81, 0.72, 0.64]
    query = service.hash_bytes(encoded(photo), "query", dihedral=True)
    assert all(d.via != "cropped" for d in query.derived)


def test_a_centred_crop_matches_its_original_through_a_stored_crop(service, media):
    photo = Image.open(media / "chelsea.jpg").convert("RGB")
    alice = principal(service, "alice", "contributor")
    ids = service.submit([service.submission_for(service.hash_bytes(encoded(photo), "o"), LABELS)], alice)[0].ids
    record = next(r.id for r in service.store.get_records(list(ids)).values() if r.signal == "pdq")
    w, h = photo.size
    crop = photo.crop((round(w * 0.075), round(h * 0.075), round(w * 0.925), round(h * 0.925)))  # 85 %
    query = service.hash_bytes(encoded(crop, "JPEG"), "crop", dihedral=True)
    whole = int(query.get("pdq").hex, 16) ^ int(service.store.get_records([record])[record].value, 16)
    assert whole.bit_count() > 31  # the whole-image PDQ alone misses it
    assert matches(service, service.query_for(query)) == [(record, "cropped")]


def test_the_share_is_stored_and_exported_with_the_derived_hash(service):
    record = store(service, WHOLE, (DerivedHash("content", pdq(REGION), 0.4321), DerivedHash("deskewed", pdq(WHOLE))))
    admin = principal(service, "ops", "admin")
    entries, _ = service.export(admin)
    entry = next(e for e in entries if e.id == record)
    assert [(d.via, d.share) for d in entry.derived] == [("content", 0.4321), ("deskewed", None)]


def test_a_low_quality_region_is_neither_stored_nor_looked_up(service):
    # A remnant under PDQ's sharing quality (50): a logo or a flat strip left after trimming.
    faint = HashValue("pdq", REGION, 40)
    record = store(service, WHOLE, (DerivedHash("trimmed", faint, 0.3),))
    assert matches(service, Query("same value, whole", (pdq(REGION),))) == []
    # Queried, the same faint remnant finds nothing either, not even a stored image it equals.
    other = store(service, REGION, ())
    query = Query("q", (pdq(OTHER_WHOLE),), derived=(DerivedHash("trimmed", faint, 0.3),))
    assert matches(service, query) == []
    assert record != other


@pytest.mark.parametrize(("stored_via", "stored_share", "matched"), [
    ("content", 0.3, True),  # a stored part small enough to be the same part of the same composite
    ("content", PART_SHARE - 1e-4, True),  # just under the bound (1 / 1.4)
    ("content", 0.8, False),  # most of the stored picture: the part is a picture found inside another
    ("trimmed", 0.3, False),  # a trimmed region is the whole picture less its margins, never a part
    ("content", None, True),  # a share not stored (an older row): no gate
])
def test_a_part_of_a_composite_matches_only_what_could_be_the_same_part(service, stored_via, stored_share,
                                                                         matched):
    record = store(service, WHOLE, (DerivedHash(stored_via, pdq(REGION), stored_share),))
    # Shares 0.2 against 0.3 and more: never the same share, so no whole-image corroboration is asked.
    part = DerivedHash("content", pdq(flipped(REGION, 6)), 0.2, part=True)
    assert matches(service, Query("q", (pdq(OTHER_WHOLE),), derived=(part,))) == (
        [(record, "content")] if matched else [])
    # Not marked a part, the same region matches each of them.
    region = DerivedHash("content", pdq(flipped(REGION, 6)), 0.2)
    assert matches(service, Query("q", (pdq(OTHER_WHOLE),), derived=(region,))) == [(record, "content")]


def test_a_part_of_a_composite_never_matches_a_whole_image(service):
    record = store(service, WHOLE, ())
    region = pdq(flipped(WHOLE, 8))
    assert matches(service, Query("q", (pdq(OTHER_WHOLE),), derived=(DerivedHash("content", region, 0.4),))) == [
        (record, "content")]
    assert matches(service, Query("q", (pdq(OTHER_WHOLE),),
                                  derived=(DerivedHash("content", region, 0.4, part=True),))) == []


def test_a_part_of_the_same_share_matches_with_its_whole_image_close(service):
    # Both sides cut the same part of the same layout: SAME_SHARE's corroboration decides.
    record = store(service, WHOLE, (DerivedHash("trimmed", pdq(REGION), 0.4),))
    part = DerivedHash("content", pdq(flipped(REGION, 6)), 0.4, part=True)
    assert matches(service, Query("q", (pdq(flipped(WHOLE, 40, seed=5)),), derived=(part,))) == [
        (record, "content")]
    assert matches(service, Query("q", (pdq(flipped(WHOLE, 100, seed=5)),), derived=(part,))) == []


@pytest.mark.parametrize(("from_own_whole", "matched"), [(NEAR_WHOLE, False), (NEAR_WHOLE + 1, True)])
def test_a_region_that_is_all_but_the_querys_whole_image_is_no_evidence(service, from_own_whole, matched):
    record = store(service, WHOLE, ())
    # The query's whole image differs from the stored one in 40 bits (no match by PDQ's
    # threshold); its trimmed region differs in the first 40 - from_own_whole of those, so it is
    # 15 or 16 bits from the stored image and exactly `from_own_whole` from its own.
    positions = random.Random(7).sample(range(256), 40)
    stored = int(WHOLE, 16)
    own_whole = stored ^ sum(1 << p for p in positions)
    region = stored ^ sum(1 << p for p in positions[:40 - from_own_whole])
    query = Query("q", (pdq(f"{own_whole:064x}"),), derived=(DerivedHash("trimmed", pdq(f"{region:064x}"), 0.97),))
    assert matches(service, query) == ([(record, "trimmed")] if matched else [])
