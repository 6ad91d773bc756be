"""derived.Detail (many regions of one image from one summed-area table) against
derived.detailed (OpenCV's INTER_AREA thumbnail of each region): the same answer, always."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hashdb.hashing import crops, derived


def boxes(width: int, height: int, seed: int) -> list[tuple[int, int, int, int]]:
    rng = random.Random(seed)
    out = [*crops.centre_boxes(width, height), (width // 4, height // 4, width - width // 4, height - height // 4),
           (0, 0, width, height), (0, 0, 20, height), (3, 5, width, 40)]
    for _ in range(30):
        left, top = rng.randrange(width - 1), rng.randrange(height - 1)
        out.append((left, top, rng.randrange(left + 1, width + 1), rng.randrange(top + 1, height + 1)))
    return out


@pytest.mark.parametrize("name", ["astronaut.jpg", "chelsea.jpg", "coffee.jpg", "camera.png", "logo_rgba.png"])
def test_detail_answers_as_detailed_on_fixture_regions(media: Path, name: str) -> None:
    with Image.open(media / name) as image:
        rgb = derived.work_copy(image.convert("RGB"))
    detail = derived.Detail(rgb)
    height, width = rgb.shape[:2]
    for left, top, right, bottom in boxes(width, height, len(name)):
        want = derived.detailed(np.ascontiguousarray(rgb[top:bottom, left:right]))
        assert detail(left, top, right, bottom) == want, (left, top, right, bottom)


def area_weights(n: int, k: int = 32) -> np.ndarray:
    """k x n: how much of each of n pixels each of k equal cells covers, over the cell's size."""
    weights = np.zeros((k, n))
    size = n / k
    for i in range(k):
        start, stop = i * size, (i + 1) * size
        for j in range(int(start), min(n, int(np.ceil(stop)))):
            weights[i, j] = min(stop, j + 1) - max(start, j)
    return weights / size


@pytest.mark.parametrize("seed", [1, 2])
def test_detail_answers_as_detailed_next_to_the_threshold(seed: int) -> None:
    # Grey plus faint noise, scaled so that the spread crosses MIN_SPREAD: near it, the
    # exact area averages and INTER_AREA's rounded thumbnail can fall on opposite sides,
    # and detailed()'s answer is the one Detail must give.
    rng = np.random.default_rng(seed)
    noise = rng.normal(0, 1, (300, 260, 1)) * np.ones((1, 1, 3))
    rows, cols = area_weights(300), area_weights(260)
    opposite = 0
    for amplitude in np.linspace(54, 60, 241):
        rgb = np.clip(128 + amplitude * noise, 0, 255).round().astype(np.uint8)
        exact = derived._spread(rows @ (rgb @ derived._LUMA) @ cols.T)
        want = derived.detailed(rgb)
        opposite += (exact >= derived.MIN_SPREAD) != want
        assert derived.Detail(rgb)(0, 0, 260, 300) == want, amplitude
    assert opposite > 0  # the cases the fallback exists for were among them


def cell_means_layout(pixels: np.ndarray) -> str:
    """colour.layout computed independently: each 3 x 3 cell's pixels averaged, half up."""
    height, width = pixels.shape[:2]
    ys, xs = [n * height // 3 for n in range(4)], [n * width // 3 for n in range(4)]
    out = b""
    for a in range(3):
        for b in range(3):
            cell = pixels[ys[a]:ys[a + 1], xs[b]:xs[b + 1]].reshape(-1, 3).astype(np.float64)
            out += bytes(int(np.floor(v + 0.5)) for v in cell.mean(axis=0))
    return out.hex()


@pytest.mark.parametrize("name", ["astronaut.jpg", "camera.png", "logo_rgba.png"])
def test_detail_colours_and_spreads_of_many_regions(media: Path, name: str) -> None:
    # The kernel's colour layouts equal each cell's mean colour (an independent computation);
    # its spreads are Detail's numpy formula to far inside the margin Detail decides by; and
    # many() answers as one region at a time.
    from hashdb.hashing import kernel

    with Image.open(media / name) as image:
        rgb = derived.work_copy(image.convert("RGB"))
    detail = derived.Detail(rgb)
    height, width = rgb.shape[:2]
    regions = boxes(width, height, 7)
    for left, top, right, bottom in regions:
        if min(right - left, bottom - top) >= 3:
            want = cell_means_layout(rgb[top:bottom, left:right])
            assert detail.colours(left, top, right, bottom) == want, (left, top, right, bottom)
    sized = np.array([b for b in regions if min(b[2] - b[0], b[3] - b[1]) >= 32], dtype=np.int64)
    spreads = kernel.spreads(detail.sums, sized)
    if kernel.available():
        assert spreads is not None
        np.testing.assert_allclose(spreads, [detail._spread(*map(int, b)) for b in sized], rtol=1e-9, atol=1e-9)
    assert detail.many(regions) == [detail(*b) for b in regions]


def test_without_the_kernels_checks_detail_and_colours_are_numpys(media: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A kernel built before region_checks (an editable checkout's older .so): the same answers.
    from hashdb.hashing import kernel

    with Image.open(media / "coffee.jpg") as image:
        rgb = derived.work_copy(image.convert("RGB"))
    height, width = rgb.shape[:2]
    regions = boxes(width, height, 3)
    detail = derived.Detail(rgb)
    want = (detail.many(regions), [detail.colours(*b) for b in regions if min(b[2] - b[0], b[3] - b[1]) >= 3])
    monkeypatch.setattr(kernel, "_CHECKS", None)
    assert kernel.spreads(detail.sums, np.array(regions[:1], dtype=np.int64)) is None
    assert (detail.many(regions), [detail.colours(*b) for b in regions if min(b[2] - b[0], b[3] - b[1]) >= 3]) == want
