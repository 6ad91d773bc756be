"""Keypoints: what finds a cropped re-upload that no PDQ of the picture or of its parts does.

A stored image keeps the strongest ORB keypoints of its grey work copy (positions on a 4-pixel
grid, 32-byte descriptors) and the PDQs of three centred boxes of that copy. A lookup finds the
stored images its own keypoints vote for, fits a similarity transform between the two by RANSAC,
and then checks the picture, not the points: the query, warped onto the stored frame, is hashed
over the largest stored box that lies inside it and compared with that box's stored PDQ. Shared
parts of different drawings (one deck's card borders, one theme's icon frame) verify as well as
a crop does; the aligned PDQ is what tells them apart (BENCHMARKS.md, "Crops: local features").

Keypoints with their positions are more than a hash gives away (published work rebuilds a sketch
of the picture from them), so a stored image's keypoints are kept in the store, never served back,
and a lookup's stay in the process that hashed the file: it needs the file's pixels anyway.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

# The stored format, version 1 (little-endian):
#   b"HK" version:u8 flags:u8 width:u16 height:u16 count:u16
#   3 x (quality:u8, pdq:32 bytes)   the centred boxes of BOX_SHARES (quality 0: none kept)
#   count x (x:u8, y:u8)             positions / GRID, in work pixels
#   count x descriptor:32 bytes
MAGIC = b"HK"
VERSION = 1
BOX_SHARES = (1.0, 0.8, 0.6)
GRID = 4
DESCRIPTOR_BYTES = 32
STORED_COUNT = 200
HEADER_BYTES = 10
MAX_BYTES = HEADER_BYTES + len(BOX_SHARES) * 33 + STORED_COUNT * (2 + DESCRIPTOR_BYTES)


@dataclass(frozen=True, eq=False)
class Keypoints:
    """An image's keypoints on its work copy: points (n, 2) float32 in work pixels, descriptors
    (n, 32) uint8, the work copy's (width, height), and (stored side) its centred boxes' PDQs
    by share, as (hex, quality)."""

    points: npt.NDArray[np.float32]
    descriptors: npt.NDArray[np.uint8]
    size: tuple[int, int]
    boxes: dict[float, tuple[str, int]]


@dataclass(frozen=True, eq=False)
class Probe:
    """A lookup's side: its keypoints and the grey work copy they were found on (for the aligned
    PDQ). Held in memory by the process that decoded the file; never stored, printed or sent."""

    keypoints: Keypoints
    grey: npt.NDArray[np.uint8]


def stored_keypoints(work: npt.NDArray[np.uint8]) -> bytes | None:
    """The stored format of an RGB work copy's keypoints (derived.work_copy), or None when it
    has too few keypoints or no centred box of PDQ quality."""
    raise NotImplementedError


def probe(work: npt.NDArray[np.uint8]) -> Probe | None:
    """A lookup's keypoints of an RGB work copy, or None when it has too few."""
    raise NotImplementedError


def parse(data: object) -> Keypoints:
    """The stored format read strictly; anything else raises InvalidInput naming what is wrong."""
    raise NotImplementedError
