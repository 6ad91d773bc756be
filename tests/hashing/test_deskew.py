"""Small-rotation detector on synthetic frames of known geometry: a picture turned 3 degrees is
found turned 3 degrees, on a kept or a grown canvas, and a picture that was not turned is left
alone."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw

from hashdb.hashing import deskew


def shapes(width: int = 480, height: int = 360, seed: int = 5) -> Image.Image:
    """Random filled shapes on a mid-grey ground: neither the ground nor the shapes reach the
    fill colours used below, so the wedges are the only uniform corners."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (width, height), (128, 120, 110))
    draw = ImageDraw.Draw(image)
    for _ in range(60):
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        w, h = int(rng.integers(10, 120)), int(rng.integers(10, 120))
        colour = tuple(int(c) for c in rng.integers(40, 220, size=3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x, y, x + w, y + h), fill=colour)
    return image


def jpeg(image: Image.Image, quality: int = 85) -> np.ndarray:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def turned(image: Image.Image, degrees: float, fill: tuple[int, int, int], expand: bool = False) -> np.ndarray:
    # What an editor's rotate does: counter-clockwise about the centre, canvas kept (or grown to
    # hold the whole picture, as ImageMagick's -rotate does).
    return jpeg(image.rotate(degrees, resample=Image.Resampling.BILINEAR, fillcolor=fill, expand=expand))


def rotation_angle(rgb: np.ndarray) -> float | None:
    """The angle found for a kept canvas."""
    turn = deskew.rotation(rgb)
    assert turn is None or not turn.expanded, turn
    return None if turn is None else turn.degrees


@pytest.mark.parametrize("degrees", [1.5, -2.0, 3.0, -4.5, 5.0, 7.0])
@pytest.mark.parametrize("fill", [(0, 0, 0), (255, 255, 255)])
def test_a_turned_picture_is_found_turned_by_its_angle(degrees: float, fill: tuple[int, int, int]) -> None:
    found = rotation_angle(turned(shapes(), degrees, fill))
    assert found is not None and abs(found - degrees) <= 0.35


def test_an_upright_picture_is_left_alone() -> None:
    assert rotation_angle(jpeg(shapes())) is None
    # Uniform corners are not enough: a plain black frame around it has no wedges of any angle.
    framed = Image.new("RGB", (540, 420), (0, 0, 0))
    framed.paste(shapes(), (30, 30))
    assert rotation_angle(jpeg(framed)) is None


def test_a_ground_of_the_fills_colour_names_no_angle() -> None:
    # A drawing on white turned with a white fill: every angle's wedges fit, so none is named.
    drawing = Image.new("RGB", (480, 360), (255, 255, 255))
    ImageDraw.Draw(drawing).ellipse((140, 80, 340, 280), fill=(200, 30, 30))
    assert rotation_angle(turned(drawing, 4.0, (255, 255, 255))) is None


def test_turning_back_restores_the_picture() -> None:
    original = np.asarray(shapes()).astype(int)
    query = turned(shapes(), 4.0, (0, 0, 0))
    upright = deskew.deskewed(query, 4.0).astype(int)
    # Away from the corners the turn cut off, the picture is back where it was (JPEG and two
    # bilinear resamplings apart); turned, it is not.
    inner = (slice(60, -60), slice(60, -60))
    assert np.abs(upright[inner] - original[inner]).mean() < 0.5 * np.abs(query.astype(int)[inner] - original[inner]).mean()
    # The lost corners hold no fill colour (black) any more.
    assert upright[:4, :4].mean() > 40


@pytest.mark.parametrize("degrees", [1.0, -3.0, 6.0, -8.0])
@pytest.mark.parametrize("size", [(480, 360), (360, 480)])
def test_the_fitting_crop_holds_no_lost_corner_and_the_next_larger_does(degrees: float, size: tuple[int, int]) -> None:
    # Independent of fitting_box's formula: the corners a turn cuts off, as OpenCV warps them.
    from hashdb.hashing import centred

    width, height = size
    lost = deskew._wedges(height, width, -degrees)
    box = centred.fitting_box(width, height, degrees)
    assert box is not None
    left, top, right, bottom = box
    assert lost[top:bottom, left:right].sum() == 0
    boxes = centred.centre_boxes(width, height)
    larger = boxes.index(box) - 1
    if larger >= 0:
        left, top, right, bottom = boxes[larger]
        assert lost[top:bottom, left:right].sum() > 10


