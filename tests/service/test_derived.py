"""Derived hashes through the service: stored with the record, matched, exported, retracted."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from hashdb.hashing.pdq import PdqSignal
from hashdb.service import HashDB
from hashdb.types import HashValue, Query

from support import principal

LABELS = ("glorification",)


def encoded(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def bordered(image: Image.Image, side: int, colour: tuple[int, int, int]) -> Image.Image:
    out = Image.new("RGB", (image.width + 2 * side, image.height + 2 * side), colour)
    out.paste(image, (side, side))
    return out


def captioned(image: Image.Image, height: int) -> Image.Image:
    out = Image.new("RGB", (image.width, image.height + height), (255, 255, 255))
    ImageDraw.Draw(out).text((10, height // 4), "watch before they delete this", fill=(0, 0, 0),
                             font=ImageFont.load_default(size=height // 2))
    out.paste(image, (0, height))
    return out


def submit(service: HashDB, actor, data: bytes):
    return service.submit([service.submission_for(service.hash_bytes(data, "original"), LABELS)], actor)[0]


def lookup(service: HashDB, actor, data: bytes):
    return service.lookup([service.query_for(service.hash_bytes(data, "query", dihedral=True))], actor)[0]


def pdq_record_id(service: HashDB, ids) -> int:
    records = service.store.get_records(list(ids))
    return next(r.id for r in records.values() if r.signal == "pdq")


def test_whole_file_pdq_is_unchanged_by_derived_hashes(service, media):
    data = (media / "chelsea.jpg").read_bytes()
    hashes = service.hash_bytes(data, "chelsea")
    with Image.open(io.BytesIO(data)) as image:
        assert hashes.get("pdq") == PdqSignal().compute(image.convert("RGB"))


def test_bordered_and_captioned_copies_match_through_a_derived_hash(service, media):
    alice = principal(service, "alice", "contributor")
    photo = Image.open(media / "chelsea.jpg").convert("RGB")
    record = pdq_record_id(service, submit(service, alice, encoded(photo)).ids)
    for edited in (bordered(photo, 60, (0, 0, 0)), bordered(photo, 45, (250, 250, 250)), captioned(photo, 90)):
        data = encoded(edited)
        # The whole-image PDQ alone misses these edits...
        plain = service.lookup([Query("q", service.hash_bytes(data, "q").hashes)], alice)[0]
        assert record not in [m.id for m in plain.matches if m.signal == "pdq"]
        # ...the derived hash of the query's content region finds the record, and says so.
        result = lookup(service, alice, data)
        match = next(m for m in result.matches if m.id == record)
        assert match.signal == "pdq" and match.via in ("trimmed", "content") and match.distance <= 31


def test_original_with_a_border_matches_its_uncropped_content(service, media):
    # The stored side has the border: its derived hash matches the re-upload without it.
    alice = principal(service, "alice", "contributor")
    photo = Image.open(media / "rocket.jpg").convert("RGB")
    record = pdq_record_id(service, submit(service, alice, encoded(bordered(photo, 50, (0, 0, 0)))).ids)
    match = next(m for m in lookup(service, alice, encoded(photo)).matches if m.id == record)
    assert match.via in ("trimmed", "content")


def test_retraction_removes_the_derived_hashes_too(service, media):
    alice = principal(service, "alice", "contributor")
    photo = Image.open(media / "chelsea.jpg").convert("RGB")
    ids = submit(service, alice, encoded(photo)).ids
    query = encoded(bordered(photo, 60, (0, 0, 0)))
    assert lookup(service, alice, query).matched
    for record_id in ids:
        service.retract(record_id, alice)
    assert not lookup(service, alice, query).matched


def test_derived_hashes_are_part_of_the_record_in_the_feed(service, media):
    alice = principal(service, "alice", "contributor")
    admin = principal(service, "ops", "admin")
    photo = Image.open(media / "chelsea.jpg").convert("RGB")
    record = pdq_record_id(service, submit(service, alice, encoded(bordered(photo, 40, (0, 0, 0)))).ids)
    entries, _ = service.export(admin)
    entry = next(e for e in entries if e.id == record)
    assert [d.via for d in entry.derived][:1] == ["trimmed"]
    assert all(e.derived == () for e in entries if e.signal != "pdq")


def test_low_detail_remnants_are_not_derived(service):
    # A thin mark on flat grey inside a border: its content region has too little detail.
    canvas = Image.new("RGB", (400, 300), (0, 0, 0))
    inner = Image.new("RGB", (300, 200), (128, 128, 128))
    ImageDraw.Draw(inner).line((10, 100, 290, 101), fill=(140, 140, 140))
    canvas.paste(inner, (50, 50))
    hashes = service.hash_bytes(encoded(canvas), "flat")
    assert hashes.derived == ()


def test_reference_path_without_derived_hashes_misses_the_border(service, media):
    alice = principal(service, "alice", "contributor")
    photo = Image.open(media / "chelsea.jpg").convert("RGB")
    submit(service, alice, encoded(photo))
    plain = HashDB(dataclasses.replace(service.settings, derived_hashes=False), service.store, service.indexes,
                   service.taxonomy, service.server_secret)
    query = encoded(bordered(photo, 60, (0, 0, 0)))
    assert not any(m.signal == "pdq" for m in lookup(plain, alice, query).matches)
    assert any(m.via for m in lookup(service, alice, query).matches)


def test_unrelated_image_matches_nothing(service, media):
    alice = principal(service, "alice", "contributor")
    submit(service, alice, (media / "chelsea.jpg").read_bytes())
    other = Image.open(media / "astronaut.jpg").convert("RGB")
    result = lookup(service, alice, encoded(captioned(bordered(other, 30, (0, 0, 0)), 80)))
    assert not result.matched


def test_index_rebuilt_from_the_store_keeps_derived_hashes(service, media, tmp_path: Path):
    alice = principal(service, "alice", "contributor")
    photo = Image.open(media / "chelsea.jpg").convert("RGB")
    submit(service, alice, encoded(photo))
    service.indexes.rebuild()
    assert lookup(service, alice, encoded(bordered(photo, 60, (0, 0, 0)))).matched
    assert np.isfinite(len(service.indexes.sizes()))


# The safelist screens derived hashes too ---------------------------------------------------------

def statuses(service: HashDB, result) -> set[str]:
    return {r.status for r in service.store.get_records(list(result.ids)).values()}


def test_a_safelisted_files_derived_hashes_hold_back_its_bare_picture(service, media):
    # The benign picture was safelisted as it circulates, inside a black border: the bare
    # picture (whole PDQ far from the bordered file's) is held by the border-trimmed PDQ.
    admin, alice = principal(service, "ops", "admin"), principal(service, "alice", "contributor")
    photo = Image.open(media / "chelsea.jpg").convert("RGB")
    safe = service.hash_bytes(encoded(bordered(photo, 60, (0, 0, 0))), "benign")
    assert any(d.via == "trimmed" for d in safe.derived)
    service.add_safelist([safe], admin, "news photo")
    result = submit(service, alice, encoded(photo))
    assert result.status == "quarantined"
    reasons = [q.reason for q in service.quarantined(admin)]
    assert any(r.startswith("pdq within") for r in reasons), reasons


def test_a_submission_whose_derived_hash_is_safelisted_is_held(service, media):
    # A benign picture wrapped in a caption band: its whole PDQ is far from the safelist, its
    # content PDQ is not. Stored active, it would match every plain copy of the benign picture.
    admin, alice = principal(service, "ops", "admin"), principal(service, "alice", "contributor")
    photo = Image.open(media / "chelsea.jpg").convert("RGB")
    service.add_safelist([service.hash_bytes(encoded(photo), "benign")], admin)
    result = submit(service, alice, encoded(captioned(photo, 120)))
    assert result.status == "quarantined"
    assert any("pdq/content within" in q.reason or "pdq/trimmed within" in q.reason
               for q in service.quarantined(admin))
    consumer = principal(service, "c", "consumer")
    assert not lookup(service, consumer, encoded(photo)).matched


def test_safelisting_holds_records_whose_derived_hash_is_near(service, media):
    admin, alice = principal(service, "ops", "admin"), principal(service, "alice", "contributor")
    photo = Image.open(media / "chelsea.jpg").convert("RGB")
    early = submit(service, alice, encoded(captioned(photo, 120)))
    assert early.status == "active" and lookup(service, alice, encoded(photo)).matched
    _, held = service.add_safelist([service.hash_bytes(encoded(photo), "benign")], admin)
    assert pdq_record_id(service, early.ids) in held
    consumer = principal(service, "c", "consumer")
    assert not lookup(service, consumer, encoded(photo)).matched


def test_a_slightly_turned_copy_matches_through_its_deskewed_hash(service, media):
    # Turned 4 degrees inside its frame (black corner wedges), as an editor's rotate leaves it:
    # the whole-image PDQ is far past 31; turned back upright, the query's PDQ is not.
    alice = principal(service, "alice", "contributor")
    photo = Image.open(media / "chelsea.jpg").convert("RGB")
    record = pdq_record_id(service, submit(service, alice, encoded(photo)).ids)
    for degrees in (4.0, -3.0):
        data = encoded(photo.rotate(degrees, resample=Image.Resampling.BILINEAR, fillcolor=(0, 0, 0)))
        plain = service.lookup([Query("q", service.hash_bytes(data, "q").hashes)], alice)[0]
        assert record not in [m.id for m in plain.matches if m.signal == "pdq"]
        match = next(m for m in lookup(service, alice, data).matches if m.id == record)
        assert (match.signal, match.via) == ("pdq", "deskewed") and match.distance <= 31
    # An upright upload gets no deskewed hash at all.
    assert all(d.via != "deskewed" for d in service.hash_bytes(encoded(photo), "upright").derived)


def test_a_copy_turned_on_a_grown_canvas_matches_through_its_deskewed_hash(service, media):
    # ImageMagick's -rotate (Pillow's expand=True) grows the canvas to hold the whole turned
    # picture: four wedges of another shape, nothing cut off. Turned back and cut to its own
    # size, the picture is whole, and matches the stored whole image.
    alice = principal(service, "alice", "contributor")
    for name in ("chelsea.jpg", "astronaut.jpg", "coffee.jpg"):
        photo = Image.open(media / name).convert("RGB")
        record = pdq_record_id(service, submit(service, alice, encoded(photo)).ids)
        for degrees in (3.0, -4.0, 5.0):
            for fill in ((0, 0, 0), (255, 255, 255)):
                turned = photo.rotate(degrees, resample=Image.Resampling.BICUBIC, fillcolor=fill, expand=True)
                data = encoded(turned)
                plain = service.lookup([Query("q", service.hash_bytes(data, "q").hashes)], alice)[0]
                assert record not in [m.id for m in plain.matches if m.signal == "pdq"], (name, degrees, fill)
                match = next((m for m in lookup(service, alice, data).matches if m.id == record), None)
                assert match is not None and (match.signal, match.via) == ("pdq", "deskewed"), (name, degrees, fill)


def test_a_turned_copys_fitting_crop_matches_only_the_stored_crop_of_its_share(service, media):
    # Turned 5 degrees, the deskewed picture has lost its corners; the largest centred crop it
    # still fills (85 % of each side of this 451 x 300 picture: 300 / (451 sin 5 + 300 cos 5)
    # is 0.887) is what the stored 85 % crop holds.
    from hashdb.types import DerivedHash

    alice = principal(service, "alice", "contributor")
    photo = Image.open(media / "chelsea.jpg").convert("RGB")
    ids = submit(service, alice, encoded(photo)).ids
    record = pdq_record_id(service, ids)
    data = encoded(photo.rotate(5.0, resample=Image.Resampling.BILINEAR, fillcolor=(0, 0, 0)))
    crop = next(d for d in service.hash_bytes(data, "q", dihedral=True).derived
                if d.via == "deskewed" and d.share is not None)
    assert abs(crop.share - 0.85 ** 2) < 0.01
    alone = service.lookup([Query("q", derived=(crop,))], alice)[0]
    assert [(m.id, m.via) for m in alone.matches] == [(record, "deskewed")]
    # Nothing else answers it: not the record's whole-image PDQ, nor a crop of another share.
    whole = service.store.get_records([record])[record].value
    as_whole = DerivedHash("deskewed", HashValue("pdq", whole, 100), crop.share)
    assert not service.lookup([Query("q", derived=(as_whole,))], alice)[0].matched
    other_share = dataclasses.replace(crop, share=0.64)
    assert not service.lookup([Query("q", derived=(other_share,))], alice)[0].matched


def test_a_screenshot_keeping_the_drawings_ground_matches_through_the_trimmed_region(service, media, monkeypatch):
    # The stored drawing's border trim removed its white ground; in the screenshot, the page
    # beside the ground keeps its rows in the content region, and only trimming inside that
    # region again (a lookup's own region) finds the drawing as stored.
    from hashdb.hashing import derived

    alice = principal(service, "alice", "contributor")
    photo = Image.open(media / "chelsea.jpg").convert("RGB").resize((200, 150))
    ground = Image.new("RGB", (260, 200), (255, 255, 255))
    ground.paste(photo, (30, 25))
    page = Image.new("RGB", (400, 350), (32, 33, 36))
    page.paste(ground, (70, 90))
    draw = ImageDraw.Draw(page)
    draw.rectangle((0, 0, 399, 39), fill=(222, 225, 230))
    draw.text((8, 10), "https://example.org/watch", fill=(0, 0, 0), font=ImageFont.load_default(size=16))
    draw.text((8, 305), "shared 3 hours ago", fill=(200, 200, 200), font=ImageFont.load_default(size=14))
    record = pdq_record_id(service, submit(service, alice, encoded(ground)).ids)
    data = encoded(page)
    # A lookup's regions only: the stored side's regions of the same file are fewer.
    stored = [d for d in service.hash_bytes(data, "page").derived if d.via == "content"]
    queried = [d for d in service.hash_bytes(data, "page", dihedral=True).derived if d.via == "content"]
    assert len(queried) > len(stored)
    match = next(m for m in lookup(service, alice, data).matches if m.id == record)
    assert match.via == "content" and match.distance <= 31
    with monkeypatch.context() as patched:  # a lookup with the stored side's regions only (and no keypoints)
        stored_side = derived.derived_pdqs
        patched.setattr(derived, "derived_pdqs",
                        lambda image, quality, lookup=False, **shared: stored_side(image, quality, **shared))
        query = dataclasses.replace(service.query_for(service.hash_bytes(data, "query", dihedral=True)), probe=None)
        assert record not in [m.id for m in service.lookup([query], alice)[0].matches]


def with_corner_logo(image: Image.Image, text: str = "NEWS 24") -> Image.Image:
    """An opaque channel logo of about a seventh of the picture in its top right corner."""
    out = image.copy()
    w, h = round(image.width * 0.45), round(image.height * 0.33)
    left, top = image.width - w - 8, 8
    draw = ImageDraw.Draw(out)
    draw.rounded_rectangle((left, top, left + w, top + h), radius=h // 4, fill=(200, 20, 30))
    draw.text((left + w // 2, top + h // 2), text, fill=(255, 255, 255), anchor="mm",
              font=ImageFont.load_default(size=h // 3))
    return out


def test_a_copy_with_a_corner_logo_matches_through_its_masked_hash(service, media, monkeypatch):
    from hashdb.hashing import masked

    alice = principal(service, "alice", "contributor")
    photo = Image.open(media / "rocket.jpg").convert("RGB")
    record = pdq_record_id(service, submit(service, alice, encoded(photo)).ids)
    data = encoded(with_corner_logo(photo))
    # The logo moves the whole image's PDQ past 31 bits; the covered copies stay within 5.
    plain = service.lookup([Query("q", service.hash_bytes(data, "q").hashes)], alice)[0]
    assert record not in [m.id for m in plain.matches]
    match = next(m for m in lookup(service, alice, data).matches if m.id == record)
    assert match.via == "masked" and match.distance <= 5
    with monkeypatch.context() as patched:  # no cover on the query: the logo stays in every hash
        patched.setattr(masked, "masked_pdqs", lambda image, min_quality, small=None: ())
        assert record not in [m.id for m in lookup(service, alice, data).matches]
    # A caller's tighter PDQ threshold caps the masked radius too.
    query = service.query_for(service.hash_bytes(data, "query", dihedral=True))
    for threshold in range(0, 6):
        found = [m for m in service.lookup([query], alice, {"pdq": threshold})[0].matches if m.id == record]
        assert bool(found) == (threshold >= match.distance), threshold


def test_another_picture_with_the_same_logo_does_not_match(service, media):
    alice = principal(service, "alice", "contributor")
    photo = Image.open(media / "rocket.jpg").convert("RGB")
    record = pdq_record_id(service, submit(service, alice, encoded(with_corner_logo(photo))).ids)
    for name in ("chelsea.jpg", "astronaut.jpg", "camera.png", "coffee.jpg"):
        other = Image.open(media / name).convert("RGB").resize(photo.size)
        assert record not in [m.id for m in lookup(service, alice, encoded(with_corner_logo(other))).matches]


def test_masked_hashes_match_only_masked_hashes(service, media):
    # A stored masked hash offered as a query's whole-image PDQ (or as another kind of derived
    # hash) matches nothing: 80 % of one picture is not the whole of another.
    from hashdb.hashing.derived import CONTENT, MASKED
    from hashdb.types import DerivedHash

    alice = principal(service, "alice", "contributor")
    photo = Image.open(media / "chelsea.jpg").convert("RGB")
    hashes = service.hash_bytes(encoded(photo), "original")
    service.submit([service.submission_for(hashes, LABELS)], alice)
    covered = next(d.hash for d in hashes.derived if d.via == MASKED)
    as_whole = service.lookup([Query("whole", (covered,))], alice)[0]
    as_region = service.lookup([Query("region", derived=(DerivedHash(CONTENT, covered, 0.5),))], alice)[0]
    assert as_whole.matches == () and as_region.matches == ()


def _drawing(seed: int, redrawn: int = 0, size: int = 240) -> Image.Image:
    # 25 coloured boxes; the last `redrawn` of them from another seed: a variant of the drawing.
    first, other = np.random.default_rng(seed), np.random.default_rng(99)
    image = Image.new("RGB", (size, size), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    for n in range(25):
        rng = other if n >= 25 - redrawn else first
        x, y = (int(v) for v in rng.integers(0, size - 40, 2))
        w, h = (int(v) for v in rng.integers(10, 60, 2))
        draw.rectangle((x, y, x + w, y + h), fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
    return image


def _side_by_side(right: Image.Image) -> Image.Image:
    # Two drawings on one white page: the layout keeps one of them, the left, as the content
    # region, a part of the composite (split near 1).
    page = Image.new("RGB", (600, 300), (255, 255, 255))
    page.paste(_drawing(1), (20, 30))
    page.paste(right, (340, 30))
    return page


def test_a_stored_composite_shares_no_part_of_itself(service):
    from hashdb.hashing import regions
    from hashdb.hashing.derived import CONTENT, PART_SPLIT

    alice = principal(service, "alice", "contributor")
    # Pages sharing the left drawing, their right ones a third redrawn: whole images about 50
    # bits apart, past PDQ's 31 but close enough to corroborate a same-share region match.
    stored, other = _side_by_side(_drawing(2)), _side_by_side(_drawing(2, redrawn=8))
    pdq = PdqSignal()
    assert 31 < PdqSignal.distance(pdq.compute(stored).hex, pdq.compute(other).hex) <= 64
    # What the test stands on: the detectors take the left drawing of each page as its content.
    for page in (stored, other):
        found = regions.layout(np.asarray(page))
        assert found.split >= PART_SPLIT and found.content.width < page.width / 2
    assert CONTENT not in [d.via for d in service.hash_bytes(encoded(stored), "stored").derived]
    submit(service, alice, encoded(stored))
    # The other page is another picture: the part they share is no evidence.
    assert not lookup(service, alice, encoded(other)).matched
    # The page itself under a caption band is still found.
    assert lookup(service, alice, encoded(captioned(stored, 60))).matched
