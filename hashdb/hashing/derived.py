"""Derived hashes: PDQs of an image's content region, or of it turned upright, computed the same
way on both sides.

A re-upload adds borders, caption bands or an app's chrome around the picture; a PDQ of the
whole frame then misses it. Both the stored and the queried image get the PDQ of what the
region detectors (regions.py) leave inside; any of a query's PDQs matching any of a record's
PDQs is a match, reported with the `via` of the derived side. The canonical PDQ of the whole
file never changes (it is what partners and python-threatexchange compute).

A lookup adds regions the stored side does not (see derived_pdqs): the detectors run again
inside each region found, and the frame is cut below a caption above it or above one below.
A drawing on a white ground shown in an app keeps some of that ground around it inside the
app's frame; the stored image's own border trim took all of it away, so the query must do the
same to what the frame held. The stored side's regions are of the picture alone; the query's
detectors first see the picture with what was added to it, so they must be run again on what
they found to land where the stored side did.

A lookup also hashes windows of itself (crops.window_pdqs, WINDOW): an off-centre crop of a
stored picture holds one of its stored centred crops (crops.crop_pdqs) somewhere inside, and
a window compares only with those.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image

from hashdb.errors import HashDBError, InvalidInput
from hashdb.hashing import centred, colour, deskew, kernel, media, regions
from hashdb.hashing.pdq import PdqSignal
from hashdb.types import DerivedHash, HashValue

# Names a lookup answer's `via` may carry.
TRIMMED = "trimmed"   # inside uniform borders and letterbox/pillarbox bars
CONTENT = "content"   # inside borders, caption bands and UI chrome too
DESKEWED = "deskewed"  # turned back upright: a small rotation that left uniform corner wedges
CROPPED = "cropped"  # a centred crop of a stored image (stored only; see crops.py)
MASKED = "masked"  # the image with one corner covered: a logo's or a watermark's place (masked.py)
WINDOW = "window"  # a window of a lookup, for an off-centre crop (queried only; see crops.py)
ENLARGED = "enlarged"  # a small image enlarged, read through a wider filter (enlarged.py)
VIAS = (TRIMMED, CONTENT, DESKEWED, CROPPED, MASKED, WINDOW, ENLARGED)

# Least brightness structure (0..255 scale) a region needs to be hashed; see detailed().
MIN_SPREAD = 6.0
# A region this close to the whole image is the whole image: its hash adds nothing.
MIN_CHANGE = 0.02
# A content box whose picture split into blocks of comparable size (the next-longest block
# of busy rows, or of busy columns, at least this share of the kept one's length: two
# pictograms side by side, a glyph above another, a flag's canton beside its field) is one
# part of a composite picture, and which part the detectors kept is arbitrary. A caption's
# text lines and an app's bars are short blocks beside a picture, well under it. Measured in
# the evaluation (BENCHMARKS.md, "Matching quality"): 0.3 to 0.4 take out the same false
# positives at no recall cost, 0.5 one fewer.
# A lookup's part is marked `part` (DerivedHash), and service/matching.py lets it match only
# what could be such a part on the stored side too. A stored image keeps no part: stored,
# parts let different pictures that share one match each other (two smiley faces by their
# top-left quadrant at 0 bits, a flag by another's canton). Measured on the full evaluation:
# false positives 9 -> 6 of 5,000, wrong matches 3 -> 1, mean recall 0.854 -> 0.849; keeping
# stored parts of 30 % of the picture or more instead, 7, 2 and 0.851.
PART_SPLIT = 0.4
# Derived PDQs are computed on a copy of at most this side: they are compared only with
# derived PDQs computed the same way, never offered as the file's PDQ, and this keeps each
# one to about a millisecond whatever the upload's size.
WORK_SIDE = 512
# A lookup also hashes its content box (the layout's, the stored side's kind of region)
# reduced to these longest sides, when it is at least half as large again. A picture shown
# larger than it was stored (a 60-pixel icon or a 256-pixel emoji blown up to 400 in an app or
# a browser page) is smoothed by the enlarging and then by JPEG; the PDQ of the stored small
# image reads its sharp pixels, and the two land 32 to 40 bits apart. Reduced back towards a
# small size the region loses that smoothing. Measured on the full evaluation (BENCHMARKS.md,
# "Matching quality"): screenshots 0.744 -> 0.794, borders, bars and captions a query or two
# each, no false positive or wrong match added; 64 and 192 together found more than any one
# side, and reducing every content region a lookup finds (up to 8) 0.812, for up to 16 more
# hashes a query instead of 2.
REDUCED_SIDES = (64, 192)
REDUCED_FROM = 1.5
# A lookup's first row span (regions.row_spans: the content box's rows across the frame) is
# reduced to these sides, 96 and 128 besides the content box's: most pictures a screenshot
# splits at their own uniform lines are small drawings on white shown blown up, whose trim
# lands nearer the stored one at one of them. Measured on 1,600 screenshot queries of 400
# known images (the evaluation's edit and corpus, every strength): recall 0.778 without row
# spans, 0.834 with them reduced to REDUCED_SIDES, 0.853 with these (BENCHMARKS.md, "Matching
# quality").
SPAN_SIDES = (64, 96, 128, 192)


def derived_pdqs(image: Image.Image | npt.NDArray[np.uint8], min_quality: int, lookup: bool = False,
                 detail: Detail | None = None, small: npt.NDArray[np.uint8] | None = None,
                 luma: kernel.Luma | None = None) -> tuple[DerivedHash, ...]:
    """The PDQs of an image's distinct content regions, each of quality >= min_quality.

    Low-detail remnants (a logo left after trimming, a flat strip) fall under the quality cut
    and are not returned: shared, they would match unrelated uploads.

    With `lookup`, a query's regions only, as CONTENT: each region less the uniform margin
    inside it (regions.trimmed_inside), and the detectors' bands run again inside each region;
    the trimmed region less a band above, below or both (regions.band_cuts). Stored too, the
    first added no recall in the evaluation and two false positives; queried, screenshots went
    0.55 -> 0.68 and captions 0.76/0.83 -> 0.78/0.85; the other two took captions to
    0.88/0.94 and screenshots to 0.74 with no false positive added (BENCHMARKS.md, "Matching
    quality"). And with `lookup`, a turned copy also gets the PDQ of the largest centred crop
    (centred.fitting_box) its deskewed picture still fills, DESKEWED with that crop's share:
    it is compared only with stored crops of the same share (service/matching.py), so the
    corners the turn cut off are left out on both sides. And with `lookup`, the content box
    reduced to each of REDUCED_SIDES, as CONTENT of the box's share: a small picture shown
    blown up. And with `lookup`, the row spans (regions.row_spans), trimmed: a picture split by
    its own uniform lines, whole again.

    `detail`, `small` and `luma`: the work copy's Detail, its reduced(..., deskew.WORK_SIDE)
    copy and its kernel.Luma, when the caller has them (crops.crop_pdqs and masked.masked_pdqs
    read the same).
    """
    rgb = work_copy(image)
    height, width = rgb.shape[:2]
    pdq = PdqSignal()
    seen: dict[regions.Box, set[int]] = {}  # each box hashed, with the sides it was reduced to
    out: list[DerivedHash] = []
    detail = Detail.of(rgb, detail)
    luma = luma_of(rgb, luma)

    def add(via: str, box: regions.Box, split: float = 0.0, reduce: tuple[int, ...] = ()) -> None:
        # `reduce`: also the box's copies reduced to these sides (a lookup's content box and
        # first row span); a box found again gets only the sides it was not reduced to yet.
        if min(box.width, box.height) < 16:
            return
        first = box not in seen
        done = seen.setdefault(box, set())
        sides = [side for side in reduce if side not in done and max(box.width, box.height) >= REDUCED_FROM * side]
        done.update(sides)
        if not (first or sides) or not detail(box.left, box.top, box.right, box.bottom):
            return
        pixels = box.crop(rgb)  # hashed where it lies (kernel.pdq), not copied
        share = share_of(box.width * box.height, width * height)
        colours = detail.colours(box.left, box.top, box.right, box.bottom)
        part = lookup and split >= PART_SPLIT
        values = [*([pdq.compute_region(luma, box.left, box.top, box.right, box.bottom)] if first else []),
                  *(pdq.compute_array(reduced_copy(pixels, side)) for side in sides)]
        for value in values:
            if usable(value, min_quality):
                out.append(DerivedHash(via, value, share, colours, part=part))

    def whole(box: regions.Box) -> bool:
        return box.is_full(rgb) or box.width * box.height > (1 - MIN_CHANGE) * width * height

    # TRIMMED is uniform_border's box, CONTENT bands'; layout finds both in one pass.
    found = regions.layout(rgb)
    boxes = (found.trimmed, found.content)
    for via, box, split in zip((TRIMMED, CONTENT), boxes, (0.0, found.split), strict=True):
        # A stored content region that is one part of a composite is not shared: which part
        # the detectors kept is arbitrary, and the part is not the picture (see PART_SPLIT).
        if not whole(box) and (lookup or split < PART_SPLIT):
            add(via, box, split, reduce=REDUCED_SIDES if lookup and via == CONTENT else ())
    if lookup:
        trims: dict[regions.Box, regions.Box] = {}  # trimmed_inside of each box met (spans repeat cuts)

        def trimmed(box: regions.Box) -> regions.Box:
            if box not in trims:
                trims[box] = regions.trimmed_inside(rgb, box)
            return trims[box]

        for box in dict.fromkeys(boxes):
            # The bands of what the trimmed region holds are found.content, added above, unless
            # trimming inside it took more away (a layout is most of the detectors' time). A
            # layout of the content box starts with the same uniform border trimmed_inside
            # finds (layout(crop).trimmed is uniform_border(crop)): read from it, not found twice.
            sub = None
            if box != found.trimmed and min(box.width, box.height) >= 8:
                sub = regions.layout(np.ascontiguousarray(box.crop(rgb)))
                trims[box] = regions.Box(box.left + sub.trimmed.left, box.top + sub.trimmed.top,
                                         box.left + sub.trimmed.right, box.top + sub.trimmed.bottom)
            inner = trimmed(box)
            if not whole(inner):
                add(CONTENT, inner)
            if sub is None and inner != box and min(box.width, box.height) >= 8:
                sub = regions.layout(np.ascontiguousarray(box.crop(rgb)))
            if sub is not None:
                inner = regions.Box(box.left + sub.content.left, box.top + sub.content.top,
                                    box.left + sub.content.right, box.top + sub.content.bottom)
                if not whole(inner):
                    add(CONTENT, inner, sub.split)
        for cut in regions.band_cuts(found):
            inner = trimmed(cut)
            if not whole(inner):
                add(CONTENT, inner)
        # A picture its own uniform lines split (see regions.row_spans): the content box's rows
        # across the frame, also reduced (see SPAN_SIDES), and joined with a neighbouring block.
        # Measured on the full evaluation (BENCHMARKS.md, "Matching quality"): screenshots
        # 0.781 -> 0.850, borders, bars and captions 1 to 5 queries of 160 more, no family
        # lower; false positives 3 -> 4 of 5,000 (one drawing at two sizes on its page, a pair
        # the pool's definition missed), wrong matches unchanged (1); 1.15x to 1.19x main's lookup time.
        for n, (span, split) in enumerate(regions.row_spans(found)):
            inner = trimmed(span)
            if not whole(inner):
                add(CONTENT, inner, split, reduce=SPAN_SIDES if n == 0 else ())
    turn = deskew.rotation(rgb, small)
    if turn is not None:
        upright = np.ascontiguousarray(deskew.unturned(rgb, turn))
        if detailed(upright):
            value = pdq.compute_array(upright)
            if usable(value, min_quality):
                out.append(DerivedHash(DESKEWED, value, colours=colour.layout(upright)))
        # A grown canvas lost nothing: its upright picture is whole, and needs no fitting crop.
        fits: tuple[int, int, int, int] | None = (centred.fitting_box(width, height, turn.degrees)
                                                  if lookup and not turn.expanded else None)
        if fits is not None and detail(*fits):
            x0, y0, x1, y1 = fits
            value = pdq.compute_array(upright[y0:y1, x0:x1])
            if usable(value, min_quality):
                out.append(DerivedHash(DESKEWED, value, share_of((x1 - x0) * (y1 - y0), width * height),
                                       colour.layout(upright[y0:y1, x0:x1])))
    return tuple(out)


def luma_of(rgb: npt.NDArray[np.uint8], made: kernel.Luma | None) -> kernel.Luma:
    """`made` if it is rgb's own (a caller's, shared between kinds of derived hash), else rgb's."""
    return made if made is not None and made.rgb is rgb else kernel.Luma(rgb)


