"""64-bit imagehash signals (pHash, dHash): one small class each, imagehash inside."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import imagehash

from hashdb.hashing.base import ImageSignal
from hashdb.types import HashValue

if TYPE_CHECKING:
    from PIL import Image


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


class DHashSignal(_ImageHashSignal):
    name = "dhash"
    examples: ClassVar[tuple[str, ...]] = ("0e2b3b1b19131b1f",)

    def _hash(self, image: Image.Image) -> imagehash.ImageHash:
        return imagehash.dhash(image)
