"""Region detectors on synthetic frames of known geometry: a 37-pixel bar is found as 37 pixels."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from hashdb.hashing import kernel, regions
from hashdb.hashing.derived import (
    CONTENT, MAX_DERIVED, PART_SPLIT, REDUCED_FROM, REDUCED_SIDES, SPAN_SIDES, TRIMMED, derived_pdqs, reduced_copy,
    share_of,
)
from hashdb.hashing.pdq import PdqSignal
from hashdb.hashing.regions import Box


def photo(media: Path, width: int, height: int) -> np.ndarray:
    """A photo with fine grain added, so that no line of it could pass for a flat band: where a
    detector stops is then the geometry under test, not the photo's content."""
    with Image.open(media / "chelsea.jpg") as image:
        rgb = np.asarray(image.convert("RGB").resize((width, height), Image.Resampling.BILINEAR))
    grain = np.random.default_rng(37).integers(-40, 41, size=rgb.shape)
    return np.clip(rgb.astype(int) + grain, 0, 255).astype(np.uint8)


def framed(content: np.ndarray, left: int, top: int, right: int, bottom: int,
           colour: tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
    h, w = content.shape[:2]
    out = np.empty((h + top + bottom, w + left + right, 3), np.uint8)
    out[:] = colour
    out[top:top + h, left:left + w] = content
    return out


def jpeg(rgb: np.ndarray, quality: int = 75) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def test_a_37_pixel_letterbox_bar_is_37_pixels(media: Path) -> None:
    image = framed(photo(media, 400, 300), 0, 37, 0, 37)
    assert regions.uniform_border(image) == Box(0, 37, 400, 337)
    assert regions.bands(image) == Box(0, 37, 400, 337)


@pytest.mark.parametrize("width", [1300, 2100])
def test_bars_are_exact_on_large_images_too(media: Path, width: int) -> None:
    # Detection samples every k-th line above 512 pixels; the sides are refined on all of them.
    height = width * 3 // 4
    image = framed(photo(media, width, height), 41, 37, 41, 37)
    assert regions.uniform_border(image) == Box(41, 37, 41 + width, 37 + height)


def test_uneven_coloured_border(media: Path) -> None:
    image = framed(photo(media, 300, 200), 13, 37, 5, 22, colour=(200, 30, 40))
    assert regions.uniform_border(image) == Box(13, 37, 313, 237)


def test_pillarbox_after_jpeg_is_within_a_pixel(media: Path) -> None:
    image = jpeg(framed(photo(media, 300, 300), 90, 0, 90, 0))
    box = regions.uniform_border(image)
    assert abs(box.left - 90) <= 1 and abs(box.right - 390) <= 1
    assert (box.top, box.bottom) == (0, 300)


def test_white_margin_inside_black_bars(media: Path) -> None:
    image = framed(framed(photo(media, 300, 200), 10, 10, 10, 10, colour=(255, 255, 255)), 0, 30, 0, 30)
    assert regions.uniform_border(image) == Box(10, 40, 310, 240)


def test_no_border_means_the_whole_image(media: Path) -> None:
    image = photo(media, 320, 240)
    assert regions.uniform_border(image).is_full(image)
    assert regions.bands(image).is_full(image)


@pytest.mark.parametrize(("height", "width"), [(720, 1280), (1000, 200), (200, 1000)])
def test_a_small_detail_on_one_colour_is_not_trimmed(height: int, width: int) -> None:
    # A nearly flat video frame (found in Meta's doorknob sample): the peels from opposite
    # sides each take up to 70 % and crossed, which gave an inverted box and a NaN colour.
    frame = np.full((height, width, 3), 140, np.uint8)
    frame[height // 2 - 3:height // 2 + 3, width // 3:width // 3 + 6] = 60
    for detector in (regions.uniform_border, regions.bars, regions.bands):
        assert detector(frame).is_full(frame), detector.__name__


def _caption(width: int, height: int, text: str, size: int, bg: tuple[int, int, int],
             fg: tuple[int, int, int]) -> np.ndarray:
    band = Image.new("RGB", (width, height), bg)
    ImageDraw.Draw(band).text((8, (height - size) // 2), text, fill=fg, font=ImageFont.load_default(size=size))
    return np.asarray(band)


def test_caption_band_with_large_text_above(media: Path) -> None:
    content = photo(media, 400, 300)
    band = _caption(400, 60, "BREAKING: watch before they delete", 26, (255, 255, 255), (0, 0, 0))
    image = np.concatenate([band, content])
    # Text lines are not uniform: the border detector stops at the text, the band detector does not.
    assert regions.uniform_border(image).top < 60
    assert regions.bands(image) == Box(0, 60, 400, 360)


def test_caption_bands_above_and_below(media: Path) -> None:
    content = photo(media, 400, 300)
    top = _caption(400, 48, "official channel", 20, (200, 0, 0), (255, 255, 255))
    bottom = _caption(400, 71, "follow us now", 30, (0, 0, 0), (255, 255, 255))
    image = np.concatenate([top, content, bottom])
    assert regions.bands(image) == Box(0, 48, 400, 348)


def test_phone_ui_chrome(media: Path) -> None:
    # Status bar 24, app bar 56, white margins of 12 beside the picture, a nav bar of 48.
    content = photo(media, 376, 282)
    width = 400
    status = _caption(width, 24, "12:45", 13, (20, 20, 20), (255, 255, 255))
    app = _caption(width, 56, "     channel name", 20, (59, 89, 152), (255, 255, 255))
    middle = framed(content, 12, 0, 12, 0, colour=(255, 255, 255))
    nav = np.full((48, width, 3), 245, np.uint8)
    nav[14:34, 40:60] = 90
    nav[14:34, 190:210] = 90
    nav[14:34, 340:360] = 90
    image = np.concatenate([status, app, middle, nav])
    assert regions.bands(image) == Box(12, 80, 388, 362)


def shown_on_a_page(drawing: np.ndarray) -> np.ndarray:
    """`drawing` on a white ground (25 px above and below, 30 beside), shown at (70, 90) on a
    dark 400 x 350 page with an address bar above and a line of text below: a desktop
    screenshot of a post. The ground's rows have the dark page beside them, so they are not
    uniform lines of the page."""
    ground = framed(drawing, 30, 25, 30, 25, colour=(255, 255, 255))
    page = framed(ground, 70, 90, 70, 60, colour=(32, 33, 36))
    page[:40] = _caption(400, 40, "https://example.org/watch", 16, (222, 225, 230), (0, 0, 0))
    page[300:330] = _caption(400, 30, "shared 3 hours ago", 14, (32, 33, 36), (200, 200, 200))
    return page


def test_trimmed_inside_takes_the_ground_left_inside_a_region(media: Path) -> None:
    page = shown_on_a_page(photo(media, 200, 150))
    box = regions.bands(page)
    # bands() keeps the ground's rows (busy lines of the page) but not its columns.
    assert box == Box(100, 90, 300, 290)
    assert regions.trimmed_inside(page, box) == Box(100, 115, 300, 265)


def test_trimmed_inside_leaves_a_region_without_margin_alone(media: Path) -> None:
    image = framed(photo(media, 300, 200), 0, 37, 0, 37)
    box = regions.bands(image)
    assert regions.trimmed_inside(image, box) == box == Box(0, 37, 300, 237)


def test_never_peels_past_the_limit() -> None:
    # A flat image: nothing is content, so no box is claimed (the whole image comes back).
    flat = np.full((200, 300, 3), 128, np.uint8)
    assert regions.uniform_border(flat).is_full(flat)
    assert regions.bands(flat).is_full(flat)


def test_sampled_line_colours_find_the_same_regions_as_every_pixel(media: Path, monkeypatch) -> None:
    # COLOUR_SAMPLES reads a line's colour from some of its pixels; what the detectors find
    # must not change for it (checked here on every fixture image, framed ones included).
    from hashdb.hashing.derived import derived_pdqs

    images = []
    for path in sorted(media.iterdir()):
        if path.suffix.lower() in (".jpg", ".png") and "corrupt" not in path.name:
            with Image.open(path) as image:
                images.append(image.convert("RGB"))
    sampled = [(regions.uniform_border(np.asarray(i)), regions.bands(np.asarray(i)), derived_pdqs(i, 50))
               for i in images]
    monkeypatch.setattr(regions, "COLOUR_SAMPLES", 10**9)
    every = [(regions.uniform_border(np.asarray(i)), regions.bands(np.asarray(i)), derived_pdqs(i, 50))
             for i in images]
    assert sampled == every and any(d for _, _, d in every)


@pytest.mark.parametrize("kind", ["as installed", "int16", "int32", "uint8"])
def test_line_colour_median_equals_numpys(monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    # regions._median replaces np.median (then int16) over each line's samples: same values,
    # from the kernel's histograms (test_kernel.py holds them alone to np.median) or, without
    # it, whichever sort this core makes numpy run.
    if kind != "as installed":
        monkeypatch.setattr(kernel, "row_medians", lambda samples: None)
        monkeypatch.setattr(regions, "_SORT", kind)
    rng = np.random.default_rng(11)
    for shape in [(3, 1), (3, 2), (3, 5, 1), (3, 7, 128), (3, 4, 127), (3, 9, 64), (3, 6, 171), (9,)]:
        samples = rng.integers(0, 256, shape).astype(np.int16)
        samples.flat[::7] = 255  # the extremes, where a uint8 sum of the middle two would wrap
        samples.flat[3::11] = 0
        want = np.median(samples, axis=-1).astype(np.int16)
        got = regions._median(samples)
        assert got.dtype == np.int16
        np.testing.assert_array_equal(got, want)
    # The detectors hand it strided views: every k-th pixel of each line, the planes' columns.
    planes = rng.integers(0, 256, (3, 40, 301)).astype(np.int16)
    for view in (planes[:, :, ::3], planes[:, ::2, 1::5], planes.transpose(0, 2, 1)[:, :, ::4], planes[1, 3, ::2]):
        np.testing.assert_array_equal(regions._median(view), np.median(view, axis=-1).astype(np.int16))


def test_content_boxes_are_uniform_border_and_bands(media: Path) -> None:
    content = photo(media, 400, 300)
    band = _caption(424, 60, "BREAKING", 26, (255, 255, 255), (0, 0, 0))
    image = np.concatenate([band, framed(content, 12, 0, 12, 9, colour=(255, 255, 255))])
    for rgb in (image, framed(image, 30, 20, 30, 20), framed(photo(media, 900, 700), 0, 50, 0, 50)):
        assert regions.content_boxes(rgb) == (regions.uniform_border(rgb), regions.bands(rgb))
    assert regions.content_boxes(image)[1] == Box(12, 60, 412, 360)


@pytest.mark.parametrize("size", [(1600, 1200), (1023, 700), (700, 1100), (2100, 900), (513, 300), (400, 300)])
def test_derived_work_copy_is_about_an_area_average(media: Path, size: tuple[int, int]) -> None:
    # The derived hashes' work copy (a block average, then bilinear for the rest) stands in
    # for OpenCV's area average: same shape, a level or two apart on average.
    from hashdb.hashing.derived import WORK_SIDE, work_copy

    with Image.open(media / "astronaut.jpg") as image:
        picture = image.convert("RGB").resize(size, Image.Resampling.LANCZOS)
    area = regions.reduced(np.asarray(picture), WORK_SIDE)
    got = work_copy(picture)
    assert got.shape == area.shape and max(got.shape[:2]) == min(WORK_SIDE, max(size))
    assert float(np.abs(got.astype(int) - area).mean()) <= 3.0
    np.testing.assert_array_equal(work_copy(np.asarray(picture)), got)


def _two_line_caption(width: int, height: int) -> np.ndarray:
    band = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(band)
    for n, text in enumerate(("breaking news", "share before they delete")):
        draw.text((8, 6 + 30 * n), text, fill=(0, 0, 0), font=ImageFont.load_default(size=20))
    return np.asarray(band)


def test_band_cuts_take_a_caption_of_two_lines_off_a_picture_with_a_gap_of_its_own(media: Path) -> None:
    # A picture whose own rows include a 20-row white gap (two panels), under a 90-row caption
    # of two text lines on white: bands() keeps one panel (the tallest block); the cut at the
    # widest gap in the top half (caption padding, 29 rows, against 10 between the lines) leaves
    # the whole picture.
    panels = np.concatenate([photo(media, 400, 140), np.full((20, 400, 3), 255, np.uint8), photo(media, 400, 140)])
    image = np.concatenate([_two_line_caption(400, 90), panels])
    found = regions.layout(image)
    assert found.trimmed.top < 90 and found.content.height == 140
    cuts = regions.band_cuts(found)
    assert cuts[0] == Box(0, 90, 400, 390)
    assert regions.trimmed_inside(image, cuts[0]) == Box(0, 90, 400, 390)
    # The same caption below: the cut above it is the last one but the one with both.
    below = np.concatenate([panels, _two_line_caption(400, 90)])
    assert Box(0, 0, 400, 300) in regions.band_cuts(regions.layout(below))


def test_a_picture_with_no_uniform_row_has_no_band_cuts(media: Path) -> None:
    found = regions.layout(framed(photo(media, 400, 300), 20, 20, 20, 20))
    assert found.rows == ((20, 320),) and regions.band_cuts(found) == []


def test_split_is_the_runner_up_blocks_length_over_the_kept_ones(media: Path) -> None:
    # Two pictures side by side on white, 160 and 120 columns wide with a 30-column gap, in a
    # 20-pixel white margin: the content box is the wider one, and the narrower is 0.75 of it.
    row = np.concatenate([photo(media, 160, 200), np.full((200, 30, 3), 255, np.uint8), photo(media, 120, 200)],
                         axis=1)
    found = regions.layout(framed(row, 20, 20, 20, 20, colour=(255, 255, 255)))
    assert found.content == Box(20, 20, 180, 220)
    assert found.split == 120 / 160
    # Two panels one above the other, equal: either could have been kept.
    panels = np.concatenate([photo(media, 400, 140), np.full((20, 400, 3), 255, np.uint8), photo(media, 400, 140)])
    assert regions.layout(framed(panels, 10, 10, 10, 10, colour=(255, 255, 255))).split == 1.0
    # One picture: nothing else could have been kept.
    assert regions.layout(framed(photo(media, 400, 300), 20, 20, 20, 20)).split == 0.0


def test_a_captions_text_is_no_runner_up_to_the_picture(media: Path) -> None:
    band = _caption(400, 60, "BREAKING: watch before they delete", 26, (255, 255, 255), (0, 0, 0))
    found = regions.layout(np.concatenate([band, photo(media, 400, 300)]))
    assert found.content == Box(0, 60, 400, 360)
    assert 0 < found.split < PART_SPLIT  # the text line's rows against the picture's 300


def test_a_lookup_marks_a_part_of_a_composite_and_storing_never_does(media: Path) -> None:
    row = np.concatenate([photo(media, 160, 200), np.full((200, 30, 3), 255, np.uint8), photo(media, 120, 200)],
                         axis=1)
    image = framed(row, 20, 20, 20, 20, colour=(255, 255, 255))
    looked_up = derived_pdqs(image, 50, lookup=True)
    content = [d for d in looked_up if d.via == CONTENT and d.share == share_of(160 * 200, image.shape[0] * image.shape[1])]
    assert content and all(d.part for d in content)
    assert not any(d.part for d in looked_up if d.via == TRIMMED)
    assert not any(d.part for d in derived_pdqs(image, 50))
    # A picture under a caption is not a part.
    band = _caption(400, 60, "BREAKING: watch before they delete", 26, (255, 255, 255), (0, 0, 0))
    assert not any(d.part for d in derived_pdqs(np.concatenate([band, photo(media, 400, 300)]), 50, lookup=True))



def in_an_app(picture: np.ndarray) -> np.ndarray:
    """`picture` in a phone app 400 wide: status bar, app bar, white margins, a line of text."""
    height, width = picture.shape[:2]
    side = (400 - width) // 2
    return np.concatenate([_caption(400, 24, "12:45", 13, (20, 20, 20), (255, 255, 255)),
                           _caption(400, 56, "     channel name", 20, (59, 89, 152), (255, 255, 255)),
                           framed(picture, side, 8, 400 - width - side, 8, colour=(255, 255, 255)),
                           _caption(400, 40, "shared 3 hours ago", 14, (255, 255, 255), (30, 30, 30))])


@pytest.mark.parametrize(("size", "sides"), [((380, 300), REDUCED_SIDES), ((200, 150), (64,))])
def test_a_lookup_hashes_its_content_box_reduced_and_storing_does_not(media: Path, size, sides) -> None:
    # A picture blown up in an app: the content box is the picture; a lookup adds its PDQ
    # reduced to each of REDUCED_SIDES it is REDUCED_FROM times larger than, with the box's share.
    width, height = size
    page = in_an_app(photo(media, width, height))
    box = regions.layout(page).content
    assert box == Box((400 - width) // 2, 88, (400 - width) // 2 + width, 88 + height)
    pixels = np.ascontiguousarray(box.crop(page))
    share = share_of(box.width * box.height, page.shape[0] * page.shape[1])
    reduced = {side: PdqSignal().compute_array(reduced_copy(pixels, side)).hex for side in REDUCED_SIDES}
    assert all(max(reduced_copy(pixels, side).shape[:2]) == side for side in REDUCED_SIDES)
    looked_up = derived_pdqs(page, 50, lookup=True)
    assert len(looked_up) <= MAX_DERIVED
    shared = {d.hash.hex for d in looked_up if d.via == CONTENT and d.share == share}
    assert {side for side, value in reduced.items() if value in shared} == set(sides)
    assert max(width, height) >= REDUCED_FROM * max(sides)
    assert not set(reduced.values()) & {d.hash.hex for d in derived_pdqs(page, 50)}


def test_reduced_takes_a_copy_made_already_only_of_its_shape() -> None:
    # hash_media makes the work copy's 256-pixel copy once for the deskew angle and the corner
    # masks; a copy of another shape (the two sides' sizes no longer the same) is not used.
    rgb = np.random.default_rng(5).integers(0, 256, (300, 500, 3), dtype=np.uint8)
    own = regions.reduced(rgb, 256)
    made = np.zeros_like(own)
    assert regions.reduced(rgb, 256, made) is made
    np.testing.assert_array_equal(regions.reduced(rgb, 200, made), regions.reduced(rgb, 200))
    assert regions.reduced(rgb, 600, made) is rgb


def _white_gap(picture_a: np.ndarray, picture_b: np.ndarray, gap: int, axis: int) -> np.ndarray:
    shape = list(picture_a.shape)
    shape[axis] = gap
    return np.concatenate([picture_a, np.full(shape, 255, np.uint8), picture_b], axis=axis)


def test_row_spans_keep_a_picture_split_by_its_own_uniform_columns(media: Path) -> None:
    # Two parts 160 and 120 wide with a 30-column white gap, 200 high, at (45, 88) in an app:
    # the content box is the wider part; the first span is the content box's rows across the
    # frame, and trimmed it is the whole 310 x 200 picture.
    page = in_an_app(_white_gap(photo(media, 160, 200), photo(media, 120, 200), 30, axis=1))
    found = regions.layout(page)
    assert found.content == Box(45, 88, 205, 288)
    (first, split), *_ = regions.row_spans(found)
    assert (first.top, first.bottom) == (88, 288)
    assert (first.left, first.right) == (found.trimmed.left, found.trimmed.right)
    assert regions.trimmed_inside(page, first) == Box(45, 88, 355, 288)
    assert 0 < split < PART_SPLIT  # the app bar's and the text line's rows against the picture's 200


def test_row_spans_join_a_picture_split_by_its_own_uniform_rows(media: Path) -> None:
    # Parts 120 and 100 high with a 20-row white gap, 300 wide, at (50, 88) in an app: the
    # content box is the upper part; the span joined with the block below holds all 240 rows.
    page = in_an_app(_white_gap(photo(media, 300, 120), photo(media, 300, 100), 20, axis=0))
    found = regions.layout(page)
    assert found.content == Box(50, 88, 350, 208)
    spans = regions.row_spans(found)
    assert len(spans) == 4  # alone, with the app bar's text above, the lower part below, both
    trimmed = {regions.trimmed_inside(page, span): split for span, split in spans}
    assert trimmed[Box(50, 88, 350, 208)] == 100 / 120  # alone: the lower part is the runner-up
    assert 0 < trimmed[Box(50, 88, 350, 328)] < PART_SPLIT


def test_a_picture_with_no_busy_row_has_no_row_spans() -> None:
    flat = np.full((200, 300, 3), 255, np.uint8)
    assert regions.row_spans(regions.layout(flat)) == []


def test_a_lookup_hashes_the_whole_picture_its_own_gap_split(media: Path) -> None:
    # The picture of the test above, in an app: a lookup's content hashes include the PDQ of
    # the whole picture, not marked a part; storing the page adds no row span.
    picture = _white_gap(photo(media, 300, 120), photo(media, 300, 100), 20, axis=0)
    page = in_an_app(picture)
    whole = PdqSignal().compute_array(np.ascontiguousarray(picture)).hex
    looked_up = derived_pdqs(page, 50, lookup=True)
    assert len(looked_up) <= MAX_DERIVED
    assert [d.part for d in looked_up if d.via == CONTENT and d.hash.hex == whole] == [False]
    assert whole not in {d.hash.hex for d in derived_pdqs(page, 50)}


def test_a_box_found_again_is_hashed_once_and_reduced_to_each_side_once(media: Path) -> None:
    # One picture in an app, no gap of its own: the first row span, trimmed, is the content box,
    # which a lookup hashed already with its REDUCED_SIDES copies; the span adds the SPAN_SIDES
    # copies it lacks, and nothing twice.
    page = in_an_app(photo(media, 380, 300))
    found = regions.layout(page)
    (first, _), *_ = regions.row_spans(found)
    assert regions.trimmed_inside(page, first) == found.content == Box(10, 88, 390, 388)
    pixels = np.ascontiguousarray(found.content.crop(page))
    share = share_of(380 * 300, page.shape[0] * page.shape[1])
    expected = [PdqSignal().compute_array(pixels).hex,
                *(PdqSignal().compute_array(reduced_copy(pixels, side)).hex
                  for side in sorted({*REDUCED_SIDES, *SPAN_SIDES}))]
    looked_up = [d.hash.hex for d in derived_pdqs(page, 50, lookup=True) if d.via == CONTENT and d.share == share]
    assert sorted(looked_up) == sorted(expected)