def reduced_copy(pixels: npt.NDArray[np.uint8], side: int) -> npt.NDArray[np.uint8]:
    """`pixels` area-averaged to a longest side of `side` (a lookup's REDUCED_SIDES copies)."""
    height, width = pixels.shape[:2]
    scale = side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.ascontiguousarray(cv2.resize(pixels, size, interpolation=cv2.INTER_AREA))


def work_copy(image: Image.Image | npt.NDArray[np.uint8],
              pixels: npt.NDArray[np.uint8] | None = None) -> npt.NDArray[np.uint8]:
    """The image with its longest side at most WORK_SIDE, as an RGB array (what derived_pdqs
    and crops.crop_pdqs hash; either takes it as given, already that small). `pixels`:
    np.asarray(image) of an RGB image, when the caller has it (hash_media does, for its
    PDQ): read instead of copying the image out of Pillow again, unless it is to be reduced.

    Pillow's reduce() first averages k x k blocks (k the whole times the image exceeds
    WORK_SIDE), then a bilinear resize covers the rest, a factor between 1/2 and 1 where
    bilinear still reads every pixel: about area averaging (OpenCV's INTER_AREA, used
    before), at a quarter of its cost (BENCHMARKS.md, "Image hashing end to end").
    """
    if isinstance(image, np.ndarray):
        if max(image.shape[:2]) <= WORK_SIDE:
            return image
        image = Image.fromarray(image)
    elif image.mode != "RGB":
        image = image.convert("RGB")
    width, height = image.size
    scale = WORK_SIDE / max(width, height)
    if pixels is not None and pixels.shape != (height, width, 3):
        pixels = None
    if scale >= 1:
        return media.rgb_pixels(image) if pixels is None else pixels
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    factor = max(width, height) // WORK_SIDE
    if factor > 1:
        blocks = media.rgb_pixels(image.reduce(factor))  # np.asarray's array, without its tobytes() join
    else:
        blocks = media.rgb_pixels(image) if pixels is None else pixels
    if blocks.shape[1::-1] == size:
        return blocks
    return np.asarray(cv2.resize(blocks, size, interpolation=cv2.INTER_LINEAR), dtype=np.uint8)


