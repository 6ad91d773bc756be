"""What an enlarged copy of a small image (hashing/enlarged.py) may match (service/matching.py):
another enlarged copy within ENLARGED_RADIUS, or within ENLARGED_CORROBORATED when the whole
images are within WHOLE_CORROBORATION, in agreeing colours; and the whole image of a picture
that is not small. Hand-made hashes first, so every distance is known; then small drawings and
patterns drawn with PIL, end to end."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from hashdb.hashing.derived import derived_from_json
from hashdb.io.output import feed_json
from hashdb.service import HashDB
from hashdb.service.derived_gates import ENLARGED_CORROBORATED, ENLARGED_RADIUS, WHOLE_CORROBORATION
from hashdb.types import DerivedHash, Query

from support import principal
from test_colour_gate import GUINEA, IRELAND, layout
from test_derived_gates import LABELS, OTHER_WHOLE, REGION, WHOLE, flipped, matches, pdq, store

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hashing"))
from test_enlarged import drawing, encoded  # noqa: E402


def enlarged(hexv: str, colours: str | None = None) -> DerivedHash:
    return DerivedHash("enlarged", pdq(hexv), colours=colours)


@pytest.mark.parametrize(("bits", "whole_bits", "matched"), [
    (ENLARGED_RADIUS, None, True),  # close enough alone
    (ENLARGED_RADIUS + 2, None, False),  # the whole images far apart: no corroboration
    (ENLARGED_RADIUS + 2, WHOLE_CORROBORATION, True),
    (ENLARGED_CORROBORATED, WHOLE_CORROBORATION, True),
    (ENLARGED_CORROBORATED, WHOLE_CORROBORATION + 2, False),
    (ENLARGED_CORROBORATED + 2, 40, False),  # past the band, whatever the whole images say
])
def test_two_enlarged_copies_match_within_the_radius_or_corroborated(service, bits, whole_bits, matched):
    record = store(service, WHOLE, (enlarged(REGION),))
    whole = OTHER_WHOLE if whole_bits is None else flipped(WHOLE, whole_bits, seed=1)
    query = Query("small", (pdq(whole),), derived=(enlarged(flipped(REGION, bits)),))
    assert matches(service, query) == ([(record, "enlarged")] if matched else [])


def test_two_enlarged_copies_must_agree_in_colour(service):
    record = store(service, WHOLE, (enlarged(REGION, layout(IRELAND)),))
    same = enlarged(flipped(REGION, 4), layout(IRELAND))
    other = enlarged(flipped(REGION, 4), layout(GUINEA))
    assert matches(service, Query("same", (pdq(OTHER_WHOLE),), derived=(same,))) == [(record, "enlarged")]
    assert matches(service, Query("other", (pdq(OTHER_WHOLE),), derived=(other,))) == []


def test_an_enlarged_copy_matches_the_whole_image_of_a_picture_that_is_not_small(service):
    large = store(service, WHOLE, (DerivedHash("trimmed", pdq(REGION), 0.8),))
    # A small query (a copy reduced to a third, say) against the large picture's own PDQ.
    query = Query("reduced", (pdq(OTHER_WHOLE),), derived=(enlarged(flipped(WHOLE, 30)),))
    assert matches(service, query) == [(large, "enlarged")]


@pytest.mark.parametrize(("bits", "whole_bits", "matched"), [
    (ENLARGED_RADIUS, None, True),  # close enough alone
    (30, None, False),  # within PDQ's 31 bits, but nothing says the stored picture is not small
    (30, WHOLE_CORROBORATION, True),  # the whole images corroborate it
])
def test_a_picture_shared_as_a_bare_hash_meets_an_enlarged_copy_only_close_or_corroborated(
        service, bits, whole_bits, matched):
    # Found in trial: an 80-pixel grid shared as a bare pdq: hash (as HMA or ThreatExchange
    # members share) matched 112-pixel stripes through their enlarged copy at 28 bits, the
    # whole images 128 apart: a bare hash says nothing of the picture's size.
    bare = store(service, WHOLE, ())
    whole = OTHER_WHOLE if whole_bits is None else flipped(WHOLE, whole_bits, seed=1)
    query = Query("small", (pdq(whole),), derived=(enlarged(flipped(WHOLE, bits)),))
    assert matches(service, query) == ([(bare, "enlarged")] if matched else [])


def test_an_enlarged_copy_does_not_match_the_whole_image_of_a_small_picture(service):
    # The stored picture is small (it has an enlarged copy): its whole-image PDQ read its pixels
    # unsmoothed, and only its enlarged copy is comparable with the query's.
    store(service, WHOLE, (enlarged(REGION),))
    query = Query("small", (pdq(OTHER_WHOLE),), derived=(enlarged(flipped(WHOLE, 20)),))
    assert matches(service, query) == []


def test_a_whole_image_matches_a_stored_enlarged_copy_unless_the_query_is_small(service):
    record = store(service, WHOLE, (enlarged(REGION),))
    large = Query("enlarged copy", (pdq(flipped(REGION, 30)),))
    assert matches(service, large) == [(record, "enlarged")]
    small = Query("small", (pdq(flipped(REGION, 30)),), derived=(enlarged(OTHER_WHOLE),))
    assert matches(service, small) == []


def dots(shift: int) -> Image.Image:
    """A 96-pixel grid of black dots (radius 2, every 10 pixels) on white, moved by `shift`
    pixels each way: a repeating pattern, as tiles and wallpapers are."""
    image = Image.new("RGB", (96, 96), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    for x in range(-10, 106, 10):
        for y in range(-10, 106, 10):
            cx, cy = x + shift + 5, y + shift + 5
            draw.ellipse((cx - 2, cy - 2, cx + 2, cy + 2), fill=(0, 0, 0))
    return image


def bits(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


@pytest.mark.parametrize("enlarged_copies", [True, False])
def test_a_resized_small_drawing_matches_only_through_its_enlarged_copy(service: HashDB, enlarged_copies):
    alice = principal(service, "alice", "contributor")
    original = drawing(11)  # 96 pixels, outlines a pixel wide
    half = original.resize((48, 48), Image.Resampling.BICUBIC)
    stored = service.hash_bytes(encoded(original), "original")
    query = service.hash_bytes(encoded(half, "JPEG"), "half", dihedral=True)
    if not enlarged_copies:  # as both sides were hashed before them (and before keypoints)
        stored, query = (dataclasses.replace(h, derived=tuple(d for d in h.derived if d.via != "enlarged"),
                                             keypoints=None, probe=None)
                         for h in (stored, query))
    [result] = service.submit([service.submission_for(stored, LABELS)], alice)
    found = service.lookup([service.query_for(query)], alice)[0].matches
    if enlarged_copies:
        assert [(m.id in result.ids, m.via) for m in found] == [(True, "enlarged")]
        assert found[0].distance <= ENLARGED_RADIUS
        # Stored with the record, and exported with it as the other derived hashes are.
        entries, _ = service.export(principal(service, "ops", "admin"))
        [line] = [feed_json(e) for e in entries if e.id == found[0].id]
        [exported] = [d for d in line["derived"] if d["via"] == "enlarged"]
        assert derived_from_json([exported], feed=True)[0].hash.hex in {d.hash.hex for d in stored.derived}
    else:
        assert found == ()


def test_a_shifted_dot_pattern_is_refused(service: HashDB):
    alice = principal(service, "alice", "contributor")
    stored = service.hash_bytes(encoded(dots(0)), "dots")
    service.submit([service.submission_for(stored, LABELS)], alice)
    query = service.hash_bytes(encoded(dots(3), "JPEG"), "shifted", dihedral=True)
    # A periodic pattern: no enlarged copy is made (enlarged.PARITY_ALIKE; before that gate
    # the two copies were 16 bits apart and only the whole images' distance refused them), and
    # the whole images are far apart (the pattern's whole-image PDQ reads its dots unsmoothed).
    assert not [d for d in (*stored.derived, *query.derived) if d.via == "enlarged"]
    wholes = [v.hex for v in (*query.hashes, *query.dihedral) if v.signal == "pdq"]
    [whole] = [v.hex for v in stored.hashes if v.signal == "pdq"]
    assert min(bits(whole, w) for w in wholes) > WHOLE_CORROBORATION
    assert not service.lookup([service.query_for(query)], alice)[0].matched
