"""The only code that turns bytes or paths into pixels, with the safety limits.

Checks run cheapest first and before any pixel is decoded: byte size, format sniffed from
the content (never the file name) against an allowlist, pixel count from the header. Only
the first frame of an animation is decoded. Every refusal is `UnsupportedMedia` or its
subclass `MediaTooLarge`, with a one-line message; nothing here returns None for failure.
"""

from __future__ import annotations

import os
import stat
import struct
import zlib
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import (
    BmpImagePlugin,
    ExifTags,
    GifImagePlugin,
    Image,
    ImageFile,
    JpegImagePlugin,
    PngImagePlugin,
    TiffImagePlugin,
    WebPImagePlugin,
)

from hashdb.config import MediaLimits
from hashdb.errors import MediaTooLarge, UnsupportedMedia
from hashdb.hashing import media_headers

MediaType = Literal["image", "video"]

IMAGE_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF")
# Container families the video module is asked to open; it may still refuse the codec.
VIDEO_FORMATS = ("MP4", "MOV", "MKV", "AVI")

# Constructing the plugin class reads only the header, never tries a format the sniffer did
# not pick, and skips Image.open's bomb check. That check warns through the process-wide
# warnings filters, which cannot be changed per call without racing other threads (and
# pytest turns the warning into an exception); our own pixel limit replaces it.
_OPENERS: dict[str, type[ImageFile.ImageFile]] = {
    "JPEG": JpegImagePlugin.JpegImageFile,
    "PNG": PngImagePlugin.PngImageFile,
    "GIF": GifImagePlugin.GifImageFile,
    "WEBP": WebPImagePlugin.WebPImageFile,
    "BMP": BmpImagePlugin.BmpImageFile,
    "TIFF": TiffImagePlugin.TiffImageFile,
}

# What Pillow raises on malformed input. `Warning` is here because a caller (pytest, a
# strict deployment) may promote Pillow's corrupt-metadata warnings to exceptions.
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    KeyError,
    TypeError,
    struct.error,
    zlib.error,
    Warning,
)

# DIB header sizes of real BMP files; "BM" alone is too weak a signature.
_BMP_HEADER_SIZES = frozenset({12, 16, 40, 52, 56, 64, 108, 124})
# ISO-BMFF brands of still images (HEIF, AVIF, Canon raw): refused, not sent to video.
_STILL_IMAGE_BRANDS = frozenset(
    {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1",
     b"msf1", b"avif", b"avis", b"crx "}
)
# QuickTime files older than the ftyp box start directly with one of these atoms.
_QUICKTIME_ATOMS = frozenset({b"moov", b"mdat", b"wide", b"free", b"skip"})

_ACCEPTED = (f"accepted: images {', '.join(IMAGE_FORMATS)}; videos MP4/MOV, WebM/MKV, AVI; a video's TMK+PDQF "
             "(.tmk, as tmk-hash-video writes it)")

# EXIF orientation -> the transpose that shows the picture upright (EXIF 2.3, tag 0x0112).
_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


@dataclass(frozen=True, slots=True)
class DecodedImage:
    """The first frame of an image, as the hashers see it.

    `rgb` is Pillow's RGB conversion of the pixels as stored: alpha ignored, 16-bit values
    clipped at 255, EXIF orientation not applied. That is exactly what python-threatexchange
    and Meta's reference hasher hash, so our primary PDQ equals theirs. The other images are
    variants a re-upload is likely to look like, present only when they differ.
    """

    rgb: Image.Image
    format: str
    mode: str
    # Real transparency only: the pixels composited onto white / black.
    on_white: Image.Image | None = None
    on_black: Image.Image | None = None
    # EXIF orientation other than 1: `rgb` turned the way a viewer shows it, as most
    # platforms re-encode it.
    upright: Image.Image | None = None
    # Palette and CMYK images only: the pixels as python-threatexchange (so HMA) hashes them,
    # which is not their colours (palette indices as gray; C, M, Y read as R, G, B). Kept as
    # a variant so hashes shared by HMA members for such files still match ours.
    pytx_raw: Image.Image | None = None
    # 16-bit images only: the values scaled to 8 bits, as viewers show them. `rgb` clips at
    # 255 the way pytx does, which leaves most of a full-range 16-bit image white: without
    # this a 16-bit copy of a known image would never match it.
    scaled: Image.Image | None = None

    @property
    def has_transparency(self) -> bool:
        return self.on_white is not None

    @property
    def shown(self) -> Image.Image:
        """The picture as a viewer sees it: turned upright, flattened onto white, 16-bit
        values scaled to 8 bits. What the derived hashes are taken of."""
        return self.upright or self.on_white or self.scaled or self.rgb

    def variants(self) -> tuple[tuple[str, Image.Image], ...]:
        """The present variants, by name, in a stable order."""
        named = (("on_white", self.on_white), ("on_black", self.on_black), ("upright", self.upright),
                 ("pytx_raw", self.pytx_raw), ("scaled", self.scaled))
        return tuple((name, image) for name, image in named if image is not None)


