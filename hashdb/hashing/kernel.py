"""The compiled kernel (_pdq_kernel.c), when the install could build it, behind typed calls.

Three jobs, each equal to the byte to what it replaces (the tests hold each to its oracle):
PDQ of an RGB array and its 8 dihedral variants (pdqhash, and pdq_core's numpy port),
pHash's 32x32 grey thumbnail (Pillow's convert("L") then a Lanczos resize, as imagehash
makes it), and the region detectors' line medians (np.median). Without the kernel (no C compiler at install time) every caller falls back to
the numpy and Pillow code, which gives the same hashes, slower.

The kernel keeps its last PDQ work arrays for the next call (up to 48 MiB a process, the
arrays of a 2,000 x 2,000 image): fresh ones cost a page fault per 4 KiB on every call.
"""

from __future__ import annotations

from types import ModuleType

import numpy as np
import numpy.typing as npt
import PIL

from hashdb.hashing import pdq_core


def _load() -> ModuleType | None:
    try:
        from hashdb.hashing import _pdq_kernel  # type: ignore[attr-defined]
    except ImportError:
        return None
    module: ModuleType = _pdq_kernel
    return module


KERNEL = _load()
# Whether pdq_float takes a crop's rows where they lie; a kernel built before it could (an
# editable checkout's .so left from an older commit) gets contiguous copies, as it used to.
_STRIDED = bool(getattr(KERNEL, "STRIDED_RGB", 0))
# Likewise a build from before row_medians: the detectors sort in numpy, as they used to.
_MEDIANS = getattr(KERNEL, "row_medians", None)
# And from before luma_plane and pdq_luma: each region's PDQ makes its own luma (Luma below).
_LUMA = getattr(KERNEL, "luma_plane", None)
_PDQ_LUMA = getattr(KERNEL, "pdq_luma", None)
# And from before near_counts: the detectors count in numpy.
_NEAR = getattr(KERNEL, "near_counts", None)
# And from before pdq_luma_boxes and region_checks: a region at a time, and Detail's checks
# and the colour layouts in numpy.
_PDQ_BOXES = getattr(KERNEL, "pdq_luma_boxes", None)
_CHECKS = getattr(KERNEL, "region_checks", None)
_COVERED = getattr(KERNEL, "covered_layouts", None)
# And from before planes: the detectors' int16 planes made by numpy.
_PLANES = getattr(KERNEL, "planes", None)
# Pillow 13 runs the vertical resize pass first when the height shrinks by more than twice
# what the width does; the kernel follows 13's rule, so older Pillows keep their own resize.
_PILLOW_RULE = int(PIL.__version__.split(".")[0]) >= 13


def available() -> bool:
    return KERNEL is not None


def pdq(rgb: npt.NDArray[np.uint8], dihedral: bool, one_filter: bool = False) -> tuple[tuple[str, int], ...] | None:
    """((hex, quality), ...) of the image, or of its 8 variants in pdq_dihedral.DIHEDRAL order:
    each turned image filtered (exact), or with one_filter all 8 read from the upright image's
    filter (pdq_dihedral.pdq_one_filter_hex, which this equals).

    None without the kernel. rgb: uint8, H x W x 3, both sides at least MIN_HASHABLE_DIM.
    """
    if KERNEL is None:
        return None
    # Rows may lie apart (a crop of a larger array, hashed in place); pixels must be packed.
    if not _STRIDED or rgb.strides[1:] != (3, 1) or rgb.strides[0] < 3 * rgb.shape[1]:
        rgb = np.ascontiguousarray(rgb)
    height, width = rgb.shape[:2]
    mode = (2 if one_filter else 1) if dihedral else 0
    floats, qualities = KERNEL.pdq_float(rgb, height, width, rgb.strides[0], 3, pdq_core._DCT, mode)
    dcts = np.frombuffer(floats, dtype=np.float32).reshape(-1, 16, 16)
    return tuple((pdq_core.dct_hex(dct), int(q)) for dct, q in zip(dcts, qualities))


