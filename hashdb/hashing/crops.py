"""Centred crops of a stored image: PDQs of its middle 95, 90, 85 and 80 %, stored as derived
hashes (`via` "cropped") beside the whole image's PDQ.

A re-upload cropped to its middle keeps none of the whole image's PDQ past about 5 % off
each side, and nothing in the crop says what was cut away, so the query cannot undo it; the
stored side can anticipate it. Each crop is matched only by a query's whole-image PDQs (see
service/matching.py): the query is the cropped file itself, and a region a detector cut from
it is not a crop of anything stored. Queries never compute these (a lookup pays nothing);
PDQ's tolerance covers about 2.5 % of side on either side of each share, so the four shares
cover centred crops from about 78 % to 97 % (BENCHMARKS.md, "Matching quality").
Four stored corner crops of 85 % added 0.001 of mean recall in the evaluation.

Off-centre crops are met from the query's side instead (window_pdqs): a crop of 90 % of each
side taken anywhere still holds the picture's centred 80 %, which is stored; in the query it
is a window of 0.89 of each side somewhere within its margins. A lookup hashes WINDOW_SHARES x
WINDOW_STEPS x WINDOW_STEPS such windows (`via` "window"), and each may match only a stored
centred crop smaller than itself (service/derived_gates.py, fits_window, WINDOW_RADIUS).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from PIL import Image

from hashdb.hashing import derived, kernel
from hashdb.hashing.centred import SHARES, centre_boxes
from hashdb.hashing.pdq import PdqSignal
from hashdb.types import DerivedHash


def crop_pdqs(image: Image.Image | npt.NDArray[np.uint8], min_quality: int,
              detail: derived.Detail | None = None, luma: kernel.Luma | None = None) -> tuple[DerivedHash, ...]:
    """PDQs of the centred crops worth sharing: by the same rules as the other derived hashes
    (enough detail left, quality >= min_quality, not degenerate). `detail` and `luma`: the work
    copy's Detail and kernel.Luma, when the caller has them (derived_pdqs reads the same)."""
    rgb = derived.work_copy(image)  # the same copy derived_pdqs hashes (hash_media passes it in)
    height, width = rgb.shape[:2]
    if min(width, height) * SHARES[-1] < 16:
        return ()
    detail = derived.Detail.of(rgb, detail)
    if not derived.detailed_middle(rgb, detail):
        return ()
    return _box_pdqs(rgb, centre_boxes(width, height), derived.CROPPED, min_quality, detail, luma)


def _box_pdqs(rgb: npt.NDArray[np.uint8], boxes: list[tuple[int, int, int, int]], via: str, min_quality: int,
              detail: derived.Detail, luma: kernel.Luma | None) -> tuple[DerivedHash, ...]:
    """The PDQs of `boxes` of `rgb` worth sharing, as `via` derived hashes with their share and
    colours: each box with detail enough, quality >= min_quality, each value once. Every box is
    hashed from the image's luma, made once (`luma` when the caller has it), all in one kernel
    call, as their detail checks."""
    height, width = rgb.shape[:2]
    pdq = PdqSignal()
    out: list[DerivedHash] = []
    luma = derived.luma_of(rgb, luma)
    kept = [box for box, ok in zip(boxes, detail.many(boxes), strict=True) if ok]
    for (left, top, right, bottom), value in zip(kept, pdq.compute_regions(luma, kept), strict=True):
        if derived.usable(value, min_quality) and all(value.hex != d.hash.hex for d in out):
            out.append(DerivedHash(via, value, derived.share_of((right - left) * (bottom - top), width * height),
                                   detail.colours(left, top, right, bottom)))
    return tuple(out)


# A lookup's windows: the share of each side they keep, and the offsets each way (from one edge
# to the other, in equal steps). A stored crop is found by a window within about 2.5 % of a
# side of it on drawings (PDQ's tolerance; 0.5 to 1 % on photographs), so three steps each way
# cover a query cropped by up to about 10 % of a side anywhere. 0.95 finds the stored 90 % in
# a crop of 95 %, and 0.89 the stored 80 % (or 85 %) in a crop of 90 %. Measured with a scratch
# harness (BENCHMARKS.md, "Matching quality"): off-centre crops of 95 % went 0.63 -> 0.80 and
# of 90 % 0.46 -> 0.63; four steps of 0.89 gained 0.03 on 95 % for 7 more windows; windows of
# 0.84, or stored crops of 70 and 60 % with 40 more windows, 0.04 to 0.06 on crops of 85 and
# 80 %, not worth the stored hashes and tries.
WINDOW_SHARES = (0.95, 0.89)
WINDOW_STEPS = 3
WINDOW_COUNT = len(WINDOW_SHARES) * WINDOW_STEPS ** 2


def window_boxes(width: int, height: int) -> list[tuple[int, int, int, int]]:
    """(left, top, right, bottom) of each window, each share's WINDOW_STEPS x WINDOW_STEPS
    offsets row by row from the top left, in WINDOW_SHARES order; a box met before left out."""
    boxes: list[tuple[int, int, int, int]] = []
    for share in WINDOW_SHARES:
        w, h = round(width * share), round(height * share)
        for step_y in range(WINDOW_STEPS):
            for step_x in range(WINDOW_STEPS):
                left = (width - w) * step_x // (WINDOW_STEPS - 1)
                top = (height - h) * step_y // (WINDOW_STEPS - 1)
                box = (left, top, left + w, top + h)
                if box not in boxes:
                    boxes.append(box)
    return boxes


def window_pdqs(small: npt.NDArray[np.uint8], min_quality: int,
                luma: kernel.Luma | None = None) -> tuple[DerivedHash, ...]:
    """A lookup's windows (window_boxes) of `small`, the work copy reduced to deskew.WORK_SIDE,
    as WINDOW derived hashes with their share and colours, by the same rules as the centred
    crops (detail in the middle and in the window, quality >= min_quality, not degenerate).
    The smaller copy (what the deskew angle and the corner masks read): PDQ reads a 64 x 64
    reduction anyway, and 18 PDQs of the 512-pixel copy would cost more than the rest of a
    lookup's derived hashes together. `luma`: small's kernel.Luma, when the caller has it (a
    work copy already that small)."""
    height, width = small.shape[:2]
    if min(width, height) * WINDOW_SHARES[-1] < 16:
        return ()
    detail = derived.Detail(small)
    if not derived.detailed_middle(small, detail):
        return ()
    return _box_pdqs(small, window_boxes(width, height), derived.WINDOW, min_quality, detail, luma)
