"""Keypoints: what finds a cropped re-upload that no PDQ of the picture or of its parts does.

A stored image keeps the strongest ORB keypoints of its grey work copy (positions on a 4-pixel
grid, 32-byte descriptors) and the PDQs of three centred boxes of that copy. A lookup finds the
stored images its own keypoints vote for, fits a similarity transform between the two by RANSAC,
and then checks the picture, not the points: the query, warped onto the stored frame, is hashed
over the largest stored box that lies inside it and compared with that box's stored PDQ. Shared
parts of different drawings (one deck's card borders, one theme's icon frame) verify as well as
a crop does; the aligned PDQ is what tells them apart (BENCHMARKS.md, "Crops: local features").

Keypoints with their positions are more than a hash gives away (published work rebuilds a sketch
of the picture from them), so a stored image's keypoints are kept in the store, never served back
to a lookup, and leave it only in an export feed asked for them from a database whose operator
shares them (Settings.share_keypoints), for a partner's mirror; a lookup's stay in the process
that hashed the file: it needs the file's pixels anyway.
"""

from __future__ import annotations

import base64
import binascii
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from hashdb.errors import InvalidInput
from hashdb.hashing import kernel, regions
from hashdb.hashing.derived import MASKED, PART_SPLIT, WINDOW
from hashdb.hashing.pdq import PdqSignal
from hashdb.types import DerivedHash, HashValue

# The stored format, version 1 (little-endian):
#   b"HK" version:u8 flags:u8 width:u16 height:u16 count:u16
#   3 x (quality:u8, pdq:32 bytes)   the centred boxes of BOX_SHARES (quality 0: none kept)
#   count x (x:u8, y:u8)             positions / GRID, in work pixels
#   count x descriptor:32 bytes
MAGIC = b"HK"
VERSION = 1
BOX_SHARES = (1.0, 0.8, 0.6)
WHOLE = BOX_SHARES[0]
GRID = 4
DESCRIPTOR_BYTES = 32
STORED_COUNT = 200
HEADER_BYTES = 10
_HEADER = struct.Struct("<2sBBHHH")
_BOX_BYTES = 33
MAX_BYTES = HEADER_BYTES + len(BOX_SHARES) * _BOX_BYTES + STORED_COUNT * (2 + DESCRIPTOR_BYTES)
_FLAG_BOXES = 1
# The longest base64 text of the stored format (padded); keypoints_text.encode_text writes it.
MAX_TEXT = 4 * math.ceil(MAX_BYTES / 3)

# Keypoints are found on a grey copy scaled to this longest side, up or down, so that a small
# emoji and a 1,024-pixel photograph are described at one scale. A lookup keeps its strongest
# QUERY_COUNT; a stored image its strongest STORED_COUNT (200 cost 0.003 of mean recall against
# 500 in the measurement, at 2.3x less of everything). A lookup's weaker keypoints are the least
# repeatable: against 1,000, its 500 strongest found as many queries in the evaluation (mean
# recall 0.933 against 0.932, the crops a few more, a caption and a screenshot fewer) with the
# same false positives, 700 and 300 one and two more (BENCHMARKS.md), for half the candidate
# search and verification.
WORK_SIDE = 512
QUERY_COUNT = 500
MIN_KEYPOINTS = 10
# ORB finds no keypoint within its edge threshold (19 pixels) of a side, so a copy thinner than
# twice that has none; thinner still, its pyramid's resize asserts.
MIN_SIDE = 40
# ORB (OpenCV) as measured; FAST's threshold 10 finds corners in flat clip art too.
_ORB = dict(scaleFactor=1.2, nlevels=8, edgeThreshold=19, patchSize=19, fastThreshold=10)


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


def _orb(count: int) -> Any:
    return cv2.ORB_create(nfeatures=count, **_ORB)  # type: ignore[attr-defined]  # not in OpenCV's stubs