def read_file(path: str | os.PathLike[str], limits: MediaLimits = MediaLimits()) -> bytes:
    """The bytes of a regular file, refused before reading when over `limits.max_bytes`."""
    path = Path(path)
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            # A FIFO or device would block or never end.
            raise UnsupportedMedia(f"{path}: not a regular file")
        _check_bytes(info.st_size, limits)
        with path.open("rb") as handle:
            # +1 so a file that grew after stat() is still caught.
            data = handle.read(limits.max_bytes + 1)
    except OSError as exc:
        raise UnsupportedMedia(f"{path}: cannot read ({exc.strerror or exc})") from exc
    _check_bytes(len(data), limits)
    return data


def media_type(data: bytes) -> MediaType:
    """'image' or 'video', from the leading bytes; anything else is UnsupportedMedia."""
    return sniff(data)[0]


def sniff(data: bytes) -> tuple[MediaType, str]:
    """(media type, format name) from magic numbers; the file name is never consulted."""
    head = bytes(data[:32])
    if not head:
        raise UnsupportedMedia("empty file (0 bytes)")
    if head.startswith(b"\xff\xd8\xff"):
        return "image", "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image", "PNG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image", "GIF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image", "WEBP"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video", "AVI"
    if head[:2] == b"BM" and int.from_bytes(head[14:18], "little") in _BMP_HEADER_SIZES:
        return "image", "BMP"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "image", "TIFF"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "video", "MKV"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _STILL_IMAGE_BRANDS:
            name = brand.decode("ascii", "replace").strip()
            raise UnsupportedMedia(f"unsupported format: HEIF/AVIF still image (brand {name!r}); {_ACCEPTED}")
        return "video", "MOV" if brand == b"qt  " else "MP4"
    if head[4:8] in _QUICKTIME_ATOMS:
        return "video", "MOV"
    raise UnsupportedMedia(f"unsupported format: {_describe(head)}; {_ACCEPTED}")


def decode_image(data: bytes, limits: MediaLimits = MediaLimits()) -> DecodedImage:
    """Decode the first frame of an image within `limits`; see DecodedImage for what comes back."""
    _check_bytes(len(data), limits)
    kind, fmt = sniff(data)
    if kind == "video":
        raise UnsupportedMedia(f"this is a video ({fmt}), not an image")
    max_pixels = _pixel_limit(limits)
    # Formats whose Pillow reader allocates or expands the canvas while opening get their
    # size read here first; the others only parse the header when opened.
    if fmt == "PNG":
        _check_pixels(media_headers.png_size(data), max_pixels)
    elif fmt == "GIF":
        _check_pixels(media_headers.gif_canvas(data), max_pixels)
    elif fmt == "WEBP":
        _check_pixels(media_headers.webp_canvas(data), max_pixels)
    image = _open(fmt, data)
    _check_pixels(image.size, max_pixels)
    _check_decode_memory(image, limits)
    try:
        image.load()
    except Image.DecompressionBombError as exc:
        raise MediaTooLarge(f"{fmt} image is over Pillow's decompression-bomb limit") from exc
    except _DECODE_ERRORS as exc:
        raise UnsupportedMedia(f"cannot decode {fmt} image: {_one_line(exc)}") from exc
    return _prepare(image, fmt)


