"""Keypoints (hashing/keypoints.py): a crop with known geometry is found where it was cut and
confirmed by the aligned PDQ; an unrelated picture is not; the stored format is read strictly."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hashdb.config import Settings
from hashdb.errors import InvalidInput
from hashdb.hashing import keypoints, keypoints_text
from hashdb.hashing.derived import work_copy

MEDIA = Path(__file__).resolve().parents[2] / "fixtures" / "media"
MIN_QUALITY = Settings().pdq_min_quality


def picture(name: str) -> Image.Image:
    return Image.open(MEDIA / name).convert("RGB")


def jpeg(image: Image.Image) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def stored(image: Image.Image) -> keypoints.Keypoints:
    data = keypoints.stored_keypoints(work_copy(image), MIN_QUALITY)
    assert data is not None
    return keypoints.parse(data)


@pytest.mark.parametrize(("share", "left", "top"), [(0.8, 0.0, 0.2), (0.85, 0.15, 0.0), (0.9, 0.05, 0.05)])
def test_an_off_centre_crop_is_found_where_it_was_cut(share, left, top):
    original = picture("astronaut.jpg")
    width, height = original.size
    box = (round(left * width), round(top * height), round(left * width) + round(share * width),
           round(top * height) + round(share * height))
    probe = keypoints.probe(work_copy(jpeg(original.crop(box))))
    assert probe is not None
    found = keypoints.align(probe, stored(original))
    assert found is not None
    # The query's work copy is the crop at 512 / (share * width); the stored one the original
    # at 512 / width: query pixels map to stored ones at `share`, its corner at the cut's.
    assert found.scale == pytest.approx(share, abs=0.02)
    assert abs(found.rotation) < 1
    assert found.covered == pytest.approx(share * share, abs=0.03)
    assert found.distance <= keypoints.ALIGNED_RADIUS
    # an 80 % crop anywhere holds only the middle 60 %; a centred 90 % crop the middle 80 %
    assert found.share <= share


def test_the_fitted_transform_puts_the_crop_where_it_was_cut():
    original = picture("astronaut.jpg")
    width, height = original.size
    cut = (round(0.15 * width), round(0.1 * height))
    query = original.crop((*cut, cut[0] + round(0.85 * width), cut[1] + round(0.85 * height)))
    probe = keypoints.probe(work_copy(jpeg(query)))
    assert probe is not None
    kept = stored(original)
    mine = probe.keypoints
    # the query's top-left corner lands at the cut, in stored work pixels
    found = keypoints.align(probe, kept)
    assert found is not None
    scale_to_work = keypoints.WORK_SIDE / max(width, height)
    expected = np.array(cut) * scale_to_work
    fitted = keypoints.fit(probe, kept)
    assert fitted is not None
    matrix, _ = fitted
    assert np.allclose(matrix[:, 2], expected, atol=3)
    assert mine.size[0] == keypoints.WORK_SIDE


def test_an_unrelated_picture_is_not_found():
    probe = keypoints.probe(work_copy(jpeg(picture("camera.png"))))
    assert probe is not None
    assert keypoints.align(probe, stored(picture("astronaut.jpg"))) is None


def test_a_picture_too_flat_has_no_keypoints():
    flat = np.full((300, 400, 3), 128, np.uint8)
    assert keypoints.stored_keypoints(flat, MIN_QUALITY) is None
    assert keypoints.probe(flat) is None


def test_the_stored_format_reads_back_what_was_written():
    work = work_copy(picture("astronaut.jpg"))
    found = keypoints.detect(keypoints.grey_copy(work), keypoints.STORED_COUNT)
    data = keypoints.stored_keypoints(work, MIN_QUALITY)
    assert data is not None and len(data) <= keypoints.MAX_BYTES
    back = keypoints.parse(data)
    assert back.size == found.size
    assert np.array_equal(back.descriptors, found.descriptors)
    # positions to the grid: within half a step of where they were found
    assert np.abs(back.points - found.points).max() <= keypoints.GRID / 2
    assert keypoints.from_text(keypoints_text.encode_text(data)) == data
    # the boxes' PDQs, hashed from one luma in one call, are each box's own PDQ
    grey = keypoints.grey_copy(work)
    for share, (value, quality) in back.boxes.items():
        assert (value, quality) == keypoints.box_pdq(grey, keypoints.centred_box(*back.size, share))


def valid() -> bytearray:
    data = keypoints.stored_keypoints(work_copy(picture("astronaut.jpg")), MIN_QUALITY)
    assert data is not None
    return bytearray(data)


def header_count(data: bytearray) -> int:
    return int.from_bytes(data[8:10], "little")


@pytest.mark.parametrize("damage", [
    lambda d: d[:5],
    lambda d: d[:-1],
    lambda d: d + b"\0",
    lambda d: b"XX" + d[2:],
    lambda d: d[:2] + bytes([2]) + d[3:],
    lambda d: d[:3] + bytes([0]) + d[4:],
    lambda d: d[:4] + (300).to_bytes(2, "little") + d[6:],
    lambda d: d[:8] + (5).to_bytes(2, "little") + d[10:],
    lambda d: d[:10] + bytes([101]) + d[11:],
    lambda d: d[:10] + bytes([0]) + d[11:],
    lambda d: d[:10] + bytes(33 * 3) + d[10 + 99:],
    lambda d: d[:10 + 99] + bytes([200]) + d[10 + 100:],
    lambda d: d[:10] + bytes(33) + d[43:],
], ids=["header cut", "one byte short", "one byte long", "magic", "version", "flags", "size", "count",
        "quality over 100", "a PDQ of quality 0", "no box", "a point outside", "no whole box"])
def test_a_damaged_blob_is_refused(damage):
    data = bytes(damage(valid()))
    with pytest.raises(InvalidInput):
        keypoints.parse(data)


@pytest.mark.parametrize("text", ["not base64!", "SEs=" * 5000, 42, "SEsBAQ=="])
def test_text_that_is_not_a_blob_is_refused(text):
    with pytest.raises(InvalidInput):
        keypoints.from_text(text)


def test_the_middle_box_alone_stands_for_a_crop_only():
    # The picture moved down under a band of other drawing, its bottom cut off: only the stored
    # middle 60 % lies inside the query, and the query shows more than the stored picture.
    original = picture("astronaut.jpg").resize((512, 512))
    query = Image.new("RGB", (512, 512), (240, 240, 240))
    query.paste(original.crop((0, 0, 512, 432)), (0, 80))
    band = picture("camera.png").resize((512, 80))
    query.paste(band, (0, 0))
    probe = keypoints.probe(work_copy(jpeg(query)))
    assert probe is not None
    kept = stored(original)
    fitted = keypoints.fit(probe, kept)
    assert fitted is not None  # the two are aligned (the picture found 80 pixels down)...
    assert np.allclose(fitted[0][:, 2], (0, -80), atol=3)
    assert keypoints.align(probe, kept) is None  # ...but the band is not part of the stored picture
    # the same picture cut the same way, without the band: a crop, found through the middle box
    crop = original.crop((0, 0, 512, 432))
    found = keypoints.align(keypoints.probe(work_copy(jpeg(crop))), kept)
    assert found is not None and found.share == 0.6


def test_a_picture_found_whole_beside_another_is_one_part_of_a_composite():
    from PIL import ImageDraw, ImageFont

    original = picture("astronaut.jpg").resize((256, 256))
    kept = stored(original)
    # in an app: a bar with a title above, a line of text below; the picture is the content
    page = Image.new("RGB", (300, 400), (250, 250, 250))
    draw = ImageDraw.Draw(page)
    draw.rectangle((0, 0, 299, 39), fill=(60, 60, 70))
    draw.text((10, 10), "Channel news - shared post", fill=(255, 255, 255), font=ImageFont.load_default(size=15))
    page.paste(original, (22, 60))
    draw.text((22, 330), "posted 3 hours ago", fill=(90, 90, 90), font=ImageFont.load_default(size=14))
    found = keypoints.align(keypoints.probe(work_copy(jpeg(page))), kept)
    assert found is not None and found.share == 1.0
    # beside another picture of its size: the same pixels, but a part of something else
    composite = Image.new("RGB", (540, 276), (255, 255, 255))
    composite.paste(picture("camera.png").resize((256, 256)), (10, 10))
    composite.paste(original, (276, 10))
    probe = keypoints.probe(work_copy(jpeg(composite)))
    assert probe is not None
    fitted = keypoints.fit(probe, kept)
    assert fitted is not None and len(fitted[1]) >= keypoints.MIN_INLIERS  # it is found there...
    assert keypoints.align(probe, kept) is None  # ...as one part of a composite


@pytest.mark.parametrize("size", [(1000, 1), (1, 1000), (40000, 20), (512, 1), (512, 39), (1, 1)])
def test_a_line_of_pixels_has_no_keypoints_and_hashes_as_before(size):
    from hashdb.service.media_hashing import hash_media

    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buffer, "PNG")
    for dihedral in (False, True):  # stored side and a lookup
        hashed = hash_media(Settings(), buffer.getvalue(), "line.png", dihedral=dihedral)
        assert hashed.keypoints is None and hashed.probe is None
        assert hashed.hashes == hash_media(Settings(keypoints=False), buffer.getvalue(), "line.png",
                                           dihedral=dihedral).hashes