def grey_copy(work: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """The grey copy keypoints are found on: `work` (RGB) in PDQ's luma, longest side WORK_SIDE."""
    grey = np.asarray(cv2.cvtColor(np.ascontiguousarray(work), cv2.COLOR_RGB2GRAY), dtype=np.uint8)
    height, width = grey.shape
    scale = WORK_SIDE / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if size == (width, height) or min(height, width) < 2:  # a line of pixels: detect() finds nothing on it
        return grey
    return np.asarray(cv2.resize(grey, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR),
                      dtype=np.uint8)


def detect(grey: npt.NDArray[np.uint8], count: int) -> Keypoints:
    """The strongest `count` ORB keypoints of a grey copy, strongest first; none on a copy
    thinner than MIN_SIDE (a divider line, a 1-pixel spacer: ORB's pyramid asserts on them)."""
    size = (grey.shape[1], grey.shape[0])
    found, descriptors = _orb(count).detectAndCompute(grey, None) if min(grey.shape) >= MIN_SIDE else ((), None)
    if descriptors is None or not found:
        return Keypoints(np.zeros((0, 2), np.float32), np.zeros((0, DESCRIPTOR_BYTES), np.uint8), size, {})
    order = np.argsort([-k.response for k in found], kind="stable")[:count]
    points = np.array([found[i].pt for i in order], np.float32).reshape(-1, 2)
    return Keypoints(points, np.ascontiguousarray(descriptors[order]), size, {})


def centred_box(width: int, height: int, share: float) -> tuple[int, int, int, int]:
    cut_x, cut_y = round(width * (1 - share) / 2), round(height * (1 - share) / 2)
    return cut_x, cut_y, width - cut_x, height - cut_y


def box_pdq(grey: npt.NDArray[np.uint8], box: tuple[int, int, int, int]) -> tuple[str, int]:
    left, top, right, bottom = box
    region = np.ascontiguousarray(grey[top:bottom, left:right])
    value = PdqSignal().compute_array(np.repeat(region[:, :, None], 3, axis=2))
    return value.hex, value.quality or 0


def stored_keypoints(work: npt.NDArray[np.uint8], min_quality: int) -> bytes | None:
    """The stored format of an RGB work copy's keypoints (derived.work_copy), or None when it
    has fewer than MIN_KEYPOINTS or no centred box of PDQ quality >= min_quality."""
    grey = grey_copy(work)
    found = detect(grey, STORED_COUNT)
    if len(found.points) < MIN_KEYPOINTS:
        return None
    width, height = found.size
    # The three boxes from one luma, in one kernel call: what box_pdq gives each, bit for bit.
    luma = kernel.Luma(np.repeat(grey[:, :, None], 3, axis=2))
    shares = [centred_box(width, height, share) for share in BOX_SHARES]
    boxes = {}
    for share, value in zip(BOX_SHARES, PdqSignal().compute_regions(luma, shares), strict=True):
        if (value.quality or 0) >= min_quality:
            boxes[share] = (value.hex, value.quality or 0)
    if WHOLE not in boxes:  # what ties the keypoints to the record's PDQ (box_pdqs)
        return None
    return encode(Keypoints(found.points, found.descriptors, found.size, boxes))


def probe(work: npt.NDArray[np.uint8]) -> Probe | None:
    """A lookup's keypoints of an RGB work copy, or None when it has fewer than MIN_KEYPOINTS."""
    grey = grey_copy(work)
    found = detect(grey, QUERY_COUNT)
    return Probe(found, grey) if len(found.points) >= MIN_KEYPOINTS else None


def encode(keypoints: Keypoints) -> bytes:
    count = len(keypoints.points)
    width, height = keypoints.size
    out = [_HEADER.pack(MAGIC, VERSION, _FLAG_BOXES, width, height, count)]
    for share in BOX_SHARES:
        value, quality = keypoints.boxes.get(share, ("0" * 64, 0))
        out.append(bytes([quality]) + bytes.fromhex(value))
    # Positions to a 4-pixel grid: RANSAC's 6-pixel tolerance keeps every match at 4 (425 of
    # 425 crop matches found) and loses an eighth at 8 (BENCHMARKS.md, "Crops: local features").
    grid = np.clip(np.rint(keypoints.points / GRID), 0, 255).astype(np.uint8)
    out.append(grid.tobytes())
    out.append(np.ascontiguousarray(keypoints.descriptors, dtype=np.uint8).tobytes())
    return b"".join(out)


def parse(data: object) -> Keypoints:
    """The stored format read strictly; anything else raises InvalidInput naming what is wrong."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InvalidInput(f"keypoints must be bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) < HEADER_BYTES:
        raise InvalidInput(f"keypoints are {len(data)} bytes, shorter than their {HEADER_BYTES}-byte header")
    magic, version, flags, width, height, count = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise InvalidInput("keypoints do not start with the keypoint format's mark (HK)")
    if version != VERSION:
        raise InvalidInput(f"keypoints are of format version {version}; this server reads version {VERSION}")
    if flags != _FLAG_BOXES:
        raise InvalidInput(f"keypoints have unknown flags {flags:#04x}")
    if max(width, height) != WORK_SIDE or min(width, height) < 1:
        raise InvalidInput(f"keypoints' work copy is {width}x{height}; its longest side must be {WORK_SIDE}")
    if not MIN_KEYPOINTS <= count <= STORED_COUNT:
        raise InvalidInput(f"keypoints hold {count} points; a stored image has {MIN_KEYPOINTS} to {STORED_COUNT}")
    want = HEADER_BYTES + len(BOX_SHARES) * _BOX_BYTES + count * (2 + DESCRIPTOR_BYTES)
    if len(data) != want:
        raise InvalidInput(f"keypoints of {count} points are {want} bytes, got {len(data)}")
    boxes: dict[float, tuple[str, int]] = {}
    at = HEADER_BYTES
    for share in BOX_SHARES:
        quality, value = data[at], data[at + 1:at + _BOX_BYTES]
        at += _BOX_BYTES
        if quality > 100:
            raise InvalidInput(f"keypoints' {share:.0%} box has PDQ quality {quality}; at most 100")
        if quality:
            boxes[share] = (value.hex(), quality)
        elif any(value):
            raise InvalidInput(f"keypoints' {share:.0%} box has a PDQ but quality 0")
    if WHOLE not in boxes:
        raise InvalidInput("keypoints have no PDQ of their whole picture (the 100 % box), which ties them to a record")
    grid = np.frombuffer(data, np.uint8, count * 2, at).reshape(count, 2)
    at += count * 2
    if (grid[:, 0].astype(np.int64) * GRID > width).any() or (grid[:, 1].astype(np.int64) * GRID > height).any():
        raise InvalidInput(f"keypoints have a point outside their {width}x{height} work copy")
    descriptors = np.frombuffer(data, np.uint8, count * DESCRIPTOR_BYTES, at).reshape(count, DESCRIPTOR_BYTES)
    return Keypoints(grid.astype(np.float32) * GRID, descriptors, (width, height), boxes)


def box_pdqs(keypoints: Keypoints) -> list[HashValue]:
    """The boxes' PDQs, as the safelist screens them: a stored image matches through them, so a
    benign picture's boxes in another record's keypoints would make that picture match it."""
    return [HashValue("pdq", value, quality) for value, quality in keypoints.boxes.values()]


# Keypoints belong to a record when their whole-picture box lies this near one of its PDQs or
# derived hashes (PDQ's own threshold): the same picture lands within 20 bits on the fixtures.
TIE_RADIUS = 31


def distance_to_record(keypoints: Keypoints, pdqs: Sequence[str], derived: Sequence[DerivedHash]) -> int:
    """Bits between the keypoints' whole-picture box and the nearest of what vouches for a
    record's picture: its PDQs and derived hashes (not masked ones or windows, as the safelist
    screens them). The same picture, from a grey 512-pixel copy, lands within 20 of its PDQ on
    the fixtures and reference vectors; a small icon's grey copy, enlarged to 512, lands 32 to 64
    bits from its PDQ (read through a one-pixel filter) and 8 to 18 from its enlarged hash.
    Keypoints further than TIE_RADIUS are another picture's."""
    whole = int(keypoints.boxes[WHOLE][0], 16)
    vouching = [*pdqs, *(d.hash.hex for d in derived if d.via not in (MASKED, WINDOW))]
    return min(((whole ^ int(value, 16)).bit_count() for value in vouching), default=256)


