"""The Signal base classes: strict parsing, distance, and (per kind) how a hash is computed."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

from hashdb.errors import InvalidHash
from hashdb.types import HashValue

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from PIL import Image

# Explicit ASCII set: str.isdigit() and int(x, 16) accept unicode digits and fullwidth
# letters, which must never reach the store as if they were hex.
_HEX_DIGITS = "0123456789abcdef"
_HEX = frozenset(_HEX_DIGITS)


class Signal(ABC):
    """A hash type: name, size, how to parse its hex, how far apart two values are."""

    name: ClassVar[str]
    bits: ClassVar[int]
    # Exact signals (md5, sha256) match on equality only; the rest by Hamming distance.
    exact: ClassVar[bool] = False
    default_threshold: ClassVar[int] = 0
    examples: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def hex_length(cls) -> int:
        return cls.bits // 4

    @classmethod
    def parse(cls, text: object, quality: int | None = None) -> HashValue:
        """Validate `text` as this signal's hex; uppercase is accepted and lowercased."""
        if not isinstance(text, str):
            raise InvalidHash(f"{cls.name} hash must be a string of hex digits, got {type(text).__name__}")
        want = cls.hex_length()
        if len(text) != want:
            hint = " (it has leading or trailing whitespace)" if text != text.strip() else ""
            raise InvalidHash(f"{cls.name} hash must be {want} hex characters, got {len(text)}{hint}")
        lowered = text.lower()
        # Scan the text as given, so the message names the character the caller sent; hex
        # text (nearly every call) is recognised first without a loop in Python.
        bad = None
        if not (lowered.isascii() and not lowered.strip(_HEX_DIGITS)):
            bad = next((ch for ch in text if ch.lower() not in _HEX), None)
        if bad is not None:
            raise InvalidHash(
                f"{cls.name} hash has a character that is not ASCII hex: {bad!r} (U+{ord(bad):04X})"
            )
        if quality is not None:
            if isinstance(quality, bool) or not isinstance(quality, int) or not 0 <= quality <= 100:
                raise InvalidHash(f"{cls.name} quality must be an integer from 0 to 100, got {quality!r}")
        return HashValue(cls.name, lowered, quality)

    @classmethod
    def distance(cls, a: str, b: str) -> int:
        """Hamming distance between two canonical hex values of this signal."""
        if cls.exact:
            return 0 if a == b else cls.bits
        return (int(a, 16) ^ int(b, 16)).bit_count()


class ImageSignal(Signal):
    """A perceptual hash computed from decoded pixels."""

    @abstractmethod
    def compute(self, image: Image.Image) -> HashValue:
        """Hash an RGB PIL image (decoding lives in media.py only)."""

    def compute_rgb(self, image: Image.Image, rgb: npt.NDArray[np.uint8]) -> HashValue:
        """compute(image), given also its pixels as a uint8 H x W x 3 array (np.asarray(image)).

        Signals with a faster path from the array override this; the hash is the same.
        """
        return self.compute(image)

    def prepare(self) -> None:
        """Import now what compute imports on first use: a process pool forks its workers
        after this, so that they share the import instead of each paying it."""


class BytesSignal(Signal):
    """A cryptographic hash of the file's exact bytes."""

    exact = True

    @abstractmethod
    def compute_bytes(self, data: bytes) -> HashValue:
        """Hash the bytes as they are."""
