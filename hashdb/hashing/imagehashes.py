"""64-bit imagehash signals (pHash, dHash): one small class each, imagehash inside."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import imagehash
import numpy as np
import numpy.typing as npt

from hashdb.hashing import kernel
from hashdb.hashing.base import ImageSignal
from hashdb.types import HashValue

if TYPE_CHECKING:
    from PIL import Image

# imagehash.phash's defaults: an 8x8 hash from the DCT of a 32x32 thumbnail.
_PHASH_SIZE, _PHASH_THUMBNAIL = 8, 32
# The rows of SciPy's unnormalised DCT-II (scipy.fftpack.dct) that the hash keeps:
# y[k] = 2 sum_n x[n] cos(pi k (2n + 1) / 2N), for k < 8 of N = 32.
_DCT_ROWS = 2.0 * np.cos(np.pi * np.arange(_PHASH_SIZE)[:, None] * (2 * np.arange(_PHASH_THUMBNAIL) + 1)
                         / (2 * _PHASH_THUMBNAIL))
# Both ways of computing the 64 coefficients (these products, SciPy's FFT) are within ~1e-8
# of the exact values (sums of 1,024 terms below 2**16 each, in float64); a coefficient
# farther than this from the median is on the same side of it either way.
_TIE_MARGIN = 1e-4


def _phash_bits(thumbnail: npt.NDArray[np.uint8]) -> npt.NDArray[np.bool_]:
    """imagehash.phash's bits of its 32x32 grey thumbnail: low 8x8 DCT coefficients > their median.

    The 8x8 low frequencies as two small matrix products instead of SciPy's two full 32-point
    DCTs: the same bits without importing SciPy's FFT (a quarter of a second of CPU at every
    start of `hashdb`). Where a coefficient ties with the median to within the rounding of
    either way (flat or symmetric thumbnails) the bits come from SciPy's DCT itself, as
    imagehash computes them.
    """
    pixels = thumbnail.astype(np.float64)
    low = _DCT_ROWS @ pixels @ _DCT_ROWS.T
    median = np.median(low)
    if np.min(np.abs(low - median)) > _TIE_MARGIN:
        return low > median
    import scipy.fftpack

    dct = scipy.fftpack.dct(scipy.fftpack.dct(thumbnail, axis=0), axis=1)
    low = dct[:_PHASH_SIZE, :_PHASH_SIZE]
    bits: npt.NDArray[np.bool_] = low > np.median(low)
    return bits


class _ImageHashSignal(ImageSignal):
    bits = 64
    # Tuned on the fixture variants; see BENCHMARKS.md before changing.
    default_threshold = 10

    def _hash(self, image: Image.Image) -> imagehash.ImageHash:
        raise NotImplementedError

    def compute(self, image: Image.Image) -> HashValue:
        return HashValue(self.name, str(self._hash(image)))


class PHashSignal(_ImageHashSignal):
    name = "phash"
    examples: ClassVar[tuple[str, ...]] = ("d1c4b3e0c69b3e4c",)

    def _hash(self, image: Image.Image) -> imagehash.ImageHash:
        return imagehash.phash(image)

    def compute_rgb(self, image: Image.Image, rgb: npt.NDArray[np.uint8]) -> HashValue:
        # The thumbnail is most of phash's time; the kernel makes the same bytes from the
        # array, and the rest is imagehash.phash's own steps (_phash_bits). Without the
        # kernel, imagehash.phash itself (which imports SciPy's FFT).
        thumbnail = kernel.grey_thumbnail(rgb, _PHASH_THUMBNAIL)
        if thumbnail is None:
            return self.compute(image)
        return HashValue(self.name, str(imagehash.ImageHash(_phash_bits(thumbnail))))


class DHashSignal(_ImageHashSignal):
    name = "dhash"
    examples: ClassVar[tuple[str, ...]] = ("0e2b3b1b19131b1f",)

    def _hash(self, image: Image.Image) -> imagehash.ImageHash:
        return imagehash.dhash(image)