def from_text(text: object) -> bytes:
    """Standard base64 of the stored format, checked by parse(); InvalidInput otherwise."""
    if not isinstance(text, str):
        raise InvalidInput(f"keypoints must be a base64 string, got {type(text).__name__}")
    if len(text) > MAX_TEXT:
        raise InvalidInput(f"keypoints are {len(text)} base64 characters; at most {MAX_TEXT}")
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        raise InvalidInput("keypoints are not standard base64") from None
    parse(data)
    return data


# Verification, as measured (BENCHMARKS.md, "Crops: local features"): Lowe's ratio test, one
# query point per stored point (many query points on one stored point let RANSAC fit a
# transform that shrinks the query to a dot, all "inliers"), a similarity by RANSAC to 6 work
# pixels, then the geometry a crop, a caption, a logo or a screenshot can give.
RATIO = 0.8
REPROJECTION = 6.0
MIN_INLIERS = 10
SCALE_RANGE = (0.33, 3.0)
MAX_ROTATION = 12.0  # degrees; small rotations are up to 5
MIN_SPREAD = 0.04  # the inliers' bounding box over the query's area
# The aligned PDQ's radius. Inliers and geometry alone verified 923 of 5,000 distinct negatives
# (clip art shares parts); with the aligned PDQ at 31 bits 17, at 24 6, at 20 5, at 16 4.
ALIGNED_RADIUS = 20
# Only a crop leaves no larger stored box than the middle 60 % inside the query, so a match
# through that box must be one: the query shows nothing outside the stored picture. In the
# evaluation the one match through it that showed more was another drawing: one icon's
# swimmer and waves under a roof the stored icon does not have (BENCHMARKS.md).
CROP_SHARE = 0.8
# A box counts as inside the query within this share of the query's longest side.
_SLACK = 0.01


