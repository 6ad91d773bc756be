"""A lookup's windows (hashing/crops.py): their geometry, and that the window of an off-centre
crop that holds a stored centred crop lands on it, on pictures with known geometry."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from hashdb.config import Settings
from hashdb.hashing import crops, deskew, regions
from hashdb.hashing.centred import SHARES
from hashdb.hashing.derived import CROPPED, MAX_DERIVED, WINDOW, work_copy
from hashdb.service.media_hashing import hash_media

MIN_QUALITY = Settings().pdq_min_quality


def jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def test_window_boxes_of_a_200_by_100_image():
    boxes = crops.window_boxes(200, 100)
    assert len(boxes) == crops.WINDOW_COUNT == 18
    # 95 %: 190 x 95, from the top left to the bottom right in steps of half the margin.
    assert boxes[:3] == [(0, 0, 190, 95), (5, 0, 195, 95), (10, 0, 200, 95)]
    assert boxes[3] == (0, 2, 190, 97) and boxes[8] == (10, 5, 200, 100)
    # 89 %: 178 x 89 (rounded), margins of 22 and 11.
    assert boxes[9] == (0, 0, 178, 89) and boxes[13] == (11, 5, 189, 94) and boxes[17] == (22, 11, 200, 100)


def test_a_tiny_image_repeats_no_window():
    # 4 x 4: both shares round to 4 (95 %) and 4 (89 %), so the one box, the whole image, is kept once.
    assert crops.window_boxes(4, 4) == [(0, 0, 4, 4)]


def test_the_window_of_an_off_centre_crop_lands_on_the_stored_centred_crop(media):
    # Cropped to 90 % of each side at the top left, the picture's centred 80 % (stored) sits at
    # the query's bottom right, 0.8 / 0.9 = 0.889 of each side: the last 89 % window.
    photo = Image.open(media / "astronaut.jpg").convert("RGB")
    width, height = photo.size
    cut = photo.crop((0, 0, round(width * 0.9), round(height * 0.9)))
    stored = hash_media(Settings(), jpeg(photo), "original").derived
    crop80 = next(d for d in stored if d.via == CROPPED and abs(d.share - SHARES[-1] ** 2) < 0.01)
    small = regions.reduced(work_copy(np.asarray(Image.open(io.BytesIO(jpeg(cut))).convert("RGB"))),
                            deskew.WORK_SIDE)
    windows = crops.window_pdqs(small, MIN_QUALITY)
    assert len(windows) == 18 and {d.via for d in windows} == {WINDOW}
    distances = [(int(d.hash.hex, 16) ^ int(crop80.hash.hex, 16)).bit_count() for d in windows]
    assert distances.index(min(distances)) == 17 and min(distances) <= 16, distances
    assert abs(windows[17].share - 0.89 ** 2) < 0.005
    # The other corners' 89 % windows hold other parts of the picture: far from it.
    assert min(distances[9], distances[11], distances[15]) > 31, distances


def test_windows_are_a_lookups_only(media):
    data = (media / "coffee.jpg").read_bytes()
    stored = hash_media(Settings(), data, "original").derived
    looked_up = hash_media(Settings(), data, "query", dihedral=True).derived
    assert not any(d.via == WINDOW for d in stored)
    windows = [d for d in looked_up if d.via == WINDOW]
    assert 0 < len(windows) <= crops.WINDOW_COUNT and len(looked_up) <= MAX_DERIVED
    # Listed last: a client trims them first for a server before windows (partners/client.py).
    assert [d.via for d in looked_up[-len(windows):]] == [WINDOW] * len(windows)
    assert all(d.colours is not None and 0.79 < d.share < 0.91 for d in windows)


def test_a_picture_with_no_detail_in_its_middle_has_no_windows():
    flat = np.full((200, 300, 3), 128, dtype=np.uint8)
    flat[:10] = 0  # a dark bar along the top: detail only at an edge
    assert crops.window_pdqs(flat, MIN_QUALITY) == ()