_LUMA = np.array([0.299, 0.587, 0.114])
_THUMB = 32
# How far the residual spread of detailed()'s rounded thumbnail can be from that of the exact
# area averages: INTER_AREA rounds each channel to within 0.5 (its float sums are good to
# ~1e-3), so luma moves by at most 0.5 a pixel, and the spread (the RMS of a projection of
# the pixels) by at most the RMS of that move.
_ROUNDING = 0.51


def _spread(luma: npt.NDArray[np.float64]) -> float:
    residual = luma - luma.mean(axis=0, keepdims=True) - luma.mean(axis=1, keepdims=True) + luma.mean()
    return float(residual.std())


def detailed(rgb: npt.NDArray[np.uint8]) -> bool:
    """Enough picture left to be worth a hash. PDQ's quality is no guard here: it reads 100 for
    flat grey with one faint line, and for a strip of a striped flag, and such remnants of
    unrelated images then match each other. What is measured is the brightness left over a
    32 x 32 thumbnail once each row's and each column's mean is taken out: stripes, bars and
    gradients leave ~0, a remnant with one faint line 1 to 3, drawings and photos 10 and more."""
    thumb = cv2.resize(rgb, (_THUMB, _THUMB), interpolation=cv2.INTER_AREA)
    return _spread(thumb @ _LUMA) >= MIN_SPREAD


