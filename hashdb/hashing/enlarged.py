"""Small pictures enlarged: the PDQ of a small image's work copy enlarged (bicubic) to a shorter
side of ENLARGED_SIDE, stored and queried (`via` "enlarged").

PDQ's box filter is as wide as a 128th of a side: below 128 pixels it is one pixel wide, the
64 x 64 samples read the image unsmoothed, and a JPEG re-encode alone can move the whole
image's PDQ past 31 bits (a 100-pixel warning-stripe pattern by 110 bits, an 84-pixel signal
flag by 106). Enlarged, the same picture is read through a filter of a few pixels on both
sides, and a re-encoded, blurred or resized copy lands near its original again. The canonical
whole-image PDQ is left as it is; service/matching.py says what an enlarged copy may match.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from hashdb.hashing import derived
from hashdb.hashing.pdq import PdqSignal
from hashdb.types import DerivedHash

# A work copy whose shorter side is under this is enlarged to it. Measured on 400 known images
# of the evaluation's corpus (BENCHMARKS.md, "Matching quality"): edited copies more than 31
# bits from their originals, whole PDQ -> nearest of whole and enlarged: JPEG q90 9 -> 2,
# resized to 0.5 46 -> 14 and to 0.3 91 -> 27; enlarging only below 129 pixels left 20 and 32
# at 0.5 and 0.3, and 256 gave no fewer than 192.
ENLARGED_SIDE = 192
# Smaller than this a side says too little to be worth a hash (as derived regions).
MIN_SIDE = 16
# A fine periodic pattern (stripes, a grid, a checkerboard, a dot grid) enlarged leaves PDQ no
# low-frequency structure: its DCT's odd rows or columns all but vanish, and the bits fall by
# the parity of their row and column into one of a few fixed values (aaaa5555..., aaaaaaaa...,
# d555d555...), at quality 100. Different patterns then matched at 0 to 12 bits (found in a
# trial: grids and stripes of other periods and colours named the same stored grid). Split by
# the parity of row and column, a picture's bits are mixed: over the fixtures and reference
# vectors (whole images and enlarged copies) at most 148 of 256 side with their class's
# majority, 139 on average; such patterns 192 to 256. An enlarged hash past this is not made.
PARITY_ALIKE = 176


def enlarged_size(width: int, height: int) -> tuple[int, int] | None:
    """The enlarged copy's (width, height), or None when the image is not enlarged: its shorter
    side is ENLARGED_SIDE or more, or under MIN_SIDE. The longest side stays within
    derived.WORK_SIDE, so a long thin strip (a 1-megapixel panorama's work copy, 512 x 32) is
    not enlarged either: what a large image pays is this test."""
    short, long = min(width, height), max(width, height)
    if short >= ENLARGED_SIDE or short < MIN_SIDE:
        return None
    scale = min(ENLARGED_SIDE / short, derived.WORK_SIDE / long)
    if scale <= 1:
        return None
    return max(1, round(width * scale)), max(1, round(height * scale))


def enlarged_pdqs(rgb: npt.NDArray[np.uint8], min_quality: int,
                  detail: derived.Detail | None = None) -> tuple[DerivedHash, ...]:
    """The enlarged copy's PDQ of `rgb` (the work copy, derived.work_copy) as an ENLARGED
    derived hash with its colours, by the same rules as the other derived hashes (detail,
    quality >= min_quality, not degenerate); () for an image that is not small.
    `detail`: the work copy's Detail, when the caller has it."""
    height, width = rgb.shape[:2]
    size = enlarged_size(width, height)
    if size is None:
        return ()
    detail = derived.Detail.of(rgb, detail)
    if not detail(0, 0, width, height):
        return ()
    big: npt.NDArray[np.uint8] = np.asarray(cv2.resize(np.ascontiguousarray(rgb), size,
                                                       interpolation=cv2.INTER_CUBIC), dtype=np.uint8)
    value = PdqSignal().compute_array(big)
    if not derived.usable(value, min_quality) or parity_alike(value.hex) >= PARITY_ALIKE:
        return ()
    return (DerivedHash(derived.ENLARGED, value, colours=detail.colours(0, 0, width, height)),)


def parity_alike(hex_value: str) -> int:
    """How many of a PDQ's 256 bits side with the majority of their class, the classes being
    the parity of the bit's row (its 16-bit word) and column (its place in the word)."""
    value = int(hex_value, 16)
    ones = [0, 0, 0, 0]
    for word in range(16):
        row = (value >> (16 * word)) & 0xFFFF
        ones[2 * (word % 2)] += (row & 0x5555).bit_count()
        ones[2 * (word % 2) + 1] += (row & 0xAAAA).bit_count()
    return sum(max(n, 64 - n) for n in ones)
