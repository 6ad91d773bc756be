"""Small rotations: the angle a picture was turned inside its own frame, read from the corner wedges.

Turning an image a few degrees without growing the canvas (what an editor's "rotate" and most
re-upload tools do) cuts off the picture's corners and fills four thin triangles with one
colour. Growing the canvas to hold the whole turned picture (ImageMagick's -rotate, Pillow's
expand=True) fills four triangles too, of another shape, and cuts nothing off: turned back and
cropped to its own size, the picture is whole again. PDQ moves far more than its threshold for 3 degrees, so it is undone before hashing (on
both sides, like the other derived hashes): the triangles give the angle to about 0.2 degrees,
the picture is turned back and its lost corners are filled with the colour around them. Nothing is guessed when there are no triangles: a picture whose own
ground has the fill's colour (a drawing on white, turned with a white fill) is left alone.

Pure numpy and OpenCV over a uint8 H x W x 3 RGB array, like regions.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from hashdb.hashing.regions import TOLERANCE, reduced

RGB = npt.NDArray[np.uint8]

# Angles tried, in degrees either way. Below half a degree the wedges are a pixel or two wide
# and PDQ already matches; beyond 8 degrees re-uploads are rare and the lost corners grow large.
MIN_DEGREES = 0.5
MAX_DEGREES = 8.0
STEP_DEGREES = 0.1
# Detection runs on a copy of at most this side: the wedges are tens of pixels there.
WORK_SIDE = 256
# The observed fill must cover the wedges of the angle it names this well (intersection over
# union, corner by corner, inside the zone where any wedge could be; two corners at least), and
# the zone must hold picture outside them.
MIN_IOU = 0.85
MIN_PICTURE_SHARE = 0.25
# On a grown canvas each corner of the turned picture touches a side: a line this many pixels in
# (of the WORK_SIDE copy) crosses at least MIN_CROSSING pixels of picture, about 3 / tan(8
# degrees) = 21 at the widest turn tried and more at smaller ones.
EDGE_INSET = 3
MIN_CROSSING = 6
# Where the fill begins, in pixels beyond the picture's edge (a source pixel turned back lands
# that far outside it). A tool that blends the edge (OpenCV, ImageMagick) leaves picture up to
# a pixel out; one that does not (Pillow's rotate, even bilinear) fills from half a pixel out.
# On a 60-pixel icon turned 5 degrees the half-pixel band between the two is a third of each
# wedge: scored against the blended edge alone, Pillow's wedges fit at 0.66 (under MIN_IOU), or
# a wrong angle fits better. Each angle is scored with both and keeps the better.
EDGES = (1.0, 0.5)


def _wedges(height: int, width: int, degrees: float) -> npt.NDArray[np.bool_]:
    """Where turning a height x width frame by `degrees` (counter-clockwise, about its centre,
    canvas kept) leaves no picture."""
    turn = cv2.getRotationMatrix2D(((width - 1) / 2, (height - 1) / 2), degrees, 1.0)
    ones = np.full((height, width), 255, np.uint8)
    covered = cv2.warpAffine(ones, turn, (width, height), flags=cv2.INTER_NEAREST,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return np.asarray(covered == 0)


@dataclass(frozen=True, slots=True)
class Turn:
    """How a picture was turned: `degrees` counter-clockwise; `expanded` when the canvas grew
    to hold all of it (then nothing was cut off)."""

    degrees: float
    expanded: bool = False


def source_size(height: float, width: float, degrees: float) -> tuple[float, float]:
    """The (height, width) of a picture that, turned by `degrees` on a canvas grown to hold it,
    fills a height x width canvas: W = w cos + h sin and H = w sin + h cos, solved for w, h."""
    c, s = abs(np.cos(np.radians(degrees))), abs(np.sin(np.radians(degrees)))
    d = c * c - s * s  # cos 2t: far from 0 for the angles tried here
    return (height * c - width * s) / d, (width * c - height * s) / d


def rotation(rgb: RGB, small: RGB | None = None) -> Turn | None:
    """How the picture was turned inside its frame (canvas kept or grown), or None when its
    corners hold no uniform wedges of one such turn. `small`: reduced(rgb, WORK_SIDE), when
    the caller has it (masked.py reads the same copy)."""
    small = reduced(rgb, WORK_SIDE, small)
    height, width = small.shape[:2]
    if min(height, width) < 32:
        return None
    corners = small[[0, 0, -1, -1], [0, -1, 0, -1]].astype(np.int16)
    fill = corners[0]
    if int(np.abs(corners - fill).max()) > TOLERANCE:
        return None  # the four corners are not one colour: no fill
    # A kept canvas first, exactly as before grown canvases were known (stored derived hashes
    # stay what they were); each shape of wedges is scored in its own zone, since a grown
    # canvas's reaches further in, where dark picture would lower a kept canvas's score.
    return _best_turn(small, fill, expanded=False) or _best_turn(small, fill, expanded=True)


def _best_turn(small: RGB, fill: npt.NDArray[np.int16], expanded: bool) -> Turn | None:
    """The best-scoring turn of one canvas kind, if it passes."""
    height, width = small.shape[:2]
    # Only pixels where some candidate's wedge could lie are looked at (the wedges of a larger
    # turn hold them all): a few per cent of the image, so every angle is cheap to score.
    if expanded:
        if not _crosses_every_edge(small, fill):
            return None
        # A grown canvas's wedges are larger: bounded by the largest turn tried, not three more.
        widest = MAX_DEGREES + 0.5
        zone = _grown_wedges(height, width, widest) | _grown_wedges(height, width, -widest)
    else:
        widest = MAX_DEGREES + 3
        zone = _wedges(height, width, widest) | _wedges(height, width, -widest)
    ys, xs = np.nonzero(zone)
    corner = (ys >= height / 2).astype(np.int8) * 2 + (xs >= width / 2).astype(np.int8)
    # The zone's pixels corner by corner, so that each corner's counts are sums of one slice.
    order = np.argsort(corner, kind="stable")
    ys, xs = ys[order], xs[order]
    starts = np.searchsorted(corner[order], np.arange(4))
    seen = np.abs(small[ys, xs].astype(np.int16) - fill).max(axis=1) <= TOLERANCE
    seen_counts = np.add.reduceat(seen, starts, dtype=np.intp)

    def fit(expected: npt.NDArray[np.bool_]) -> float:
        # Each corner on its own, and the second best of the four: dark picture next to one
        # corner spoils that corner, not the angle.
        both = np.add.reduceat(expected & seen, starts, dtype=np.intp)
        either = np.add.reduceat(expected, starts, dtype=np.intp) + seen_counts - both
        return float(np.sort(both / np.maximum(either, 1))[-2])

    def score(turn: Turn) -> float:
        # The better of the two edges a turning tool leaves (see EDGES).
        beyond = _beyond(ys, xs, height, width, turn)
        return max(fit(beyond > edge) for edge in EDGES)

    coarse = [Turn(sign * d, expanded) for d in np.arange(MIN_DEGREES, MAX_DEGREES + 1e-9, 0.5) for sign in (1, -1)]
    best = max(coarse, key=score)
    fine = [Turn(best.degrees + d, expanded) for d in np.arange(-0.5, 0.51, STEP_DEGREES)
            if MIN_DEGREES <= abs(best.degrees + d) <= MAX_DEGREES]
    best = max(fine, key=score)
    if score(best) < MIN_IOU:
        return None
    # The rest of the zone must be picture, not more fill: a ground of the fill's colour would
    # fit every angle's wedges and name none.
    beyond = _beyond(ys, xs, height, width, best)
    outside = ~(beyond > max(EDGES, key=lambda edge: fit(beyond > edge)))
    if int((outside & ~seen).sum()) < MIN_PICTURE_SHARE * int(outside.sum()):
        return None
    return Turn(round(float(best.degrees), 2), expanded)


def _crosses_every_edge(small: RGB, fill: npt.NDArray[np.int16]) -> bool:
    """Whether the picture reaches close to all four sides, as a picture turned on a grown
    canvas does (each of its corners touches one side): a line EDGE_INSET pixels in from each
    side holds some picture. A frame or border all round holds none, and is not scored."""
    lines = (small[EDGE_INSET], small[-1 - EDGE_INSET], small[:, EDGE_INSET], small[:, -1 - EDGE_INSET])
    return all(int((np.abs(line.astype(np.int16) - fill).max(axis=1) > TOLERANCE).sum()) >= MIN_CROSSING
               for line in lines)


def _grown_wedges(height: int, width: int, degrees: float) -> npt.NDArray[np.bool_]:
    """Where a picture turned by `degrees` on a grown height x width canvas is not (a polygon,
    taken two pixels smaller so that the zone it bounds holds every pixel _in_wedge names)."""
    h, w = source_size(height, width, degrees)
    t = np.radians(degrees)
    back = np.array([[np.cos(t), np.sin(t)], [-np.sin(t), np.cos(t)]])  # the inverse of _in_wedge's turn
    corners = np.array([[2, 2], [w - 3, 2], [w - 3, h - 3], [2, h - 3]]) - [(w - 1) / 2, (h - 1) / 2]
    points = corners @ back.T + [(width - 1) / 2, (height - 1) / 2]
    inside = np.zeros((height, width), np.uint8)
    cv2.fillConvexPoly(inside, np.round(points).astype(np.int32), 1)
    return np.asarray(inside == 0)


def _in_wedge(ys: npt.NDArray[np.intp], xs: npt.NDArray[np.intp], height: int, width: int,
              turn: Turn, edge: float = EDGES[0]) -> npt.NDArray[np.bool_]:
    """Whether each pixel is left without picture by the turn (OpenCV's rotation about the
    centre, as _wedges; on a grown canvas, of the picture source_size gives): its source,
    turned back, falls more than `edge` pixels outside the picture."""
    return np.asarray(_beyond(ys, xs, height, width, turn) > edge)


def _beyond(ys: npt.NDArray[np.intp], xs: npt.NDArray[np.intp], height: int, width: int,
            turn: Turn) -> npt.NDArray[np.float64]:
    """How far outside the picture each pixel's source lies, in pixels (negative inside):
    _in_wedge's measure, for the edges of EDGES."""
    t = np.radians(turn.degrees)
    h, w = source_size(height, width, turn.degrees) if turn.expanded else (height, width)
    dx, dy = xs - (width - 1) / 2, ys - (height - 1) / 2
    # The source's offset from the picture's centre; outside by how far the larger of its two
    # distances from the centre lines exceeds the half side.
    sx = np.abs(dx * np.cos(t) - dy * np.sin(t)) - (w - 1) / 2
    sy = np.abs(dx * np.sin(t) + dy * np.cos(t)) - (h - 1) / 2
    return np.asarray(np.maximum(sx, sy))