def _two_nearest(queries: npt.NDArray[np.uint8],
                 stored: npt.NDArray[np.uint8]) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int64]]:
    """Each query descriptor's two nearest stored ones (Hamming distances, indexes; -1 when
    there is no second). FAISS's flat binary scan: the same answer as OpenCV's brute-force
    matcher, about 3x faster (0.4 against 1.2 ms for 1,000 against 200 descriptors)."""
    import faiss

    index = faiss.IndexBinaryFlat(DESCRIPTOR_BYTES * 8)
    index.add(np.ascontiguousarray(stored, dtype=np.uint8))
    distances, ids = index.search(np.ascontiguousarray(queries, dtype=np.uint8), 2)
    return distances, ids


@dataclass(frozen=True, slots=True)
class Alignment:
    """A stored image found in a query: inliers of the fitted similarity, its scale and rotation
    (query -> stored), the share of the stored image the query covers, and the aligned PDQ: the
    distance of the stored box of `share` to the query warped onto it."""

    inliers: int
    scale: float
    rotation: float
    covered: float
    share: float
    distance: int


def fit(query: Probe, stored: Keypoints) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float32]] | None:
    """The similarity (2 x 3, query -> stored work pixels) RANSAC fits to the two images'
    matched keypoints, and its inliers' query positions; None below MIN_INLIERS matches."""
    mine = query.keypoints
    if len(mine.descriptors) < 2 or len(stored.descriptors) < 2:
        return None
    distances, ids = _two_nearest(mine.descriptors, stored.descriptors)
    kept = np.flatnonzero((ids[:, 1] >= 0) & (distances[:, 0] < RATIO * distances[:, 1]))
    # the nearest query point of each stored point: first by distance, then by query order
    order = kept[np.lexsort((kept, distances[kept, 0]))]
    _, first = np.unique(ids[order, 0], return_index=True)
    chosen = order[first]
    if len(chosen) < MIN_INLIERS:
        return None
    source = mine.points[chosen]
    target = stored.points[ids[chosen, 0]]
    matrix, mask = cv2.estimateAffinePartial2D(source, target, method=cv2.RANSAC, ransacReprojThreshold=REPROJECTION,
                                               maxIters=2000, confidence=0.995)
    if matrix is None or mask is None:
        return None
    return np.asarray(matrix, dtype=np.float64), source[mask.ravel().astype(bool)]


def align(query: Probe, stored: Keypoints) -> Alignment | None:
    """Where `stored` lies in the query, if the two verify: a similarity with MIN_INLIERS,
    plausible geometry, and a stored box inside the query whose aligned PDQ is within
    ALIGNED_RADIUS. None otherwise."""
    fitted = fit(query, stored)
    if fitted is None:
        return None
    matrix, points = fitted
    inliers = len(points)
    scale = math.hypot(matrix[0, 0], matrix[1, 0])
    rotation = math.degrees(math.atan2(matrix[1, 0], matrix[0, 0]))
    query_width, query_height = query.keypoints.size
    spread = float(np.ptp(points[:, 0]) * np.ptp(points[:, 1])) / (query_width * query_height) if inliers else 0.0
    if (inliers < MIN_INLIERS or not SCALE_RANGE[0] <= scale <= SCALE_RANGE[1] or abs(rotation) > MAX_ROTATION
            or spread < MIN_SPREAD):
        return None
    width, height = stored.size
    corners = np.array([[0, 0, 1], [query_width, 0, 1], [0, query_height, 1], [query_width, query_height, 1]],
                       np.float64) @ matrix.T
    low = np.clip(corners.min(axis=0), 0, (width, height))
    high = np.clip(corners.max(axis=0), 0, (width, height))
    covered = float(np.prod(high - low)) / (width * height)
    found = _aligned_distance(query.grey, matrix, stored)
    if found is None or found[1] > ALIGNED_RADIUS:
        return None
    if _one_part(query.grey, matrix, stored.size):
        return None
    if found[0] < CROP_SHARE and not _within(corners, width, height, _SLACK * max(width, height)):
        return None
    return Alignment(inliers, scale, rotation, covered, *found)


