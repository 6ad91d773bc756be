"""Two derived hashes that match must agree in colour too (service/matching.py, COLOUR_GAP):
PDQ reads brightness only. Hand-made hashes with the colour layouts of synthetic flags, then
pictures whose colours are turned while every pixel keeps its brightness."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest
from PIL import Image, ImageOps

from hashdb.errors import InvalidInput
from hashdb.hashing import colour
from hashdb.hashing.derived import derived_from_json, derived_json
from hashdb.service import HashDB
from hashdb.service.derived_gates import COLOUR_GAP
from hashdb.types import DerivedHash, Query

from support import principal
from test_derived_gates import LABELS, OTHER_WHOLE, REGION, WHOLE, flipped, matches, pdq, store

# Ireland's and Guinea's stripes: tricolours PDQ sees alike.
IRELAND = ((22, 155, 98), (255, 255, 255), (255, 136, 62))
GUINEA = ((206, 17, 38), (252, 209, 22), (0, 148, 96))


def layout(stripes: tuple[tuple[int, int, int], ...]) -> str:
    pixels = np.zeros((60, 90, 3), dtype=np.uint8)
    for n, rgb in enumerate(stripes):
        pixels[:, n * 30:(n + 1) * 30] = rgb
    return colour.layout(pixels)


GREY_IRELAND = layout(tuple((round(0.299 * r + 0.587 * g + 0.114 * b),) * 3 for r, g, b in IRELAND))


def test_the_flags_fall_on_either_side_of_the_gate():
    assert colour.colour_gap(layout(GUINEA), layout(IRELAND)) > COLOUR_GAP
    assert colour.colour_gap(GREY_IRELAND, layout(IRELAND)) < 1


@pytest.mark.parametrize(("query_colours", "matched"), [
    (layout(IRELAND), True),  # the same colours
    (GREY_IRELAND, True),  # a grey copy: greying takes colours away
    (layout(GUINEA), False),  # the same brightness in other colours: another picture
    (None, True),  # no layout sent (an older client): no gate
])
@pytest.mark.parametrize("via", ["trimmed", "content"])
def test_a_region_matches_a_stored_region_only_in_its_colours(service, via, query_colours, matched):
    # Shares 0.45 and 0.6: not the same layout, so no whole-image corroboration is asked.
    record = store(service, WHOLE, (DerivedHash("trimmed", pdq(REGION), 0.45, layout(IRELAND)),))
    region = DerivedHash(via, pdq(flipped(REGION, 20)), 0.6, query_colours)
    assert matches(service, Query("q", (pdq(OTHER_WHOLE),), derived=(region,))) == (
        [(record, via)] if matched else [])


def test_a_stored_region_without_a_layout_is_not_gated(service):
    record = store(service, WHOLE, (DerivedHash("trimmed", pdq(REGION), 0.45),))  # stored before layouts were kept
    region = DerivedHash("trimmed", pdq(flipped(REGION, 20)), 0.6, layout(GUINEA))
    assert matches(service, Query("q", (pdq(OTHER_WHOLE),), derived=(region,))) == [(record, "trimmed")]


def test_corner_masked_hashes_must_agree_in_colour_too(service):
    # Repeating stripes black on orange and black on grey: the same corner-masked PDQ.
    record = store(service, WHOLE, (DerivedHash("masked", pdq(REGION), None, GREY_IRELAND),))
    near_whole = pdq(flipped(WHOLE, 40, seed=5))  # within MASKED_CORROBORATION
    coloured = DerivedHash("masked", pdq(flipped(REGION, 2)), None, layout(IRELAND))
    assert matches(service, Query("q", (near_whole,), derived=(coloured,))) == []
    grey = DerivedHash("masked", pdq(flipped(REGION, 2)), None, GREY_IRELAND)
    assert matches(service, Query("q", (near_whole,), derived=(grey,))) == [(record, "masked")]


def test_a_whole_image_pdq_carries_no_colours_and_is_not_gated(service):
    record = store(service, WHOLE, (DerivedHash("trimmed", pdq(REGION), 0.45, layout(IRELAND)),))
    assert matches(service, Query("q", (pdq(flipped(REGION, 20)),))) == [(record, "trimmed")]


def test_colours_round_trip_through_json_and_are_checked():
    derived = (DerivedHash("trimmed", pdq(REGION), 0.4321, layout(IRELAND)), DerivedHash("deskewed", pdq(WHOLE)))
    raw = derived_json(derived)
    assert raw[0]["colours"] == layout(IRELAND) and "colours" not in raw[1]
    assert derived_from_json(raw) == derived
    for bad in ("", "169b62", layout(IRELAND).upper(), layout(IRELAND) + "00", 7):
        with pytest.raises(InvalidInput, match="colours"):
            derived_from_json([{"via": "trimmed", "pdq": REGION, "colours": bad}])


def test_colours_are_stored_and_exported_with_the_derived_hash(service):
    record = store(service, WHOLE, (DerivedHash("trimmed", pdq(REGION), 0.45, layout(IRELAND)),
                                    DerivedHash("deskewed", pdq(WHOLE))))
    entries, _ = service.export(principal(service, "ops", "admin"))
    entry = next(e for e in entries if e.id == record)
    assert [d.colours for d in entry.derived] == [layout(IRELAND), None]


# ---------------------------------------------------------------- pictures, hashed end to end

def flag(turn_degrees: float = 0.0) -> Image.Image:
    """A 3 x 3 grid of coloured cells of several brightnesses on a white page; `turn_degrees`
    turns each cell's colour (its Cb/Cr) about the grey axis, so every pixel keeps its
    brightness (BT.601 luma, what PDQ reads) and the picture changes in colour alone."""
    luma = ((70.0, 150.0, 110.0), (150.0, 90.0, 70.0), (110.0, 70.0, 160.0))
    chroma = ((-30.0, 40.0), (35.0, 25.0), (20.0, -45.0))
    turn = np.radians(turn_degrees)
    pixels = np.full((300, 400, 3), 255, dtype=np.uint8)
    for row in range(3):
        for column in range(3):
            cb, cr = chroma[(row + column) % 3]
            cb, cr = cb * np.cos(turn) - cr * np.sin(turn), cb * np.sin(turn) + cr * np.cos(turn)
            y = luma[row][column]
            rgb = (y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb)
            top, left = 40 + row * 74, 50 + column * 100
            pixels[top:top + 74, left:left + 100] = np.clip(np.round(rgb), 0, 255)
    return Image.fromarray(pixels)


def bordered(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    ImageOps.expand(image, border=80, fill=(0, 0, 0)).save(buffer, "PNG")
    return buffer.getvalue()


def encoded(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def lookup(service: HashDB, data: bytes, strip_colours: bool = False) -> list[tuple[int, str | None]]:
    query = service.query_for(service.hash_bytes(data, "q", dihedral=True))
    if strip_colours:
        query = dataclasses.replace(query, derived=tuple(dataclasses.replace(d, colours=None) for d in query.derived))
    return matches(service, query)


def test_a_bordered_copy_in_other_colours_matches_only_without_the_gate(service):
    alice = principal(service, "alice", "contributor")
    result = service.submit([service.submission_for(service.hash_bytes(encoded(flag()), "o"), LABELS)], alice)[0]
    record = next(r.id for r in service.store.get_records(list(result.ids)).values() if r.signal == "pdq")
    # The border moves the whole image's PDQ past any radius; the picture inside matches its region.
    assert [m[0] for m in lookup(service, bordered(flag()))] == [record]
    grey = ImageOps.grayscale(flag()).convert("RGB")
    assert [m[0] for m in lookup(service, bordered(grey))] == [record]
    # Turned colours, the same brightness everywhere: a derived match PDQ cannot tell apart...
    recoloured = bordered(flag(turn_degrees=150))
    assert [m[0] for m in lookup(service, recoloured, strip_colours=True)] == [record]
    # ...which the colour layouts can.
    assert lookup(service, recoloured) == []
