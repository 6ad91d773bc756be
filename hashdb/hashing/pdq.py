"""PDQ signal: 256-bit hash with quality, reference-compatible, plus the 8 dihedral variants.

PLACEHOLDER: computes through pdqhash until the numpy port lands (see issue 2).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np

from hashdb.hashing.base import ImageSignal
from hashdb.types import HashValue

if TYPE_CHECKING:
    from PIL import Image

# Pillow transpose ops in the order python-threatexchange names the dihedral variants:
# original, rotate90, rotate180, rotate270, flipx, flipy, flipplus1, flipminus1.
DIHEDRAL_NAMES = (
    "original", "rotate90", "rotate180", "rotate270", "flipx", "flipy", "flipplus1", "flipminus1",
)


def bits_to_hex(bits: np.ndarray) -> str:
    """256 0/1 values, first is the most significant bit of the first hex digit (pytx order)."""
    return np.packbits(bits.astype(np.uint8)).tobytes().hex()


class PdqSignal(ImageSignal):
    name = "pdq"
    bits = 256
    default_threshold = 31
    examples: ClassVar[tuple[str, ...]] = (
        "accb6d39648035f8125c8ce6ba65007de7b54c67a2d93ef7b8f33b0611306715",
    )

    def compute(self, image: Image.Image) -> HashValue:
        import pdqhash

        bits, quality = pdqhash.compute(np.asarray(image.convert("RGB")))
        return HashValue(self.name, bits_to_hex(bits), int(quality))

    def dihedral(self, image: Image.Image) -> tuple[HashValue, ...]:
        from PIL import Image as PILImage

        ops = (
            None,
            PILImage.Transpose.ROTATE_90,
            PILImage.Transpose.ROTATE_180,
            PILImage.Transpose.ROTATE_270,
            PILImage.Transpose.FLIP_TOP_BOTTOM,
            PILImage.Transpose.FLIP_LEFT_RIGHT,
            PILImage.Transpose.TRANSPOSE,
            PILImage.Transpose.TRANSVERSE,
        )
        return tuple(self.compute(image if op is None else image.transpose(op)) for op in ops)
