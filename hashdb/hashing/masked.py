"""Corner-masked PDQs: the image with one corner covered, stored and queried (`via` "masked").

A channel logo or a watermark in a corner covering a tenth of the picture moves the whole
image's PDQ by about 50 bits (the evaluation's median), past any radius that keeps unrelated
images apart, and no detector can say where an arbitrary logo is. So both sides cover each
corner in turn with the same box (MASK_WIDTH x MASK_HEIGHT of the image, the picture's median
colour): under the box the query loses its logo and the stored image the same pixels, and the
80 % left must then agree within a few bits (service/derived_gates.py, MASKED_RADIUS: 5 of PDQ's
31): the rest of the picture all but unchanged.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from PIL import Image

from hashdb.hashing import colour, derived, kernel, regions
from hashdb.hashing.pdq import PdqSignal
from hashdb.types import DerivedHash

# Share of the width and of the height each corner's box covers: a corner logo of up to 15 %
# of the area, with the padding a broadcaster leaves, fits under it (wider than tall, as logos
# and the frames they sit in are).
MASK_WIDTH = 0.5
MASK_HEIGHT = 0.4
# Below this side a corner box leaves too few pixels to say anything.
MIN_SIDE = 32
# Covered copies are hashed at this longest side: PDQ reads a 64 x 64 reduction anyway, and
# masked hashes are compared only with masked hashes made the same way. Four PDQs of the
# 512-pixel work copy cost more than the rest of an image's derived hashes together.
MASK_SIDE = 256


def corner_boxes(width: int, height: int) -> list[tuple[int, int, int, int]]:
    """(left, top, right, bottom) of each corner's box: top left, top right, bottom left,
    bottom right."""
    w, h = round(width * MASK_WIDTH), round(height * MASK_HEIGHT)
    return [(left, top, left + w, top + h) for top in (0, height - h) for left in (0, width - w)]


def _median_colour(pixels: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """np.median(pixels.reshape(-1, 3), axis=0).astype(np.uint8), from each channel's histogram
    (a third of the time): the two middle values are found by counting, and their mean is
    halved and truncated as np.median's float mean then astype would."""
    count = pixels.shape[0] * pixels.shape[1]
    out = np.empty(3, dtype=np.uint8)
    for channel in range(3):
        below = np.cumsum(np.bincount(pixels[:, :, channel].ravel(), minlength=256))
        low = int(np.searchsorted(below, (count - 1) // 2 + 1))
        high = int(np.searchsorted(below, count // 2 + 1))
        out[channel] = (low + high) // 2
    return out


def masked_pdqs(image: Image.Image | npt.NDArray[np.uint8], min_quality: int,
                small: npt.NDArray[np.uint8] | None = None) -> tuple[DerivedHash, ...]:
    """PDQs of the image with each corner covered, by the same rules as the other derived
    hashes (a picture with detail, quality >= min_quality, not degenerate). `small`: the
    work copy reduced to MASK_SIDE, when the caller has it (deskew.py reads the same copy)."""
    rgb = regions.reduced(derived.work_copy(image), MASK_SIDE, small)
    height, width = rgb.shape[:2]
    if min(width, height) < MIN_SIDE:
        return ()
    # Its Detail: the middle's check and every covered copy's colours from one summed-area
    # table (the same answers as detailed() and colour.summed()'s).
    detail = derived.Detail(rgb)
    if not derived.detailed_middle(rgb, detail):
        return ()
    # The median of every other pixel each way: as steady as the median of all (a logo or a
    # re-encode moves it by a level or two) at a quarter of the cost.
    fill = _median_colour(rgb[::2, ::2])
    pdq = PdqSignal()
    out: list[DerivedHash] = []
    luma = kernel.Luma(rgb)  # each covered copy's luma is a copy of this one, the box filled
    for box in corner_boxes(width, height):
        value = pdq.compute_region(luma.filled(box, fill), 0, 0, width, height)
        if derived.usable(value, min_quality) and all(value.hex != d.hash.hex for d in out):
            out.append(DerivedHash(derived.MASKED, value,
                                   colours=colour.covered_layout(detail.sums, width, height, box, fill)))
    return tuple(out)
