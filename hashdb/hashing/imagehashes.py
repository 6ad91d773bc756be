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

    def prepare(self) -> None:
        # imagehash imports SciPy's FFT inside phash; about 0.2-0.4 s of CPU.
        import scipy.fftpack  # noqa: F401

    def compute_rgb(self, image: Image.Image, rgb: npt.NDArray[np.uint8]) -> HashValue:
        # The thumbnail is most of phash's time; the kernel makes the same bytes from the
        # array, and the rest is imagehash.phash's own steps.
        thumbnail = kernel.grey_thumbnail(rgb, _PHASH_THUMBNAIL)
        if thumbnail is None:
            return self.compute(image)
        import scipy.fftpack

        dct = scipy.fftpack.dct(scipy.fftpack.dct(thumbnail, axis=0), axis=1)
        low = dct[:_PHASH_SIZE, :_PHASH_SIZE]
        return HashValue(self.name, str(imagehash.ImageHash(low > np.median(low))))


class DHashSignal(_ImageHashSignal):
    name = "dhash"
    examples: ClassVar[tuple[str, ...]] = ("0e2b3b1b19131b1f",)

    def _hash(self, image: Image.Image) -> imagehash.ImageHash:
        return imagehash.dhash(image)