class Detail:
    """detailed() of many regions of one image, each for a few microseconds: their thumbnails'
    exact area averages from one summed-area table of the image (INTER_AREA shrinking is area
    averaging, then rounded). Where that spread is within _ROUNDING of MIN_SPREAD, the
    region's own detailed() decides, so the answer is detailed()'s always."""

    def __init__(self, rgb: npt.NDArray[np.uint8]) -> None:
        self.rgb = rgb
        self._sums: npt.NDArray[np.generic] | None = None

    @property
    def sums(self) -> npt.NDArray[np.generic]:
        """Per channel, (H + 1) x (W + 1) x 3, exact: int32 while every sum fits (a work copy's
        always does; half the memory and time of float64), else float64 (below 2**53). Made at
        the first region asked about: a lookup of a picture without borders asks about none
        (0.3 ms an image saved)."""
        if self._sums is None:
            depth = cv2.CV_32S if self.rgb.shape[0] * self.rgb.shape[1] * 255 < 2**31 else cv2.CV_64F
            table: npt.NDArray[np.generic] = cv2.integral(np.ascontiguousarray(self.rgb), sdepth=depth)
            self._sums = table
        return self._sums

    @classmethod
    def of(cls, rgb: npt.NDArray[np.uint8], made: Detail | None) -> Detail:
        """`made` if it is rgb's own (a caller's, shared between kinds of derived hash), else a new one."""
        return made if made is not None and made.rgb is rgb else cls(rgb)

    def _integral(self, ys: npt.NDArray[np.floating], xs: npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
        # The integral of each channel from the origin, bilinear inside each pixel: exact there.
        # The four corners of each cell are gathered alone (not whole rows of the table, then
        # columns of those), each by one take() of the table's pixels at linear indices: a
        # quarter of the time of indexing by rows and columns (34 -> 8 us a corner, 33 x 33
        # cells), the same values; the sums are exact in float64 either way.
        sums = self.sums
        rows, cols = sums.shape[:2]
        y0 = np.minimum(ys.astype(np.int64), rows - 2)
        x0 = np.minimum(xs.astype(np.int64), cols - 2)
        fy, fx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
        pixels = sums.reshape(-1, sums.shape[2])
        at = y0[:, None] * cols + x0[None, :]
        shape = (len(y0), len(x0), sums.shape[2])

        def corner(offset: int) -> npt.NDArray[np.generic]:
            values: npt.NDArray[np.generic] = pixels.take((at + offset).ravel(), axis=0).reshape(shape)
            return values

        left = corner(0) * (1 - fy) + corner(cols) * fy
        right = corner(1) * (1 - fy) + corner(cols + 1) * fy
        out: npt.NDArray[np.float64] = left * (1 - fx) + right * fx
        return out

    def colours(self, left: int, top: int, right: int, bottom: int) -> str:
        """colour.layout() of the region, from the same summed-area table."""
        return colour.layout_from_sums(self.sums, left, top, right, bottom)

    def _spread(self, left: int, top: int, right: int, bottom: int) -> float:
        width, height = right - left, bottom - top
        ys = top + np.arange(_THUMB + 1) * (height / _THUMB)
        xs = left + np.arange(_THUMB + 1) * (width / _THUMB)
        cumulative = self._integral(ys, xs)
        cells = cumulative[1:, 1:] - cumulative[:-1, 1:] - cumulative[1:, :-1] + cumulative[:-1, :-1]
        return _spread((cells @ _LUMA) / ((width / _THUMB) * (height / _THUMB)))

    def __call__(self, left: int, top: int, right: int, bottom: int) -> bool:
        return self.many([(left, top, right, bottom)])[0]

    def many(self, boxes: list[tuple[int, int, int, int]]) -> list[bool]:
        """[self(*box) for box in boxes]: the spreads of those at least _THUMB a side in one
        call of the compiled kernel when the install built it (the same formula, added in
        another order: ~1e-13 apart, against the _ROUNDING margin), else each in numpy."""
        sized = [box for box in boxes if min(box[2] - box[0], box[3] - box[1]) >= _THUMB]
        made = kernel.spreads(self.sums, np.array(sized, dtype=np.int64).reshape(-1, 4)) if sized else None
        spreads = dict(zip(sized, made if made is not None else [self._spread(*box) for box in sized]))
        out = []
        for left, top, right, bottom in boxes:
            spread = spreads.get((left, top, right, bottom))  # shrinking on both axes: area averages
            if spread is not None and abs(spread - MIN_SPREAD) > _ROUNDING:
                out.append(bool(spread >= MIN_SPREAD))
            else:
                out.append(detailed(np.ascontiguousarray(self.rgb[top:bottom, left:right])))
        return out


def detailed_middle(rgb: npt.NDArray[np.uint8], detail: Detail | None = None) -> bool:
    """detailed() of the middle half of each side (through `detail`, the image's Detail, when
    the caller has one for other regions too). Crops and corner-masked copies all hold the
    middle; with no detail there, what detail they have is a frame's edges (flat grey inside a
    black border), which would match any such frame."""
    height, width = rgb.shape[:2]
    box = (width // 4, height // 4, width - width // 4, height - height // 4)
    if detail is None:
        return detailed(np.ascontiguousarray(rgb[box[1]:box[3], box[0]:box[2]]))
    return detail(*box)


def usable(value: HashValue, min_quality: int) -> bool:
    # Same rule as a submitted PDQ (policy.submission_problem): quality, and not degenerate.
    ones = int(value.hex, 16).bit_count()
    return (value.quality or 0) >= min_quality and 32 <= ones <= 224


# Derived hashes in every JSON shape (hash --json, API items, export feed): a list of
# {"via": ..., "pdq": hex, "quality": n, "share": x, "colours": colour.py's layout}. A stored
# image has at most 12: two regions, a deskewed copy, four centred crops, four corner-masked
# copies and an enlarged copy. A lookup (sent
# by `hashdb lookup --server`) has at most 44: thirteen regions (trimmed, content, each trimmed
# inside and laid out again, three band cuts, four row spans), the content box's two reduced
# copies and the first row span's four, a deskewed copy and its fitting crop, four
# corner-masked copies, 18 windows (crops.WINDOW_COUNT) and an enlarged copy. Servers before
# windows take 17 (partners/client.py sends those the first ones they take, and windows and
# enlarged copies only to a server that says it takes them).
MAX_DERIVED = 44


def share_of(part: int, whole: int) -> float:
    """A region's share of the image's area, as stored and sent (4 decimals)."""
    return round(part / whole, 4) if whole else 0.0


def derived_json(derived: tuple[DerivedHash, ...]) -> list[dict[str, object]]:
    return [{"via": d.via, "pdq": d.hash.hex, "quality": d.hash.quality,
             **({} if d.share is None else {"share": d.share}),
             **({} if d.colours is None else {"colours": d.colours})} for d in derived]


# What a feed entry (an export, a mirror's page) may carry: a newer hashdb may derive more
# kinds of hash, and more of them, than this one.
MAX_FEED_DERIVED = 64
_FIELDS = {"via", "pdq", "quality", "share", "colours"}


def derived_from_json(raw: object, where: str = "derived", feed: bool = False) -> tuple[DerivedHash, ...]:
    """The inverse of derived_json, strictly: a list of objects with a known via and a PDQ.

    With `feed`, what another hashdb exported: a derived hash of a kind this version does not
    know (a via, or fields, added after it) is left out, not the record it belongs to. This
    version matches only the vias it knows, and a mirror that refused every record carrying a
    newer kind would lose those records' whole-image hashes too. A known kind is checked as
    strictly as ever."""
    from hashdb.hashing.registry import parse_hash

    if raw is None:
        return ()
    most = MAX_FEED_DERIVED if feed else MAX_DERIVED
    if not isinstance(raw, list) or len(raw) > most:
        raise InvalidInput(f"{where} must be an array of at most {most} objects")
    out = []
    for n, entry in enumerate(raw):
        here = f"{where}[{n}]"
        if feed and isinstance(entry, dict) and isinstance(entry.get("via"), str) and (
                entry["via"] not in VIAS or not set(entry) <= _FIELDS):
            continue
        if not isinstance(entry, dict) or not set(entry) <= _FIELDS:
            raise InvalidInput(f"{here} must be an object with via, pdq, quality, share and colours")
        if entry.get("via") not in VIAS:
            raise InvalidInput(f"{here}.via must be one of {', '.join(VIAS)}")
        quality = entry.get("quality")
        if quality is not None and (isinstance(quality, bool) or not isinstance(quality, int)):
            raise InvalidInput(f"{here}.quality must be an integer from 0 to 100")
        share = entry.get("share")
        if share is not None and (isinstance(share, bool) or not isinstance(share, (int, float))
                                  or not 0 < share <= 1):
            raise InvalidInput(f"{here}.share must be a number above 0 and at most 1")
        colours = entry.get("colours")
        if colours is not None and not (isinstance(colours, str) and colour.LAYOUT.fullmatch(colours)):
            raise InvalidInput(f"{here}.colours must be {colour.GRID ** 2} colours of six lowercase hex digits "
                               "(rrggbb)")
        try:
            value = parse_hash("pdq", entry.get("pdq"), quality)
        except HashDBError as exc:  # the same error, told where it is
            raise type(exc)(f"{here}.pdq: {exc}") from None
        out.append(DerivedHash(str(entry["via"]), value, None if share is None else float(share), colours))
    return tuple(out)
