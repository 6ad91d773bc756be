"""Centred crops of a stored image: PDQs of its middle 95, 90, 85 and 80 %, stored as derived
hashes (`via` "cropped") beside the whole image's PDQ.

A re-upload cropped to its middle keeps none of the whole image's PDQ past about 5 % off
each side, and nothing in the crop says what was cut away, so the query cannot undo it; the
stored side can anticipate it. Each crop is matched only by a query's whole-image PDQs (see
service/matching.py): the query is the cropped file itself, and a region a detector cut from
it is not a crop of anything stored. Queries never compute these (a lookup pays nothing);
PDQ's tolerance covers about 2.5 % of side on either side of each share, so the four shares
cover centred crops from about 78 % to 97 % (BENCHMARKS.md, "Matching quality").
Off-centre crops are not covered: four corner crops of 85 % added 0.001 of mean recall in the
evaluation.
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
    pdq = PdqSignal()
    out: list[DerivedHash] = []
    detail = derived.Detail.of(rgb, detail)
    luma = derived.luma_of(rgb, luma)
    if not derived.detailed_middle(rgb, detail):
        return ()
    for left, top, right, bottom in centre_boxes(width, height):
        if not detail(left, top, right, bottom):
            continue
        value = pdq.compute_region(luma, left, top, right, bottom)  # the work copy's luma, made once
        if derived.usable(value, min_quality) and all(value.hex != d.hash.hex for d in out):
            out.append(DerivedHash(derived.CROPPED, value, derived.share_of((right - left) * (bottom - top),
                                                                            width * height),
                                   detail.colours(left, top, right, bottom)))
    return tuple(out)