class Luma:
    """PDQ's luma of one RGB image, made once for the PDQs of many of its regions (a work
    copy's derived regions, centred crops, corner-masked copies): each pdq(...) equals
    pdq(rgb[top:bottom, left:right], dihedral=False)[0], bit for bit (luma is per pixel, and
    the filter reads the same floats), without making the region's luma again. Without a
    kernel that has them, `plane` is None and pdq() returns None (the caller hashes `rgb`).

    `plane`: n x m float32, rows padded apart as the kernel pads its own (see luma_plane)."""

    def __init__(self, rgb: npt.NDArray[np.uint8]) -> None:
        self._rgb: npt.NDArray[np.uint8] | None = rgb
        self._cover: tuple[npt.NDArray[np.uint8], tuple[int, int, int, int], npt.NDArray[np.uint8]] | None = None
        self._padded: npt.NDArray[np.float32] | None = None
        self.plane: npt.NDArray[np.float32] | None = None
        if _LUMA is not None and _PDQ_LUMA is not None and rgb.ndim == 3 and rgb.shape[2] == 3 and min(rgb.shape[:2]):
            pixels = np.ascontiguousarray(rgb)
            height, width = pixels.shape[:2]
            data, stride = _LUMA(pixels, height, width, pixels.strides[0], 3)
            self._padded = np.frombuffer(data, dtype=np.float32).reshape(height, stride)
            self.plane = self._padded[:, :width]

    @property
    def rgb(self) -> npt.NDArray[np.uint8]:
        """The image's pixels (a filled() copy's made when first asked for)."""
        if self._rgb is None:
            assert self._cover is not None
            source, (left, top, right, bottom), colour = self._cover
            self._rgb = source.copy()
            self._rgb[top:bottom, left:right] = colour
        return self._rgb

    def filled(self, box: tuple[int, int, int, int], colour: npt.NDArray[np.uint8]) -> Luma:
        """The Luma of this image with `box` (left, top, right, bottom) of one `colour`, from a
        copy of this plane: the corner masks' four copies, without copying their pixels."""
        out = Luma.__new__(Luma)
        out._rgb, out._cover, out._padded, out.plane = None, (self.rgb, box, colour), None, None
        if self.plane is not None and self._padded is not None:
            left, top, right, bottom = box
            out._padded = self._padded.copy()
            out.plane = out._padded[:, :self.plane.shape[1]]
            out.plane[top:bottom, left:right] = Luma(np.asarray(colour, dtype=np.uint8).reshape(1, 1, 3)).plane
        return out

    def pdq(self, left: int, top: int, right: int, bottom: int) -> tuple[str, int] | None:
        """(hex, quality) of the region, as pdq() of its pixels gives them; None without the
        kernel, or for a side under MIN_HASHABLE_DIM (hashed to zero without a filter): the
        caller hashes the region's pixels then."""
        if self.plane is None or _PDQ_LUMA is None or min(bottom - top, right - left) < pdq_core.MIN_HASHABLE_DIM:
            return None
        region = self.plane[top:bottom, left:right]
        floats, quality = _PDQ_LUMA(region, region.shape[0], region.shape[1], region.strides[0] // 4, pdq_core._DCT)
        return pdq_core.dct_hex(np.frombuffer(floats, dtype=np.float32).reshape(16, 16)), int(quality)

    def pdqs(self, boxes: list[tuple[int, int, int, int]]) -> list[tuple[str, int] | None]:
        """[pdq(*box) for box in boxes], the regions filtered in one kernel call (a lookup's 18
        windows, a stored image's crops: the same floats, without a call and a hex conversion
        in Python a region)."""
        if _PDQ_BOXES is None or self._padded is None or self.plane is None:
            return [self.pdq(*box) for box in boxes]
        wanted = [n for n, (left, top, right, bottom) in enumerate(boxes)
                  if min(bottom - top, right - left) >= pdq_core.MIN_HASHABLE_DIM]
        out: list[tuple[str, int] | None] = [None] * len(boxes)
        if not wanted:
            return out
        height, width = self.plane.shape
        floats, qualities = _PDQ_BOXES(self._padded, height, width, self._padded.shape[1],
                                       np.array([boxes[n] for n in wanted], dtype=np.int64), pdq_core._DCT)
        for n, value, quality in zip(wanted, dct_hexes(np.frombuffer(floats, dtype=np.float32).reshape(-1, 256)),
                                     qualities, strict=True):
            out[n] = (value, int(quality))
        return out


def dct_hexes(dcts: npt.NDArray[np.float32]) -> list[str]:
    """[pdq_core.dct_hex(d) for d in dcts] of k x 256 DCTs, in a few numpy calls for all: each
    row's 128th smallest value by one partition, its bits by one packbits."""
    medians = np.partition(dcts, 127, axis=1)[:, 127:128]
    bits = np.packbits(dcts[:, ::-1] > medians, axis=1)
    return [row.tobytes().hex() for row in bits]


def spreads(sums: npt.NDArray[np.generic], boxes: npt.NDArray[np.int64]) -> npt.NDArray[np.float64] | None:
    """derived.Detail's spread of each box (k x 4, left, top, right, bottom, each side at least
    32) from the summed-area table `sums` ((H + 1) x (W + 1) x 3, int32 or float64), or None
    without the kernel. The same formula as Detail's numpy, summed in another order (the
    values differ by ~1e-13; Detail's margin, _ROUNDING, is 0.51)."""
    if _CHECKS is None:
        return None
    return np.frombuffer(_CHECKS(np.ascontiguousarray(sums), np.ascontiguousarray(boxes, dtype=np.int64), 0),
                         dtype=np.float64)


def layouts(sums: npt.NDArray[np.generic], boxes: npt.NDArray[np.int64]) -> list[bytes] | None:
    """colour.layout_from_sums' 27 bytes (3 x 3 cells' mean colours) of each box, or None
    without the kernel: exact integer sums and one IEEE divide a value, the same bytes."""
    if _CHECKS is None:
        return None
    data = _CHECKS(np.ascontiguousarray(sums), np.ascontiguousarray(boxes, dtype=np.int64), 1)
    return [data[27 * n:27 * n + 27] for n in range(len(data) // 27)]


def grey_thumbnail(pixels: npt.NDArray[np.uint8], side: int) -> npt.NDArray[np.uint8] | None:
    """Pillow's `image.convert("L").resize((side, side), LANCZOS)` of an RGB (H x W x 3) or grey
    (H x W) uint8 array, or None when the kernel (or a Pillow it matches) is missing."""
    if KERNEL is None or not _PILLOW_RULE:
        return None
    pixels = np.ascontiguousarray(pixels)
    height, width = pixels.shape[:2]
    pixel_bytes = 1 if pixels.ndim == 2 else pixels.shape[2]
    data = KERNEL.grey_thumbnail(pixels, height, width, pixels.strides[0], pixel_bytes, side, side)
    return np.frombuffer(data, dtype=np.uint8).reshape(side, side)


def row_medians(samples: npt.NDArray[np.int16]) -> npt.NDArray[np.int16] | None:
    """np.median(samples, axis=-1).astype(np.int16) of int16 values 0..255 (1 to 3 axes, any
    strides), or None without the kernel. A histogram of each row, no sort."""
    if _MEDIANS is None or samples.dtype != np.int16 or not 1 <= samples.ndim <= 3 or not samples.shape[-1]:
        return None
    out = np.empty(samples.shape[:-1], dtype=np.int16)
    _MEDIANS(samples, out)
    return out


def covered_layout(sums: npt.NDArray[np.generic], box: tuple[int, int, int, int],
                   fill: npt.NDArray[np.uint8]) -> bytes | None:
    """colour.covered_layout's 27 bytes: the layout of the image whose summed-area table is
    `sums` with `box` filled with `fill`, or None without the kernel. Exact, the same bytes."""
    if _COVERED is None:
        return None
    result: bytes = _COVERED(np.ascontiguousarray(sums), np.array([box], dtype=np.int64),
                             np.ascontiguousarray(fill, dtype=np.uint8))
    return result


def planes(rgb: npt.NDArray[np.uint8]) -> npt.NDArray[np.int16] | None:
    """np.ascontiguousarray(rgb.transpose(2, 0, 1), dtype=np.int16) of a uint8 H x W x 3 array
    (any strides), or None without the kernel."""
    if _PLANES is None or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        return None
    out = np.empty((3, rgb.shape[0], rgb.shape[1]), dtype=np.int16)
    _PLANES(rgb, out)
    return out


def near_counts(lines: npt.NDArray[np.int16], colours: npt.NDArray[np.int16],
                tolerance: int) -> npt.NDArray[np.intp] | None:
    """np.count_nonzero(within, axis=1) where `within` says which pixels of the int16 planes
    `lines` (3 x n x m, any strides) have every channel within `tolerance` of their line's
    colour (`colours`: 3 x n, or 3 for one colour of every line): regions._near, counted in one
    pass. None without the kernel."""
    if _NEAR is None or lines.dtype != np.int16 or lines.ndim != 3 or lines.shape[0] != 3:
        return None
    colours = np.asarray(colours, dtype=np.int16)
    if colours.shape == (3,):
        colours = np.broadcast_to(colours[:, None], (3, lines.shape[1]))
    if colours.shape != (3, lines.shape[1]):
        return None
    out = np.empty(lines.shape[1], dtype=np.intp)
    _NEAR(lines, colours, tolerance, out)
    return out