def unturned(rgb: RGB, turn: Turn) -> RGB:
    """The picture upright: on a grown canvas, turned back and cut to its own size (whole);
    on a kept one, deskewed()."""
    if not turn.expanded:
        return deskewed(rgb, turn.degrees)
    height, width = rgb.shape[:2]
    centre = ((width - 1) / 2, (height - 1) / 2)
    turned = cv2.warpAffine(rgb, cv2.getRotationMatrix2D(centre, -turn.degrees, 1.0), (width, height),
                            flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    h, w = source_size(height, width, turn.degrees)
    # Half a pixel in from each side: the picture's own edge is blended with the fill.
    top, left = int(np.ceil((height - h) / 2 + 0.5)), int(np.ceil((width - w) / 2 + 0.5))
    bottom, right = int(np.floor((height + h) / 2 - 0.5)), int(np.floor((width + w) / 2 - 0.5))
    return np.asarray(turned[top:bottom, left:right], dtype=np.uint8)


def deskewed(rgb: RGB, degrees: float) -> RGB:
    """The picture turned back upright by `degrees` (rotation()'s, canvas kept), its lost corners
    filled with the colour along its edges."""
    height, width = rgb.shape[:2]
    centre = ((width - 1) / 2, (height - 1) / 2)
    turned = np.asarray(cv2.warpAffine(rgb, cv2.getRotationMatrix2D(centre, -degrees, 1.0), (width, height),
                                       flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                                       borderValue=(0, 0, 0)), dtype=np.uint8)
    # The corners the turn cut off are gone; the colour of the picture's own edge (away from the
    # wedges) is the best stand-in, and keeps the fill's colour out of the hash.
    lost = _wedges(height, width, -degrees) | _turned_fill(rgb, degrees)
    ring = np.concatenate([turned[height // 2, :3], turned[height // 2, -3:],
                           turned[:3, width // 2], turned[-3:, width // 2]])
    turned[lost] = np.median(ring, axis=0).astype(np.uint8)
    return turned


def _turned_fill(rgb: RGB, degrees: float) -> npt.NDArray[np.bool_]:
    """The query's own wedges, where they land once turned back (they become the lost corners)."""
    height, width = rgb.shape[:2]
    wedges = _wedges(height, width, degrees).astype(np.uint8) * 255
    centre = ((width - 1) / 2, (height - 1) / 2)
    back = cv2.warpAffine(wedges, cv2.getRotationMatrix2D(centre, -degrees, 1.0), (width, height),
                          flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=255)
    return np.asarray(back > 0)

