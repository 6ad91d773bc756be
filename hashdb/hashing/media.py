"""The only code that turns bytes or paths into pixels, with the safety limits.

PLACEHOLDER: minimal decoding until the hardened version lands (see issue 2).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from hashdb.config import MediaLimits
from hashdb.errors import MediaTooLarge, UnsupportedMedia


@dataclass(frozen=True)
class DecodedImage:
    # Pillow's RGB conversion, which ignores alpha: what python-threatexchange hashes.
    rgb: Image.Image
    # Only for images with real transparency: the same pixels flattened onto white / black.
    on_white: Image.Image | None = None
    on_black: Image.Image | None = None


def read_file(path: Path, limits: MediaLimits) -> bytes:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise UnsupportedMedia(f"{path}: cannot read ({exc.strerror})") from exc
    if size > limits.max_bytes:
        raise MediaTooLarge(f"{path}: {size} bytes is over the {limits.max_bytes}-byte limit")
    return path.read_bytes()


def media_type(data: bytes) -> str:
    """'image' or 'video' from the leading bytes; anything else is refused."""
    if data[4:8] == b"ftyp" or data[:4] == b"\x1a\x45\xdf\xa3" or data[:4] == b"RIFF" and data[8:12] == b"AVI ":
        return "video"
    if data[:3] == b"\xff\xd8\xff" or data[:8] == b"\x89PNG\r\n\x1a\n" or data[:6] in (b"GIF87a", b"GIF89a"):
        return "image"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" or data[:2] == b"BM":
        return "image"
    raise UnsupportedMedia("not an image or video format hashdb accepts")


def decode_image(data: bytes, limits: MediaLimits) -> DecodedImage:
    try:
        image = Image.open(io.BytesIO(data))
        if image.width * image.height > limits.max_pixels:
            raise MediaTooLarge(f"{image.width}x{image.height} is over the {limits.max_pixels}-pixel limit")
        image.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise UnsupportedMedia(f"cannot decode image: {exc}") from exc
    return DecodedImage(rgb=image.convert("RGB"))