def _aligned_distance(grey: npt.NDArray[np.uint8], matrix: npt.NDArray[np.float64],
                      stored: Keypoints) -> tuple[float, int] | None:
    """(share, PDQ distance) of the largest stored centred box inside the query, the query
    warped onto the stored frame; None when no stored box lies inside it. The stored image's
    whole PDQ and its 80 % box are what hashdb stores anyway; the 60 % box is what an 80 % crop
    taken anywhere still holds."""
    width, height = stored.size
    query_height, query_width = grey.shape
    inverse = cv2.invertAffineTransform(matrix)
    slack = _SLACK * max(query_width, query_height)
    for share in BOX_SHARES:
        if share not in stored.boxes:
            continue
        left, top, right, bottom = centred_box(width, height, share)
        corners = np.array([[left, top, 1], [right, top, 1], [left, bottom, 1], [right, bottom, 1]],
                           np.float64) @ inverse.T
        if _within(corners, query_width, query_height, slack):
            warped = np.asarray(cv2.warpAffine(grey, matrix, (width, height), flags=cv2.INTER_LINEAR,
                                               borderMode=cv2.BORDER_REPLICATE), dtype=np.uint8)
            value, _ = box_pdq(warped, (left, top, right, bottom))
            return share, (int(value, 16) ^ int(stored.boxes[share][0], 16)).bit_count()
    return None


def _within(corners: npt.NDArray[np.float64], width: float, height: float, slack: float) -> bool:
    """Whether every (x, y) of `corners` lies in a width x height frame, give or take `slack`."""
    return bool((corners[:, :2].min(axis=0) >= -slack).all() and corners[:, 0].max() <= width + slack
                and corners[:, 1].max() <= height + slack)


def _one_part(grey: npt.NDArray[np.uint8], matrix: npt.NDArray[np.float64], size: tuple[int, int]) -> bool:
    """Whether the stored picture, found in the query, is one part of a composite there: beside
    its frame the query holds a block of busy lines (columns across the frame's rows, rows
    across its columns) at least PART_SPLIT as long as the longest inside it, as the derived
    hashes' layout tells a part from a picture (derived.PART_SPLIT). A caption's lines and an
    app's bars are short beside a picture; a second pictogram beside the first is not. A
    picture found inside another is not that picture: two AIGA pictograms side by side, both
    whole in a third sign, matched it at 2 bits (BENCHMARKS.md, "Matching quality")."""
    width, height = size
    query_height, query_width = grey.shape
    corners = np.array([[0, 0, 1], [width, 0, 1], [0, height, 1], [width, height, 1]], np.float64) \
        @ cv2.invertAffineTransform(matrix).T
    left, top = np.clip(np.rint(corners.min(axis=0)), 0, (query_width, query_height)).astype(int)
    right, bottom = np.clip(np.rint(corners.max(axis=0)), 0, (query_width, query_height)).astype(int)
    if right - left < 2 or bottom - top < 2:
        return False
    for busy, start, end in ((_busy(grey[top:bottom].T), left, right), (_busy(grey[:, left:right]), top, bottom)):
        inside = _longest_run(busy[start:end])
        beside = max(_longest_run(busy[:start]), _longest_run(busy[end:]))
        if inside and beside >= PART_SPLIT * inside:
            return True
    return False


def _busy(lines: npt.NDArray[np.uint8]) -> npt.NDArray[np.bool_]:
    """Per line (a row of `lines`): not one colour nearly everywhere, as the detectors judge
    a border's line (regions.TOLERANCE, regions.BORDER_SHARE)."""
    if not lines.size:
        return np.zeros(len(lines), np.bool_)
    values = lines.astype(np.int16)
    median = np.median(values, axis=1, keepdims=True)
    near = np.count_nonzero(np.abs(values - median) <= regions.TOLERANCE, axis=1)
    busy: npt.NDArray[np.bool_] = near < regions.BORDER_SHARE * lines.shape[1]
    return busy


def _longest_run(busy: npt.NDArray[np.bool_]) -> int:
    return max((end - start for start, end in regions.runs(busy)), default=0)
