"""Detectors for what edits add around a picture: uniform borders and bars, caption bands, UI chrome.

Numpy (and the compiled kernel's line medians) over a uint8 H x W x 3 RGB array; each returns the content box left inside. The
same detector runs on the stored and the queried side, so where it stops inside a picture
(a flat sky, a clip-art drawing's white ground) it stops in the same place on both.

Inside, pixels are held as three int16 planes (channel, line, position along the line), not
H x W x 3: numpy then works along whole lines, where per-pixel operations on 3-long channel
axes were most of the detectors' time (BENCHMARKS.md, "Image hashing end to end").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from hashdb.hashing import kernel

RGB = npt.NDArray[np.uint8]
# int16 planes, 3 x lines x positions (see the module's docstring).
Planes = npt.NDArray[np.int16]

# Per-channel difference still counted as the band's colour: JPEG at quality 50 moves flat
# areas next to an edge by up to about 20 levels.
TOLERANCE = 24
# A border line is the border's colour nearly everywhere (room for JPEG ringing and noise).
BORDER_SHARE = 0.97
# Never peel more than this share of a side from one edge, nor leave less than this much.
MAX_EDGE_SHARE = 0.7
# Detection runs on a copy reduced to this longest side, then each side is refined on the
# full image: a 37-pixel bar is found as 37 pixels at any size.
DETECT_SIDE = 512
# Letterbox and pillarbox bars are black, or close to it after a lossy re-encode.
DARK = 40
_CHUNK = 16
MIN_KEPT_SHARE = 0.1
# A band cut off above or below the picture (band_cuts) holds at most this share of the height.
BAND_SHARE = 0.5
# A line's colour is the median of at most this many of its pixels, evenly spaced: a band's
# median is its colour whichever of its pixels are read, and the median of every pixel of
# every line was the largest cost of hashing an image (BENCHMARKS.md, "Image hashing end to
# end"). On the fixtures and vectors the boxes found are the same either way.
COLOUR_SAMPLES = 128


def reduced(rgb: RGB, side: int, made: RGB | None = None) -> RGB:
    """`rgb` with its longest side at most `side` (area-averaged), or `rgb` itself if smaller:
    the working copy the detectors and derived hashes run on, whatever the upload's size.
    `made`: this copy, when the caller made it already (used if its shape is right)."""
    height, width = rgb.shape[:2]
    scale = side / max(height, width)
    if scale >= 1:
        return rgb
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if made is not None and made.shape == (size[1], size[0], *rgb.shape[2:]):
        return made
    return np.asarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)


@dataclass(frozen=True, slots=True)
class Box:
    """A region: left, top inclusive; right, bottom exclusive, in pixels."""

    left: int
    top: int
    right: int
    bottom: int

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    def crop(self, rgb: RGB) -> RGB:
        return rgb[self.top:self.bottom, self.left:self.right]

    def is_full(self, rgb: RGB) -> bool:
        return (self.left, self.top, self.right, self.bottom) == (0, 0, rgb.shape[1], rgb.shape[0])


def planes(rgb: RGB) -> Planes:
    """The int16 planes of an H x W x 3 array: lines are its rows (`.transpose(0, 2, 1)` of
    the result makes them its columns). By the compiled kernel when the install built it: numpy
    gathers a value at a time across the channel axis (1.8 ms of a lookup's detectors)."""
    made = kernel.planes(rgb)
    if made is not None:
        return made
    return np.ascontiguousarray(rgb.transpose(2, 0, 1), dtype=np.int16)


def _sort_kind() -> str:
    """Which dtype and kind _median sorts as on this core: "int16" (numpy's quicksort of 16-bit
    integers, vectorised by x86-simd-sort where the core has AVX512_ICL), "int32" (its
    quicksort of 32-bit integers, vectorised with AVX2 from numpy 2.0 on), else "uint8" (its
    radix sort of one byte); "uint8" when numpy does not say."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:
        return "uint8"
    if __cpu_features__.get("AVX512_ICL"):
        return "int16"
    return "int32" if __cpu_features__.get("AVX2") else "uint8"


# Which sort _median runs; a sort's result does not depend on its kind, only its speed does.
# For 3 x 512 rows of 64 (the detectors' lines), numpy's default quicksort of int16 takes
# 0.08 ms where its vectorised path exists and 2.0 ms where it does not (an AMD core with
# AVX2 only); there int32 is vectorised (0.15 ms, the widening copy included), against 0.63
# for the radix sort ("stable") of the values as uint8, the fastest where neither vectorises.
# BENCHMARKS.md, "Image hashing end to end".
_SORT = _sort_kind()


def _median(samples: Planes) -> Planes:
    """np.median(samples, axis=-1).astype(np.int16) of values 0..255: by the compiled kernel's
    histograms when the install built it, else by one sort (the mean of the two middle
    values, truncated, is their sum halved: about 3x faster than np.median)."""
    counted = kernel.row_medians(samples)
    if counted is not None:
        return counted
    n = samples.shape[-1]
    # Sorted in place in a C-ordered copy: numpy sorts rows that are not contiguous (every
    # k-th pixel, a column of the planes) through a buffer each, twice as slow.
    if _SORT == "int16":
        ordered = samples.copy(order="C")
        ordered.sort(axis=-1)
    elif _SORT == "int32":
        ordered = samples.astype(np.int32, order="C")
        ordered.sort(axis=-1)
    else:
        ordered = samples.astype(np.uint8, order="C")  # exact: the planes hold 0..255
        ordered.sort(axis=-1, kind="stable")
    if n % 2:
        odd: Planes = ordered[..., n // 2].astype(np.int16, copy=False)
        return odd
    even: Planes = (ordered[..., n // 2 - 1].astype(np.int16) + ordered[..., n // 2].astype(np.int16, copy=False)) >> 1
    return even


def _near(lines: Planes, colours: Planes) -> npt.NDArray[np.bool_]:
    """Which pixels are within TOLERANCE of their line's colour in every channel.
    lines: 3 x n x m planes; colours: 3 x n (one per line) or 3 (one for all)."""
    near: npt.NDArray[np.bool_] | None = None
    for channel, colour in zip(lines, colours, strict=True):
        ok = np.abs(channel - (colour[:, None] if np.ndim(colour) else colour)) <= TOLERANCE
        near = ok if near is None else np.logical_and(near, ok, out=near)
    assert near is not None
    return near


def _near_counts(lines: Planes, colours: Planes) -> npt.NDArray[np.intp]:
    """np.count_nonzero(_near(lines, colours), axis=1): by the compiled kernel in one pass when
    the install built it (no boolean planes: the detectors' time an image 2.3 -> 1.6 ms,
    BENCHMARKS.md, "Image hashing end to end"), else by numpy; the same counts."""
    counted = kernel.near_counts(lines, colours, TOLERANCE)
    if counted is not None:
        return counted
    counts: npt.NDArray[np.intp] = np.count_nonzero(_near(lines, colours), axis=1)
    return counts


def _shares(lines: Planes, colour: Planes) -> npt.NDArray[np.float64]:
    counts: npt.NDArray[np.float64] = _near_counts(lines, colour) / max(1, lines.shape[2])
    return counts


def _colour(line: Planes) -> Planes:
    """The colour of one line (3 x m): each channel's median over evenly spaced pixels."""
    step = max(1, line.shape[1] // COLOUR_SAMPLES)
    return _median(line[:, ::step])


def _edge_lines(lines: Planes, share: float, limit: int) -> int:
    """How many leading lines (ordered from the edge inwards) belong to edge bands.

    A band is a run of lines mostly of one colour (the median colour of its first line); one
    band may follow another (a white margin inside black bars, bars of two colours).
    """
    limit = min(limit, lines.shape[1])
    n = 0
    while n < limit:
        colour = _colour(lines[:, n])
        end = _band_end(lines, n, limit, colour, share)
        if end == n:
            break
        n = end
    return n


def _band_end(lines: Planes, start: int, limit: int, colour: Planes, share: float) -> int:
    """The first line from `start` that ends the band of `colour`; shares are computed a few
    lines at a time, since most bands (and most non-bands) end within a few lines, and twice
    as many each time a chunk was all band: a drawing's wide white ground took tens of calls
    of 16 lines, most of a clip art's detector time. Each line's share is its own, so the
    chunks change only how many are computed."""
    n = start
    size = _CHUNK
    while n < limit:
        chunk = _shares(lines[:, n:min(limit, n + size)], colour)
        weak = np.flatnonzero(chunk < share)
        if not weak.size:
            n += len(chunk)
            size *= 2
            continue
        return n + int(weak[0])
    return limit


def _refine(pixels: Planes, at: int, share: float, reach: int) -> int:
    """Continue a peel at full resolution: the lines after `at` still of line at-1's colour."""
    if at <= 0 or at >= pixels.shape[1]:
        return at
    colour = _colour(pixels[:, at - 1])
    shares = _shares(pixels[:, at:at + reach], colour)
    failing = np.flatnonzero(shares < share)
    return at + (int(failing[0]) if failing.size else len(shares))


def _peel(rgb: RGB, share: float, rounds: int = 2, whole: Planes | None = None) -> Box:
    """`whole`: planes(rgb), when the caller has them already."""
    height, width = rgb.shape[:2]
    # Every k-th pixel, not an average: a view, no resampling cost, and flat colours stay exact.
    step = max(1, math.ceil(max(height, width) / DETECT_SIDE))
    pixels = whole if step == 1 and whole is not None else planes(rgb[::step, ::step])
    sh, sw = pixels.shape[1:]
    box = Box(0, 0, sw, sh)
    for _ in range(rounds):
        inner = pixels[:, box.top:box.bottom, box.left:box.right]
        h, w = inner.shape[1:]
        if h < 8 or w < 8:
            break
        top = _edge_lines(inner, share, int(h * MAX_EDGE_SHARE))
        bottom = _edge_lines(inner[:, ::-1], share, int(h * MAX_EDGE_SHARE))
        # Each side may take up to MAX_EDGE_SHARE, so on a nearly flat picture (a small
        # detail on one colour) the two peels cross: there is no inner picture to trim to.
        if top + bottom >= h:
            return Box(0, 0, width, height)
        columns = inner[:, top:h - bottom].transpose(0, 2, 1)
        left = _edge_lines(columns, share, int(w * MAX_EDGE_SHARE))
        right = _edge_lines(columns[:, ::-1], share, int(w * MAX_EDGE_SHARE))
        if left + right >= w:
            return Box(0, 0, width, height)
        new = Box(box.left + left, box.top + top, box.right - right, box.bottom - bottom)
        if new == box:
            break
        box = new
    if step > 1:
        box = _full_resolution(rgb, box, step, share)
    if box.width < MIN_KEPT_SHARE * width or box.height < MIN_KEPT_SHARE * height:
        return Box(0, 0, width, height)
    return box


def _full_resolution(rgb: RGB, box: Box, step: int, share: float) -> Box:
    """Map a box found on every step-th pixel back, each moved side refined on all pixels
    (the band may go on for up to step - 1 lines between two sampled ones)."""
    height, width = rgb.shape[:2]
    reach = step + 1
    left, top = (box.left - 1) * step + 1 if box.left else 0, (box.top - 1) * step + 1 if box.top else 0
    # The first sampled line known to be band on the right and at the bottom.
    right = min(width, box.right * step) if box.right < -(-width // step) else width
    bottom = min(height, box.bottom * step) if box.bottom < -(-height // step) else height
    offset = max(0, top - 1)
    if top > 0:
        top = _refine(planes(rgb[offset:top + reach + 1]), top - offset, share, reach) + offset
    if bottom < height:
        tail = planes(rgb[max(0, bottom - reach - 1):][::-1])
        bottom = height - _refine(tail, height - bottom, share, reach)
    rows = rgb[top:bottom].transpose(1, 0, 2)
    if left > 0:
        left = _refine(planes(rows[:left + reach + 1]), left, share, reach)
    if right < width:
        tail = planes(rows[max(0, right - reach - 1):][::-1])
        right = width - _refine(tail, width - right, share, reach)
    return Box(left, top, right, bottom)


def uniform_border(rgb: RGB) -> Box:
    """The box inside uniform borders and letterbox/pillarbox bars (any colour, each side its own)."""
    return _peel(rgb, BORDER_SHARE)


def trimmed_inside(rgb: RGB, box: Box) -> Box:
    """`box` less the uniform border of what it holds (uniform_border of the crop), in `rgb`'s
    coordinates; `box` itself when nothing inside it trims."""
    if min(box.width, box.height) < 8:
        return box
    inner = uniform_border(np.ascontiguousarray(box.crop(rgb)))
    return Box(box.left + inner.left, box.top + inner.top, box.left + inner.right, box.top + inner.bottom)


def bars(rgb: RGB) -> Box:
    """The box inside letterbox or pillarbox bars: dark, uniform, of about equal width on
    opposite sides (what a re-encode to another aspect ratio adds). Unlike uniform_border it
    leaves a dark sky or a dark-suited speaker alone: video frames are trimmed only by this."""
    box = uniform_border(rgb)
    height, width = rgb.shape[:2]
    top, bottom = box.top, height - box.bottom
    left, right = box.left, width - box.right
    keep_rows = _paired(top, bottom, height) and _dark(rgb[0]) and _dark(rgb[-1])
    keep_cols = _paired(left, right, width) and _dark(rgb[:, 0]) and _dark(rgb[:, -1])
    return Box(left if keep_cols else 0, top if keep_rows else 0,
               box.right if keep_cols else width, box.bottom if keep_rows else height)


def _paired(a: int, b: int, side: int) -> bool:
    return a > 0 and b > 0 and abs(a - b) <= max(2, 0.02 * side)


def _dark(line: RGB) -> bool:
    return bool(np.median(line.astype(np.int16), axis=0).max() <= DARK)


def bands(rgb: RGB) -> Box:
    """The box of the picture inside borders, caption bands and UI chrome.

    Inside the uniform border, the rows split into blocks at uniform lines (a band's padding,
    the margin between a status bar and an app bar, white space under a picture); the tallest
    block is the picture, and the same split of its columns drops side panels and margins.
    Text and icons in a band make a short block of their own, so they never need to be told
    from the picture by colour: a caption on white above a drawing on white is still apart.
    """
    return layout(rgb).content


@dataclass(frozen=True, slots=True)
class Layout:
    """What the detectors find in one pass: `trimmed` (uniform_border), `content` (bands), and
    the runs of non-uniform rows inside `trimmed` ([start, end) in the image's rows), from
    which band_cuts works. `split` is how close `content` came to being another block: the
    length of the next-longest block of busy rows (or of busy columns within the kept rows)
    over the kept one's, 0 when there was one block (see derived.PART_SPLIT)."""

    trimmed: Box
    content: Box
    rows: tuple[tuple[int, int], ...]
    split: float = 0.0


def content_boxes(rgb: RGB) -> tuple[Box, Box]:
    """(uniform_border(rgb), bands(rgb)) in one pass: bands starts from the uniform border,
    and both read the same planes."""
    found = layout(rgb)
    return found.trimmed, found.content


def layout(rgb: RGB) -> Layout:
    height, width = rgb.shape[:2]
    whole = planes(rgb) if max(height, width) <= DETECT_SIDE else None
    outer = _peel(rgb, BORDER_SHARE, whole=whole)
    if whole is not None:
        inner = whole[:, outer.top:outer.bottom, outer.left:outer.right]
    else:
        inner = planes(outer.crop(rgb))
    if min(inner.shape[1:]) < 8:
        return Layout(outer, outer, ())
    blocks = _blocks(inner)
    rows = _longest(blocks)
    column_blocks = _blocks(inner[:, rows[0]:rows[1]].transpose(0, 2, 1)) if rows else []
    columns = _longest(column_blocks) if rows else None
    runs = tuple((outer.top + start, outer.top + end) for start, end in blocks)
    if rows is None or columns is None:
        return Layout(outer, outer, runs)  # no line of it is busy: no picture to tell from its surroundings
    (top, bottom), (left, right) = rows, columns
    box = Box(outer.left + left, outer.top + top, outer.left + right, outer.top + bottom)
    if box.width < MIN_KEPT_SHARE * width or box.height < MIN_KEPT_SHARE * height:
        return Layout(outer, outer, runs)
    return Layout(outer, box, runs, max(_runner_up(blocks), _runner_up(column_blocks)))


def band_cuts(found: Layout) -> list[Box]:
    """`found.trimmed` less a band above, a band below, and both: each cut at the widest
    run of uniform rows within BAND_SHARE of that side.

    bands() keeps only the tallest block of busy rows, so a picture with uniform rows of its
    own (a frame of small drawings, a dialog box, a drawing on white) loses all but one
    strip of itself, and then nothing of it matches; and a caption of several lines is
    several blocks, so dropping the first block is not enough. The widest gap is where a
    caption's padding meets the picture's own margin."""
    outer, runs = found.trimmed, found.rows
    gaps = [(runs[n][1], runs[n + 1][0]) for n in range(len(runs) - 1)]
    limit = BAND_SHARE * outer.height
    above = [gap for gap in gaps if gap[1] - outer.top <= limit]
    below = [gap for gap in gaps if outer.bottom - gap[0] <= limit]
    top = max(above, key=lambda gap: gap[1] - gap[0])[1] if above else None
    bottom = max(below, key=lambda gap: gap[1] - gap[0])[0] if below else None
    cuts = []
    if top is not None:
        cuts.append(Box(outer.left, top, outer.right, runs[-1][1]))
    if bottom is not None:
        cuts.append(Box(outer.left, runs[0][0], outer.right, bottom))
    if top is not None and bottom is not None and bottom > top:
        cuts.append(Box(outer.left, top, outer.right, bottom))
    return cuts


def row_spans(found: Layout) -> list[tuple[Box, float]]:
    """Boxes across `found.trimmed`'s width over the longest block of busy rows (the content
    box's rows) alone, joined with the block above it, with the block below, and with both;
    each with its split: the longest block of rows left outside the box over the box's height
    (0 when none is left), as Layout.split.

    A picture's own uniform lines split it too. Uniform columns (a card's plain margin between
    its index and its pips, a flag's plain stripe) make the content box one column block of the
    picture: the box over its rows keeps all of them. A uniform row (a drawing on white whose
    flag hangs on a thin pole, an icon's gap between its parts) makes the picture two blocks of
    rows, and the longest is kept: joined with a neighbour, the box is the whole picture. In an
    app, what lies next to the picture is chrome (an app bar, a line of text), so which
    neighbour belongs to the picture is not known, and all three joins are offered."""
    outer, runs = found.trimmed, found.rows
    if not runs:
        return []
    kept = max(range(len(runs)), key=lambda n: runs[n][1] - runs[n][0])  # the first of equals, as _longest
    spans = []
    for first, last in ((kept, kept), (kept - 1, kept), (kept, kept + 1), (kept - 1, kept + 1)):
        if first < 0 or last >= len(runs):
            continue
        top, bottom = runs[first][0], runs[last][1]
        outside = [end - start for n, (start, end) in enumerate(runs) if not first <= n <= last]
        spans.append((Box(outer.left, top, outer.right, bottom), max(outside, default=0) / (bottom - top)))
    return spans


def _blocks(lines: Planes) -> list[tuple[int, int]]:
    """[start, end) of each run of non-uniform lines."""
    n, m = lines.shape[1:]
    step = max(1, m // COLOUR_SAMPLES)
    colours = _median(lines[:, :, ::step])
    return runs(_near_counts(lines, colours) < BORDER_SHARE * m)


def runs(busy: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """[start, end) of each run of True in a line-by-line flag."""
    edges = np.diff(np.concatenate(([0], busy.astype(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return [(int(start), int(end)) for start, end in zip(starts, ends)]


def _runner_up(blocks: list[tuple[int, int]]) -> float:
    """The second-longest run's length over the longest's (0 with fewer than two)."""
    if len(blocks) < 2:
        return 0.0
    first, second = sorted((end - start for start, end in blocks), reverse=True)[:2]
    return second / first


def _longest(blocks: list[tuple[int, int]]) -> tuple[int, int] | None:
    """The longest of the runs (the first of equals); None when there is none."""
    return max(blocks, key=lambda block: block[1] - block[0]) if blocks else None
