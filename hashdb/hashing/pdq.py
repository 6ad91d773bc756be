"""PDQ signal: 256-bit hash with quality, bit-exact with Meta's reference, and its 8 dihedral variants.

This module turns images into arrays and results into HashValues; the arithmetic lives in
the compiled kernel (hashing/kernel.py) when the install built it, else in pdq_core (numpy and
OpenCV, no PIL): the same hashes either way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np
import numpy.typing as npt

from hashdb.errors import InvalidInput
from hashdb.hashing import kernel, pdq_core, pdq_dihedral
from hashdb.hashing.base import ImageSignal
from hashdb.types import HashValue

if TYPE_CHECKING:
    from PIL import Image

# python-threatexchange's names, in its order; pdq_dihedral.DIHEDRAL says which Pillow
# transpose each one is (pytx's flipx is FLIP_TOP_BOTTOM, flipplus1 TRANSPOSE, ...).
DIHEDRAL_NAMES = tuple(name for name, *_ in pdq_dihedral.DIHEDRAL)


def bits_to_hex(bits: np.ndarray) -> str:
    """256 0/1 values, first is the most significant bit of the first hex digit (pytx order)."""
    return np.packbits(bits.astype(np.uint8)).tobytes().hex()


def _rgb_array(image: Image.Image) -> npt.NDArray[np.uint8]:
    # Pillow's RGB conversion ignores alpha, as python-threatexchange's hashes do.
    return np.asarray(image if image.mode == "RGB" else image.convert("RGB"))


def _checked(rgb: object) -> npt.NDArray[np.uint8]:
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        got = f"{rgb.dtype} array of shape {rgb.shape}" if isinstance(rgb, np.ndarray) else type(rgb).__name__
        raise InvalidInput(f"PDQ needs a uint8 RGB array of shape (height, width, 3), got {got}")
    return rgb


class PdqSignal(ImageSignal):
    name = "pdq"
    bits = 256
    default_threshold = 31
    examples: ClassVar[tuple[str, ...]] = (
        "accb6d39648035f8125c8ce6ba65007de7b54c67a2d93ef7b8f33b0611306715",
    )

    def compute(self, image: Image.Image) -> HashValue:
        return self.compute_array(_rgb_array(image))

    def compute_array(self, rgb: npt.NDArray[np.uint8]) -> HashValue:
        """PDQ of a uint8 H x W x 3 RGB array (a decoded image or a video frame).

        Images with a side under 5 pixels get the all-zero hash with quality 0, as in the reference.
        """
        rgb = _checked(rgb)
        fast = kernel.pdq(rgb, dihedral=False) if min(rgb.shape[:2]) >= pdq_core.MIN_HASHABLE_DIM else None
        hex_value, quality = fast[0] if fast else pdq_core.pdq_hex(rgb)
        return HashValue(self.name, hex_value, quality)

    def compute_region(self, luma: kernel.Luma, left: int, top: int, right: int, bottom: int) -> HashValue:
        """compute_array(luma.rgb[top:bottom, left:right]), from the image's luma made once
        (kernel.Luma): the same hash, for the many regions of one image."""
        fast = luma.pdq(left, top, right, bottom)
        if fast is None:
            return self.compute_array(luma.rgb[top:bottom, left:right])
        return HashValue(self.name, *fast)

    def compute_regions(self, luma: kernel.Luma, boxes: list[tuple[int, int, int, int]]) -> list[HashValue]:
        """[compute_region(luma, *box) for box in boxes], the regions filtered in one kernel call."""
        return [HashValue(self.name, *fast) if fast is not None else self.compute_region(luma, *box)
                for box, fast in zip(boxes, luma.pdqs(boxes), strict=True)]

    def compute_rgb(self, image: Image.Image, rgb: npt.NDArray[np.uint8]) -> HashValue:
        return self.compute_array(rgb)

    def dihedral(self, image: Image.Image) -> tuple[HashValue, ...]:
        """PDQ of the image after each of Pillow's 8 transposes, in DIHEDRAL_NAMES order.

        Equal to compute(image.transpose(op)) for each op (what other members compute for a
        rotated or mirrored copy; a DCT-domain shortcut is faster but gives other hashes), about
        twice as fast: no image is transposed, and the luma and the first filter passes are
        shared between variants (see pdq_dihedral.pdq_dihedral_hex).
        """
        return self.dihedral_array(_rgb_array(image))

    def dihedral_array(self, rgb: npt.NDArray[np.uint8]) -> tuple[HashValue, ...]:
        """dihedral() of a uint8 H x W x 3 RGB array; the first is compute_array(rgb)."""
        rgb = _checked(rgb)
        fast = kernel.pdq(rgb, dihedral=True) if min(rgb.shape[:2]) >= pdq_core.MIN_HASHABLE_DIM else None
        variants = fast or pdq_dihedral.pdq_dihedral_hex(rgb)
        return tuple(HashValue(self.name, hex_value, quality) for hex_value, quality in variants)

    def dihedral_one_filter_array(self, rgb: npt.NDArray[np.uint8]) -> tuple[HashValue, ...]:
        """The 8 variants as lookups query them, in DIHEDRAL_NAMES order, for about the cost of
        one PDQ: all read from one filter of the upright image (pdq_dihedral.pdq_one_filter_hex).

        The first is compute_array(rgb); the others are within a few bits of dihedral_array's
        (rounding, and the cells next to the borders), not equal to them: for lookups only,
        never stored, exported or printed.
        """
        rgb = _checked(rgb)
        hashable = min(rgb.shape[:2]) >= pdq_core.MIN_HASHABLE_DIM
        fast = kernel.pdq(rgb, dihedral=True, one_filter=True) if hashable else None
        variants = fast or pdq_dihedral.pdq_one_filter_hex(rgb)
        return tuple(HashValue(self.name, hex_value, quality) for hex_value, quality in variants)
