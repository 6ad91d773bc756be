"""hashing/colour.py: a region's colour layout (the mean colour of each cell of a 3 x 3 split)
and the gap between two layouts, on synthetic images whose colours are known."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageOps

from hashdb.hashing import colour, derived

# Stripes of the flags of Ireland (green, white, orange) and Guinea (red, yellow, green): PDQ,
# which reads brightness only, sees two tricolours alike.
IRELAND = ((22, 155, 98), (255, 255, 255), (255, 136, 62))
GUINEA = ((206, 17, 38), (252, 209, 22), (0, 148, 96))


def tricolour(stripes: tuple[tuple[int, int, int], ...], width: int = 180, height: int = 120) -> Image.Image:
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    for n, rgb in enumerate(stripes):
        pixels[:, n * width // 3:(n + 1) * width // 3] = rgb
    return Image.fromarray(pixels)


def layout_of(image: Image.Image) -> str:
    return colour.layout(np.asarray(image.convert("RGB")))


def test_a_layout_is_each_cells_mean_colour_row_by_row():
    # 90 x 60: cells of 30 x 20 pixels; the middle row's middle cell is half red, half blue.
    pixels = np.zeros((60, 90, 3), dtype=np.uint8)
    pixels[:, :30] = (10, 20, 30)
    pixels[:, 30:60] = (255, 0, 0)
    pixels[20:40, 45:60] = (0, 0, 255)
    pixels[:, 60:] = (200, 200, 200)
    want = "".join(["0a141e", "ff0000", "c8c8c8", "0a141e", "800080", "c8c8c8", "0a141e", "ff0000", "c8c8c8"])
    assert colour.layout(pixels) == want
    assert colour.LAYOUT.fullmatch(want)


def test_cells_split_an_uneven_side_as_integer_division_does():
    # 4 rows: cells of rows [0, 1), [1, 2), [2, 4); the last cell averages 100 and 201 to 150.5 -> 151.
    pixels = np.zeros((4, 3, 3), dtype=np.uint8)
    pixels[0], pixels[1], pixels[2], pixels[3] = 50, 60, 100, 201
    assert colour.layout(pixels) == "323232" * 3 + "3c3c3c" * 3 + "979797" * 3


@pytest.mark.parametrize("name", ["astronaut.jpg", "chelsea.jpg", "coffee.jpg", "logo_rgba.png"])
def test_detail_gives_the_layout_of_any_region_from_its_summed_area_table(media: Path, name: str):
    with Image.open(media / name) as image:
        rgb = derived.work_copy(image.convert("RGB"))
    detail = derived.Detail(rgb)
    height, width = rgb.shape[:2]
    rng = random.Random(name)
    for _ in range(40):
        left, top = rng.randrange(width - 3), rng.randrange(height - 3)
        right, bottom = rng.randrange(left + 3, width + 1), rng.randrange(top + 3, height + 1)
        assert detail.colours(left, top, right, bottom) == colour.layout(rgb[top:bottom, left:right])


def test_a_copy_is_close_and_a_colour_only_difference_is_far():
    ireland = layout_of(tricolour(IRELAND))
    assert colour.colour_gap(ireland, ireland) == pytest.approx(0, abs=1e-9)
    # Brightness of each stripe aside, the two flags' colours differ in every column.
    assert colour.colour_gap(layout_of(tricolour(GUINEA)), ireland) > 40
    assert colour.colour_gap(ireland, layout_of(tricolour(GUINEA))) > 40


@pytest.mark.parametrize("edit", [
    lambda image: ImageOps.grayscale(image).convert("RGB"),
    lambda image: ImageEnhance.Color(image).enhance(0.3),
    lambda image: ImageEnhance.Color(image).enhance(1.8),
    lambda image: ImageEnhance.Brightness(image).enhance(0.7),
    lambda image: ImageEnhance.Contrast(image).enhance(0.6),
])
def test_colour_edits_of_a_picture_stay_close_to_it(edit):
    # The evaluation's colour family: each scales the chroma of every cell by about one factor.
    original = tricolour(IRELAND)
    assert colour.colour_gap(layout_of(edit(original)), layout_of(original)) < 10


def test_a_coloured_query_is_far_from_a_grey_stored_picture_but_not_the_reverse():
    # Greying a picture loses its colours; no edit of a grey picture brings colours it never had.
    original = tricolour(GUINEA)
    grey = ImageOps.grayscale(original).convert("RGB")
    assert colour.colour_gap(layout_of(grey), layout_of(original)) == pytest.approx(0, abs=1e-9)
    assert colour.colour_gap(layout_of(original), layout_of(grey)) > 40


def test_a_covered_copys_layout_comes_from_the_uncovered_table():
    # The corner masks' colours: layout() of the copy with a box filled, from the original's
    # summed-area table and the fill, for boxes across cells, empty, whole, and at the edges.
    rng = np.random.default_rng(4)
    for height, width in [(170, 256), (7, 5), (3, 3), (256, 171)]:
        rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        sums = colour.summed(rgb)
        boxes = [(0, 0, width, height), (0, 0, 0, 0), (1, 1, 1, height), (width // 2, height // 3, width, height)]
        for _ in range(8):
            x0, x1 = sorted(int(v) for v in rng.integers(0, width + 1, 2))
            y0, y1 = sorted(int(v) for v in rng.integers(0, height + 1, 2))
            boxes.append((x0, y0, x1, y1))
        for left, top, right, bottom in boxes:
            fill = rng.integers(0, 256, 3).astype(np.uint8)
            covered = rgb.copy()
            covered[top:bottom, left:right] = fill
            assert colour.covered_layout(sums, width, height, (left, top, right, bottom), fill) == colour.layout(covered)


def test_covered_layouts_without_the_kernel_are_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    # numpy's path (a kernel built before covered_layouts and region_checks) and the kernel's.
    from hashdb.hashing import kernel

    rng = np.random.default_rng(9)
    rgb = rng.integers(0, 256, (171, 256, 3), dtype=np.uint8)
    sums = colour.summed(rgb)
    fill = np.array([3, 250, 77], dtype=np.uint8)
    boxes = [(0, 0, 128, 68), (128, 103, 256, 171), (0, 0, 0, 0), (10, 20, 200, 150)]
    want = [colour.covered_layout(sums, 256, 171, box, fill) for box in boxes]
    monkeypatch.setattr(kernel, "_COVERED", None)
    monkeypatch.setattr(kernel, "_CHECKS", None)
    assert [colour.covered_layout(sums, 256, 171, box, fill) for box in boxes] == want
