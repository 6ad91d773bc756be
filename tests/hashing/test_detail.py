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
