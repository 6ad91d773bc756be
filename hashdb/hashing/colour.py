"""The colour layout derived hashes carry, and how far apart two layouts are.

PDQ reads brightness only: two pictures that differ in colour alone (the flags of Ireland and
Guinea, one folder icon drawn in blue and in green, warning stripes black on white and black
on orange) hash alike. A derived hash (derived.py) keeps its region's colour layout beside its
PDQ, the mean colour of each cell of a GRID x GRID split, so that two derived hashes that
match can be asked to agree in colour too (service/derived_gates.py, COLOUR_GAP). The whole image's
PDQ carries none: it stays what partners and python-threatexchange compute.

Colour edits a re-upload makes (grey, brighter or darker, more or less contrast or saturation)
scale every cell's chroma by one factor, from 0 (grey) to about 2; so two layouts are compared
by what is left once the stored one's chroma is scaled to fit the query's (colour_gap). A grey
copy of a coloured picture is no further from it than a copy; a coloured picture is far
from a grey one, and from one whose colours sit elsewhere.
"""

from __future__ import annotations

import math
import re

import cv2
import numpy as np
import numpy.typing as npt

from hashdb.hashing import kernel

GRID = 3
# Six hex digits ("rrggbb") a cell, row by row.
LAYOUT = re.compile(rf"(?:[0-9a-f]{{6}}){{{GRID * GRID}}}")
# The most a colour edit scales chroma by (Pillow's saturation 1.8, with clipping).
MOST_SCALE = 2.0


def _edges(start: int, length: int) -> npt.NDArray[np.intp]:
    return start + (np.arange(GRID + 1) * length) // GRID


def layout(pixels: npt.NDArray[np.uint8]) -> str:
    """`pixels`' (H x W x 3, RGB, each side >= GRID) colour layout: each cell's mean colour,
    rounded half up, as "rrggbb", row by row. Cells split each side as integer division does."""
    height, width = pixels.shape[:2]
    return layout_from_sums(summed(pixels), 0, 0, width, height)


def summed(pixels: npt.NDArray[np.uint8]) -> npt.NDArray[np.generic]:
    """The (H + 1) x (W + 1) x 3 summed-area table layout_from_sums reads: exact, int32 while
    every sum fits, else float64 (below 2**53)."""
    depth = cv2.CV_32S if pixels.shape[0] * pixels.shape[1] * 255 < 2**31 else cv2.CV_64F
    table: npt.NDArray[np.generic] = cv2.integral(np.ascontiguousarray(pixels), sdepth=depth)
    return table


def layout_from_sums(sums: npt.NDArray[np.generic], left: int, top: int, right: int, bottom: int) -> str:
    """layout() of a region, from the image's summed-area table (summed(), or derived.Detail's):
    the same answer, in a few microseconds (the compiled kernel's, when the install built it:
    the same bytes, without numpy's dozen calls)."""
    if min(right - left, bottom - top) >= GRID:
        made = kernel.layouts(sums, np.array([(left, top, right, bottom)], dtype=np.int64))
        if made is not None:
            return made[0].hex()
    ys, xs = _edges(top, bottom - top), _edges(left, right - left)
    corners = sums[np.ix_(ys, xs)].astype(np.float64)  # (GRID + 1) x (GRID + 1) x 3
    cells = corners[1:, 1:] - corners[:-1, 1:] - corners[1:, :-1] + corners[:-1, :-1]
    return _means_hex(cells, ys, xs)


def _means_hex(cells: npt.NDArray[np.float64], ys: npt.NDArray[np.intp], xs: npt.NDArray[np.intp]) -> str:
    areas = np.outer(np.diff(ys), np.diff(xs))[:, :, None]
    means = np.floor(cells / areas + 0.5).clip(0, 255).astype(np.uint8)
    return bytes(means.tobytes()).hex()


def covered_layout(sums: npt.NDArray[np.generic], width: int, height: int, box: tuple[int, int, int, int],
                   fill: npt.NDArray[np.uint8]) -> str:
    """layout() of the width x height image whose summed-area table is `sums` (summed()) with
    `box` (left, top, right, bottom) filled with the colour `fill`: each cell's sum less what
    the box covers of it, plus the fill's. The sums are exact integers in float64 (below 2**53)
    whichever way they are added, so the answer is layout()'s of the filled copy, without
    making the copy or its table (the corner masks: 4 copies an image). By the compiled kernel
    when the install built it: the same sums and divides, without numpy's forty calls."""
    if sums.shape[:2] == (height + 1, width + 1) and min(width, height) >= GRID:
        made = kernel.covered_layout(sums, box, fill)
        if made is not None:
            return made.hex()
    ys, xs = _edges(0, height), _edges(0, width)
    corners = sums[np.ix_(ys, xs)].astype(np.float64)
    cells = corners[1:, 1:] - corners[:-1, 1:] - corners[1:, :-1] + corners[:-1, :-1]
    left, top, right, bottom = box
    # Each cell's overlap with the box: empty where a clipped range collapses to one edge.
    oy0, oy1 = np.clip(ys[:-1], top, bottom), np.clip(ys[1:], top, bottom)
    ox0, ox1 = np.clip(xs[:-1], left, right), np.clip(xs[1:], left, right)
    def corners_at(ys: npt.NDArray[np.intp], xs: npt.NDArray[np.intp]) -> npt.NDArray[np.float64]:
        return sums[np.ix_(ys, xs)].astype(np.float64)

    under = corners_at(oy1, ox1) - corners_at(oy0, ox1) - corners_at(oy1, ox0) + corners_at(oy0, ox0)
    areas = np.outer(oy1 - oy0, ox1 - ox0)[:, :, None]
    return _means_hex(cells - under + areas * fill.astype(np.float64), ys, xs)


def _chroma(colours: str) -> npt.NDArray[np.float64]:
    rgb = np.frombuffer(bytes.fromhex(colours), dtype=np.uint8).reshape(-1, 3).astype(np.float64)
    # ITU-R BT.601's Cb and Cr (0..255 scale): colour with brightness taken out.
    out: npt.NDArray[np.float64] = rgb @ np.array([[-0.168736, 0.5], [-0.331264, -0.418688], [0.5, -0.081312]])
    return out


def colour_gap(query: str, stored: str) -> float:
    """How far the query's colour layout is from the stored one's, once the stored chroma is
    scaled by the factor (0 to MOST_SCALE) that fits best: the RMS over the cells of what is
    left, in Cb/Cr levels. A grey copy of a picture is 0 from it; two layouts whose colours
    differ in hue or place are far apart."""
    q, s = _chroma(query), _chroma(stored)
    power = float((s * s).sum())
    scale = 0.0 if power == 0 else min(MOST_SCALE, max(0.0, float((q * s).sum()) / power))
    return math.sqrt(float(((q - scale * s) ** 2).sum(axis=1).mean()))