def _prepare(image: ImageFile.ImageFile, fmt: str) -> DecodedImage:
    mode = image.mode
    try:
        source: Image.Image = image
        if mode in ("La", "RGBa"):
            # Premultiplied alpha: undo it so colours and alpha mean what they do elsewhere.
            # (Pillow's TIFF reader already does; this covers any reader that does not.)
            source = image.convert(mode.upper())
        alpha = _alpha(source)
        if source.mode == "P" and alpha is not None:
            # Pillow warns when a palette with per-entry alpha goes straight to RGB; via RGBA
            # gives the same colours without the warning.
            rgb = source.convert("RGBA").convert("RGB")
        elif source.mode == "RGB":
            # Already RGB: convert() would only copy it (4 bytes a pixel).
            rgb = source
        else:
            rgb = source.convert("RGB")
    except _DECODE_ERRORS as exc:
        raise UnsupportedMedia(f"cannot convert {fmt} image in mode {mode} to RGB: {_one_line(exc)}") from exc
    on_white = on_black = None
    if alpha is not None and _min_alpha(alpha) < 255:
        on_white = _flatten(rgb, alpha, (255, 255, 255))
        on_black = _flatten(rgb, alpha, (0, 0, 0))
    orientation = _orientation(image)
    upright = rgb.transpose(_ORIENTATION[orientation]) if orientation in _ORIENTATION else None
    return DecodedImage(rgb, fmt, mode, on_white, on_black, upright, _pytx_raw(image), _scaled(image))


def rgb_pixels(image: Image.Image) -> np.ndarray:
    """np.asarray(image) of a loaded RGB image: the same read-only H x W x 3 uint8 array, from
    one call of Pillow's raw packer. np.asarray goes through tobytes(), which packs 64 KiB at a
    time and joins the pieces, a second copy of the whole image into fresh memory (0.3-0.4
    ms of an 800 x 600 image's 1.0). Anything unexpected falls back to np.asarray."""
    width, height = image.size
    size = width * height * 3
    if image.mode != "RGB" or not size:
        return np.asarray(image)
    try:
        encoder = Image._getencoder("RGB", "raw", "RGB")
        encoder.setimage(image.im, (0, 0, width, height))
        _, done, data = encoder.encode(size)
    except (AttributeError, TypeError, ValueError, OSError):
        return np.asarray(image)
    if done != 1 or len(data) != size:
        return np.asarray(image)
    return np.frombuffer(data, dtype=np.uint8).reshape(height, width, 3)


def _scaled(image: Image.Image) -> Image.Image | None:
    if not image.mode.startswith("I;16"):
        return None
    values = np.asarray(image)
    # >> 8 maps 0..65535 onto 0..255 evenly (a value v * 257 goes back to v).
    return Image.fromarray((values >> 8).astype(np.uint8), "L").convert("RGB")


def _pytx_raw(image: Image.Image) -> Image.Image | None:
    """What pytx's `np.asarray(image)` hands pdqhash for palette and CMYK images, as RGB."""
    if image.mode == "P":
        indices = Image.frombytes("L", image.size, image.tobytes())
        return Image.merge("RGB", [indices] * 3)
    if image.mode == "CMYK":
        return Image.merge("RGB", image.split()[:3])
    return None


def _alpha(image: Image.Image) -> Image.Image | None:
    """The alpha mask (mode L), or None when the file declares no transparency at all."""
    bands = image.getbands()
    if bands[-1] == "A":
        return image.getchannel(len(bands) - 1)
    key = image.info.get("transparency")
    if key is None:
        return None
    if image.mode == "P":
        return image.convert("RGBA").getchannel("A")
    # A colour key (PNG tRNS on grey or RGB): pixels equal to it are fully transparent.
    pixels = np.asarray(image)
    if pixels.ndim == 3:
        hit = np.all(pixels == np.asarray(key, dtype=pixels.dtype), axis=-1)
    else:
        hit = pixels == key
    return Image.fromarray(np.where(hit, 0, 255).astype(np.uint8), "L")


def _min_alpha(alpha: Image.Image) -> float:
    low = alpha.getextrema()[0]  # an L image: (min, max)
    if not isinstance(low, (int, float)):
        raise TypeError(f"alpha mask must be single-band, got mode {alpha.mode}")
    return low


