"""Corner-masked PDQs: where the covers go, and what gets none."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from hashdb.hashing import masked
from hashdb.hashing.derived import MASKED
from hashdb.hashing.pdq import PdqSignal


def test_corner_boxes_cover_half_the_width_and_two_fifths_of_the_height() -> None:
    assert masked.corner_boxes(200, 100) == [(0, 0, 100, 40), (100, 0, 200, 40), (0, 60, 100, 100),
                                            (100, 60, 200, 100)]


def test_each_hash_is_the_pdq_of_the_picture_with_one_corner_filled(media: Path) -> None:
    # Computed independently: the same reduction, the corner set to the median colour of every
    # other pixel, PDQ of the result.
    with Image.open(media / "chelsea.jpg") as image:
        rgb = np.asarray(image.convert("RGB").resize((256, 170), Image.Resampling.BILINEAR))
    fill = np.median(rgb[::2, ::2].reshape(-1, 3), axis=0).astype(np.uint8)
    expected = []
    for left, top, right, bottom in ((0, 0, 128, 68), (128, 0, 256, 68), (0, 102, 128, 170), (128, 102, 256, 170)):
        covered = rgb.copy()
        covered[top:bottom, left:right] = fill
        expected.append(PdqSignal().compute_array(covered).hex)
    hashes = masked.masked_pdqs(rgb, 50)
    assert [h.hash.hex for h in hashes] == expected
    assert {h.via for h in hashes} == {MASKED} and all(h.share is None for h in hashes)


def test_a_flat_picture_in_a_frame_gets_none() -> None:
    # The covers' edges against the frame would be the only detail: such copies of any framed
    # flat picture would match each other.
    frame = np.zeros((300, 400, 3), np.uint8)
    frame[50:250, 50:350] = 128
    frame[150:152, 60:340] = 140
    assert masked.masked_pdqs(frame, 50) == ()


def test_tiny_images_get_none() -> None:
    noise = np.random.default_rng(3).integers(0, 256, (24, 60, 3), dtype=np.uint8)
    assert masked.masked_pdqs(noise, 0) == ()


def test_a_derived_entry_without_its_pdq_is_refused_saying_where() -> None:
    import pytest

    from hashdb.errors import InvalidHash
    from hashdb.hashing.derived import derived_from_json

    with pytest.raises(InvalidHash, match=r"^items\[0\]\.derived\[1\]\.pdq: pdq hash must be"):
        derived_from_json([{"via": "masked", "pdq": "ab" * 32, "quality": 90}, {"via": "masked"}],
                          "items[0].derived")
    with pytest.raises(InvalidHash, match=r"^derived\[0\]\.pdq: "):
        derived_from_json([{"via": "masked", "pdq": "ab" * 32, "quality": 101}])


def test_the_fill_colour_is_numpys_median() -> None:
    # masked._median_colour counts instead of sorting: np.median's values, odd and even counts.
    rng = np.random.default_rng(4)
    for shape in [(1, 1, 3), (1, 2, 3), (3, 5, 3), (64, 51, 3), (128, 128, 3)]:
        for pixels in (rng.integers(0, 256, shape, dtype=np.uint8), rng.integers(250, 256, shape, dtype=np.uint8),
                       np.full(shape, 255, np.uint8), rng.integers(0, 2, shape, dtype=np.uint8) * 255):
            want = np.median(pixels.reshape(-1, 3), axis=0).astype(np.uint8)
            np.testing.assert_array_equal(masked._median_colour(pixels), want)