@pytest.mark.parametrize("degrees", [1.5, -2.0, 3.0, -4.5, 7.0])
@pytest.mark.parametrize("fill", [(0, 0, 0), (255, 255, 255)])
@pytest.mark.parametrize("size", [(480, 360), (300, 420)])
def test_a_picture_turned_on_a_grown_canvas_is_found_and_restored_whole(degrees, fill, size) -> None:
    original = shapes(*size)
    query = turned(original, degrees, fill, expand=True)
    # Pillow grew the canvas to hold the turned picture: its size is the independent check of
    # source_size's geometry.
    assert query.shape[:2] != (size[1], size[0])
    turn = deskew.rotation(query)
    assert turn is not None and turn.expanded and abs(turn.degrees - degrees) <= 0.35, turn
    height, width = deskew.source_size(*query.shape[:2], turn.degrees)
    assert abs(width - size[0]) <= 4 and abs(height - size[1]) <= 4
    upright = deskew.unturned(query, turn).astype(int)
    # Whole again: the picture's own size, give or take the edge pixels blended with the fill,
    # and no fill left at its corners.
    assert abs(upright.shape[1] - size[0]) <= 6 and abs(upright.shape[0] - size[1]) <= 6
    corners = upright[[0, 0, -1, -1], [0, -1, 0, -1]]
    assert np.abs(corners - np.array(fill)).max(axis=1).min() > 20
    restored = np.asarray(original.resize((upright.shape[1], upright.shape[0]))).astype(int)
    inner = (slice(20, -20), slice(20, -20))
    assert np.abs(upright[inner] - restored[inner]).mean() < 12


def test_a_grown_canvas_that_holds_an_upright_framed_picture_names_no_angle() -> None:
    framed = Image.new("RGB", (540, 420), (0, 0, 0))
    framed.paste(shapes(), (30, 30))
    assert deskew.rotation(jpeg(framed)) is None


@pytest.mark.parametrize("size", [(256, 200), (180, 256), (256, 100)])
def test_the_grown_canvas_zone_holds_every_wedge_scored(size) -> None:
    # The zone only bounds which pixels are scored; a wedge pixel outside it would be unseen.
    height, width = size
    zone = deskew._grown_wedges(height, width, deskew.MAX_DEGREES + 0.5)
    zone |= deskew._grown_wedges(height, width, -deskew.MAX_DEGREES - 0.5)
    ys, xs = np.indices(size).reshape(2, -1)
    for degrees in np.arange(deskew.MIN_DEGREES, deskew.MAX_DEGREES + 1e-9, 0.1):
        for sign in (1, -1):
            wedge = deskew._in_wedge(ys, xs, height, width, deskew.Turn(sign * degrees, True)).reshape(size)
            assert not (wedge & ~zone).any(), degrees


def test_a_border_all_round_is_not_scored_as_a_grown_canvas() -> None:
    framed = Image.new("RGB", (540, 420), (255, 255, 255))
    framed.paste(shapes(), (30, 30))
    small = deskew.reduced(jpeg(framed), deskew.WORK_SIDE)
    assert not deskew._crosses_every_edge(small, small[0, 0].astype(np.int16))
    assert deskew.rotation(jpeg(framed)) is None



def blended(image: Image.Image, degrees: float, fill: tuple[int, int, int]) -> np.ndarray:
    # A tool that blends the picture's edge with the fill (OpenCV's warpAffine, ImageMagick):
    # picture up to a pixel beyond the edge, where Pillow's rotate fills from half a pixel out.
    rgb = np.asarray(image)
    height, width = rgb.shape[:2]
    turn = cv2.getRotationMatrix2D(((width - 1) / 2, (height - 1) / 2), degrees, 1.0)
    return jpeg(Image.fromarray(cv2.warpAffine(rgb, turn, (width, height), flags=cv2.INTER_LINEAR,
                                               borderMode=cv2.BORDER_CONSTANT, borderValue=fill)))


@pytest.mark.parametrize("degrees", [1.5, -3.0, 5.0])
def test_a_picture_turned_with_a_blended_edge_is_found_turned_by_its_angle(degrees: float) -> None:
    found = rotation_angle(blended(shapes(), degrees, (0, 0, 0)))
    assert found is not None and abs(found - degrees) <= 0.35


@pytest.mark.parametrize("size", [60, 84])
@pytest.mark.parametrize("degrees", [2.0, -3.0, 5.0])
def test_a_small_icon_turned_is_found_turned_by_its_angle(size: int, degrees: float) -> None:
    # An icon of 60 pixels turned 5 degrees by Pillow has wedges 2 to 3 pixels wide, filled from
    # half a pixel beyond the picture's edge: scored against a blended edge only, they fit at
    # 0.66, or a wrong angle fits better. Lossless: at this size JPEG's chroma smears the
    # corners' colour apart, which is another matter.
    icon = shapes(size, size, seed=size).resize((size, size))
    found = rotation_angle(np.asarray(icon.rotate(degrees, resample=Image.Resampling.BILINEAR, fillcolor=(0, 0, 0))))
    assert found is not None and abs(found - degrees) <= 0.25, found