def _flatten(rgb: Image.Image, alpha: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    flat = Image.new("RGB", rgb.size, background)
    flat.paste(rgb, (0, 0), alpha)
    return flat


def _orientation(image: Image.Image) -> int:
    # The primary hash never depends on EXIF (pytx and the reference ignore it), so a broken
    # EXIF block costs only the upright variant, not the whole image.
    try:
        value = image.getexif().get(ExifTags.Base.Orientation, 1)
    except _DECODE_ERRORS:
        return 1
    return value if isinstance(value, int) else 1


def _open(fmt: str, data: bytes) -> ImageFile.ImageFile:
    if fmt == "WEBP" and not WebPImagePlugin.SUPPORTED:
        raise UnsupportedMedia("WEBP images need Pillow built with libwebp, which this install lacks")
    try:
        return _OPENERS[fmt](BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise MediaTooLarge(f"{fmt} image is over Pillow's decompression-bomb limit") from exc
    except _DECODE_ERRORS as exc:
        raise UnsupportedMedia(f"cannot read {fmt} header: {_one_line(exc)}") from exc


def _check_bytes(size: int, limits: MediaLimits) -> None:
    if size > limits.max_bytes:
        raise MediaTooLarge(f"file is {size:,} bytes, over the {limits.max_bytes:,}-byte limit")


def _pixel_limit(limits: MediaLimits) -> int:
    # Never above Pillow's own limit, so its bomb check cannot fire for an image we accept.
    pillow = Image.MAX_IMAGE_PIXELS
    return limits.max_pixels if pillow is None else min(limits.max_pixels, pillow)


def _check_pixels(size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise UnsupportedMedia(f"image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise MediaTooLarge(
            f"image is {width}x{height} ({width * height:,} pixels), over the {max_pixels:,}-pixel limit"
        )


def decode_bytes(image: Image.Image) -> int:
    """Bytes a decode of this (opened, not loaded) image takes at its peak, from its header.

    Pillow stores a frame at 1 byte a pixel for modes "1", "L" and "P", 2 for 16-bit grey and
    4 for the rest. On top: the RGB copy (a Pillow RGB image is 4 bytes a pixel), the uint8
    array the hashers read (3), and, for images that can carry transparency or are palette or
    CMYK, the flattened and pytx variants (4 each), the 8-bit copy of a 16-bit image (4) and
    the alpha mask (1).
    """
    width, height = image.size
    mode = image.mode
    frame = 1 if mode in ("1", "L", "P") else 2 if mode.startswith("I;16") else 4
    extra = 0
    if mode in ("P", "CMYK") or mode.startswith("I;16"):
        extra += 4  # pytx_raw, or the scaled copy of a 16-bit image
    if "A" in mode or "a" in mode or mode == "P" or "transparency" in image.info:
        extra += 2 * 4 + 1  # on_white, on_black, alpha mask
    converted = 0 if mode == "RGB" else 4
    return width * height * (frame + converted + 3 + extra)


def _check_decode_memory(image: Image.Image, limits: MediaLimits) -> None:
    need = decode_bytes(image)
    if need > limits.max_decode_bytes:
        width, height = image.size
        raise MediaTooLarge(
            f"image is {width}x{height} ({image.mode}): decoding it would take about {need / 2**20:,.0f} MiB, "
            f"over the {limits.max_decode_bytes / 2**20:,.0f} MiB decode-memory limit"
        )


def _describe(head: bytes) -> str:
    """A best guess at what a refused file is, for the error message."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    return format_name(head) or ("text, not media" if looks_like_text(text) else f"unrecognised bytes {head[:8].hex()}")


def format_name(head: bytes) -> str | None:
    """The name of a format the decoder knows it does not take (an SVG is text, yet an image
    someone meant to share, not a README), from a file's first bytes; None when none fits."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    guesses = (
        (b"%PDF", "PDF document"),
        (b"<svg", "SVG image"),
        (b"<?xml", "XML (SVG?)"),
        (b"PK\x03\x04", "ZIP archive"),
        (b"\x00\x00\x00\x0cjP  ", "JPEG 2000 image"),
        (b"\xff\x4f\xff\x51", "JPEG 2000 codestream"),
        (b"8BPS", "Photoshop document"),
        (b"\x00\x00\x01\x00", "ICO icon"),
        (b"\xd0\xcf\x11\xe0", "OLE compound file (Thumbs.db, an old Office document)"),
    )
    for magic, name in guesses:
        if text.startswith(magic):
            return name
    return None


def looks_like_text(start: bytes) -> bool:
    """Whether the first bytes of a file read as UTF-8 text with no control characters but
    whitespace. The window may cut a multi-byte character at its end."""
    try:
        decoded = start.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(start) - 3:
            return False
        decoded = start[: exc.start].decode("utf-8")
    return all(c.isprintable() or c in "\t\r\n\f" for c in decoded)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
