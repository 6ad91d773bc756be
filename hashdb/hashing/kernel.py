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
