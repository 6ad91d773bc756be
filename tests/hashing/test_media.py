"""media.py: every accepted mode decodes as it should, every bad input is a typed one-line refusal.

Hostile files are built here, byte by byte, so each test says exactly what it feeds in.
"""

from __future__ import annotations

import csv
import io
import os
import random
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from hashdb.config import MediaLimits
from hashdb.errors import HashDBError, MediaTooLarge, UnsupportedMedia
from hashdb.hashing.media import DecodedImage, decode_image, media_type, read_file, rgb_pixels, sniff
from hashdb.hashing.pdq import PdqSignal
from support import flat_png, png_chunk

PDQ = PdqSignal()
PILLOW_LIMIT = Image.MAX_IMAGE_PIXELS


def decode_path(path: Path, limits: MediaLimits = MediaLimits()) -> DecodedImage:
    return decode_image(read_file(path, limits), limits)


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image)


def refusal(excinfo: pytest.ExceptionInfo[HashDBError]) -> str:
    message = str(excinfo.value)
    assert message and "\n" not in message, f"not a one-line message: {message!r}"
    return message


def noise(size: tuple[int, int], mode: str = "RGB", seed: int = 0) -> Image.Image:
    bands = len(Image.new(mode, (1, 1)).getbands())
    shape = (size[1], size[0], bands) if bands > 1 else (size[1], size[0])
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8), mode)


# --- crafted files ------------------------------------------------------------------------


def png_claiming(width: int, height: int) -> bytes:
    """A valid-looking RGB PNG header for width x height with a few rows of zero pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\0" * (3 * (1 + 3 * width)), 9)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", rows) + png_chunk(b"IEND", b"")


def gif_frame(width: int, height: int, lzw: bytes) -> bytes:
    """An image descriptor at (0, 0), no local palette, LZW minimum code size 2, one sub-block."""
    return b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0) + b"\x02" + bytes([len(lzw)]) + lzw + b"\x00"


# One pixel of colour 0 at LZW code size 3: CLEAR(4), 0, END(5), packed LSB first.
ONE_PIXEL_LZW = b"\x44\x01"
# Codes that can never be valid at this point of a stream: decoding this frame must fail.
BAD_LZW = b"\xff\xff\xff\xff"


def gif_with_screen(width: int, height: int, frame: bytes) -> bytes:
    palette = b"\x00\x00\x00\xff\xff\xff"
    return b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0) + palette + frame + b";"


def webp_vp8x(width: int, height: int) -> bytes:
    payload = b"\x00\x00\x00\x00" + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    chunk = b"VP8X" + struct.pack("<I", len(payload)) + payload
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def tiff_claiming(width: int, height: int) -> bytes:
    """A small uncompressed TIFF whose first IFD is rewritten to claim width x height."""
    data = bytearray(encode(Image.new("L", (4, 4), 128), "TIFF"))
    assert data[:4] == b"II*\x00"
    (ifd,) = struct.unpack_from("<I", data, 4)
    (count,) = struct.unpack_from("<H", data, ifd)
    for entry in range(ifd + 2, ifd + 2 + 12 * count, 12):
        (tag,) = struct.unpack_from("<H", data, entry)
        if tag in (256, 257):  # ImageWidth, ImageLength, as one LONG each
            struct.pack_into("<HHII", data, entry, tag, 4, 1, width if tag == 256 else height)
    return bytes(data)


def tiff_premultiplied(image: Image.Image) -> bytes:
    """An RGBA TIFF relabelled as associated (premultiplied) alpha."""
    data = bytearray(encode(image, "TIFF"))
    (ifd,) = struct.unpack_from("<I", data, 4)
    (count,) = struct.unpack_from("<H", data, ifd)
    for entry in range(ifd + 2, ifd + 2 + 12 * count, 12):
        if struct.unpack_from("<H", data, entry)[0] == 338:  # ExtraSamples: 1 = associated alpha
            struct.pack_into("<HHIHH", data, entry, 338, 3, 1, 1, 0)
    return bytes(data)


def jpeg_claiming(width: int, height: int) -> bytes:
    data = bytearray(encode(noise((16, 16)), "JPEG"))
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


def bmp_claiming(width: int, height: int) -> bytes:
    data = bytearray(encode(noise((4, 4)), "BMP"))
    struct.pack_into("<ii", data, 18, width, height)
    return bytes(data)


# --- modes --------------------------------------------------------------------------------

FIXTURE_MODES = [
    ("chelsea.jpg", "JPEG", "RGB"),
    ("camera.png", "PNG", "L"),
    ("coffee_palette.png", "PNG", "P"),
    ("logo_palette.png", "PNG", "P"),
    ("logo_rgba.png", "PNG", "RGBA"),
    ("logo_opaque.png", "PNG", "RGBA"),
    ("camera_16bit.png", "PNG", "I;16"),
    ("astronaut_cmyk.jpg", "JPEG", "CMYK"),
    ("chelsea_exif6.jpg", "JPEG", "RGB"),
    ("rocket_anim.gif", "GIF", "P"),
]


@pytest.mark.parametrize(("name", "fmt", "mode"), FIXTURE_MODES)
def test_fixture_modes_decode_to_rgb(media: Path, name: str, fmt: str, mode: str) -> None:
    decoded = decode_path(media / name)
    assert (decoded.format, decoded.mode) == (fmt, mode)
    assert decoded.rgb.mode == "RGB"
    with Image.open(media / name) as raw:
        assert decoded.rgb.size == raw.size


def test_greyscale_is_grey_stacked_to_three_channels(media: Path) -> None:
    # python-threatexchange stacks an L image to 3 equal channels; so must we.
    with Image.open(media / "camera.png") as raw:
        grey = pixels(raw)
    rgb = pixels(decode_path(media / "camera.png").rgb)
    assert all(np.array_equal(rgb[..., c], grey) for c in range(3))


@pytest.mark.parametrize("name", ["coffee_palette.png", "logo_palette.png"])
def test_palette_colours_come_from_the_palette(media: Path, name: str) -> None:
    # With or without a transparent index, the primary holds the palette colour of every pixel.
    with Image.open(media / name) as raw:
        indices = pixels(raw)
        palette = np.array(raw.getpalette(), dtype=np.uint8).reshape(-1, 3)
    assert np.array_equal(pixels(decode_path(media / name).rgb), palette[indices])


def test_corrupt_exif_costs_only_the_upright_variant(media: Path) -> None:
    data = bytearray((media / "chelsea_exif6.jpg").read_bytes())
    tiff = data.index(b"Exif\x00\x00") + 6
    data[tiff : tiff + 4] = b"XX\x00\x00"  # neither II nor MM: the EXIF block is unreadable
    decoded = decode_image(bytes(data))
    assert decoded.upright is None
    assert np.array_equal(pixels(decoded.rgb), pixels(decode_path(media / "chelsea_exif6.jpg").rgb))


def test_sixteen_bit_is_clipped_like_python_threatexchange(media: Path) -> None:
    # pytx converts I;16 with Pillow's convert("RGB"), which clips at 255 (pytx/I16.png's
    # expected hash depends on it); values are not scaled down.
    with Image.open(media / "camera_16bit.png") as raw:
        values = pixels(raw)
    assert values.dtype == np.uint16 and values.max() > 255
    rgb = pixels(decode_path(media / "camera_16bit.png").rgb)
    assert np.array_equal(rgb[..., 0], np.clip(values, 0, 255).astype(np.uint8))


def test_cmyk_decodes_to_the_right_colours(media: Path) -> None:
    # An inverted or channel-swapped CMYK decode would give a far PDQ from the RGB original.
    cmyk = PDQ.compute(decode_path(media / "astronaut_cmyk.jpg").rgb)
    original = PDQ.compute(decode_path(media / "astronaut.jpg").rgb)
    assert PDQ.distance(cmyk.hex, original.hex) <= PDQ.default_threshold


def test_palette_fixture_matches_its_original(media: Path) -> None:
    quantized = PDQ.compute(decode_path(media / "coffee_palette.png").rgb)
    original = PDQ.compute(decode_path(media / "coffee.jpg").rgb)
    assert PDQ.distance(quantized.hex, original.hex) <= PDQ.default_threshold


def test_one_bit_image(tmp_path: Path) -> None:
    bits = np.random.default_rng(1).integers(0, 2, (20, 30)).astype(bool)
    path = tmp_path / "bits.png"
    path.write_bytes(encode(Image.fromarray(bits), "PNG"))
    decoded = decode_path(path)
    assert decoded.mode == "1"
    assert np.array_equal(pixels(decoded.rgb)[..., 1], np.where(bits, 255, 0))


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (np.array([[-5, 0, 100, 255, 256, 70_000]], dtype=np.int32), [0, 0, 100, 255, 255, 255]),
        (np.array([[-5.0, 0.0, 100.0, 255.0, 256.0, 1e6]], dtype=np.float32), [0, 0, 100, 255, 255, 255]),
        (np.array([[0, 100, 255, 256, 65_535]], dtype=np.uint16), [0, 100, 255, 255, 255]),
    ],
    ids=["I", "F", "I;16"],
)
def test_wide_modes_from_tiff_clip_to_8_bits(tmp_path: Path, values: np.ndarray, expected: list[int]) -> None:
    # One rule for every wider-than-8-bit mode: the I;16 rule pytx's vectors pin down.
    path = tmp_path / "wide.tif"
    path.write_bytes(encode(Image.fromarray(values), "TIFF"))
    decoded = decode_path(path)
    assert decoded.format == "TIFF"
    assert pixels(decoded.rgb)[0, :, 2].tolist() == expected


@pytest.mark.parametrize(
    ("fmt", "options", "lossless"),
    [
        ("PNG", {}, True),
        ("BMP", {}, True),
        ("TIFF", {}, True),
        ("TIFF", {"compression": "tiff_lzw"}, True),
        ("WEBP", {"lossless": True}, True),
        ("WEBP", {"quality": 80}, False),
        ("GIF", {}, False),
        ("JPEG", {"quality": 90}, False),
    ],
)
def test_every_allowed_format_decodes(media: Path, tmp_path: Path, fmt: str, options: dict[str, object],
                                      lossless: bool) -> None:
    with Image.open(media / "rocket.jpg") as raw:
        source = raw.convert("RGB")
    path = tmp_path / "rocket.bin"  # the name says nothing: the content decides
    path.write_bytes(encode(source, fmt, **options))
    decoded = decode_path(path)
    assert decoded.format == fmt
    if lossless:
        assert np.array_equal(pixels(decoded.rgb), pixels(source))
    else:
        near = PDQ.distance(PDQ.compute(decoded.rgb).hex, PDQ.compute(source).hex)
        assert near <= PDQ.default_threshold


def test_format_comes_from_content_not_name(media: Path, tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    path.write_bytes((media / "camera.png").read_bytes())
    assert decode_path(path).format == "PNG"


@pytest.mark.parametrize("fmt", ["ICO", "TGA", "PCX", "PPM", "JPEG2000"])
def test_formats_outside_the_allowlist_are_refused(tmp_path: Path, fmt: str) -> None:
    data = encode(noise((32, 32)), fmt)
    with pytest.raises(UnsupportedMedia) as excinfo:
        decode_image(data)
    assert "accepted: images JPEG, PNG" in refusal(excinfo)


# --- transparency -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["logo_rgba.png", "logo_palette.png"])
def test_real_transparency_gives_white_and_black_variants(media: Path, name: str) -> None:
    decoded = decode_path(media / name)
    assert decoded.has_transparency
    flattened = ["on_white", "on_black"]
    # A palette image also carries pytx's reading of it (indices as gray), see DecodedImage.
    assert [n for n, _ in decoded.variants()] == flattened + (["pytx_raw"] if decoded.mode == "P" else [])
    with Image.open(media / name) as raw:
        alpha = pixels(raw.convert("RGBA"))[..., 3]
    assert decoded.on_white is not None and decoded.on_black is not None
    white, black, rgb = pixels(decoded.on_white), pixels(decoded.on_black), pixels(decoded.rgb)
    clear, solid = alpha == 0, alpha == 255
    assert clear.any() and solid.any()
    assert (white[clear] == 255).all() and (black[clear] == 0).all()
    assert np.array_equal(white[solid], rgb[solid]) and np.array_equal(black[solid], rgb[solid])


def test_soft_edges_are_blended(media: Path) -> None:
    # Partial alpha: on white the result is alpha*colour + (1-alpha)*255, rounded.
    decoded = decode_path(media / "logo_rgba.png")
    with Image.open(media / "logo_rgba.png") as raw:
        rgba = pixels(raw).astype(np.float64)
    colour, alpha = rgba[..., :3], rgba[..., 3:] / 255
    expected = colour * alpha + 255 * (1 - alpha)
    assert decoded.on_white is not None
    assert np.abs(pixels(decoded.on_white) - expected).max() <= 1


def test_primary_ignores_alpha_like_python_threatexchange(media: Path) -> None:
    with Image.open(media / "logo_rgba.png") as raw:
        colour = pixels(raw)[..., :3]
    assert np.array_equal(pixels(decode_path(media / "logo_rgba.png").rgb), colour)


@pytest.mark.parametrize("name", ["logo_opaque.png", "coffee_palette.png", "camera.png", "chelsea.jpg"])
def test_no_variants_without_real_transparency(media: Path, name: str) -> None:
    decoded = decode_path(media / name)
    assert decoded.on_white is None and decoded.on_black is None and not decoded.has_transparency


def test_declared_but_unused_transparent_index_is_not_transparency(tmp_path: Path) -> None:
    image = Image.new("P", (8, 8), 0)
    image.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    data = encode(image, "PNG", transparency=1)  # index 1 is transparent, but no pixel uses it
    assert not decode_image(data).has_transparency


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_png_colour_key_is_transparency(mode: str) -> None:
    image = noise((16, 16), mode, seed=3)
    key = image.getpixel((0, 0))
    decoded = decode_image(encode(image, "PNG", transparency=key))
    assert decoded.on_white is not None
    assert pixels(decoded.on_white)[0, 0].tolist() == [255, 255, 255]


def test_la_and_premultiplied_alpha(tmp_path: Path) -> None:
    grey = noise((8, 8), "L")
    alpha = Image.new("L", (8, 8), 255)
    alpha.putpixel((0, 0), 0)
    la = Image.merge("LA", (grey, alpha))
    decoded = decode_image(encode(la, "PNG"))
    assert decoded.mode == "LA" and decoded.on_black is not None
    assert pixels(decoded.on_black)[0, 0].tolist() == [0, 0, 0]
    rgba = Image.merge("RGBA", (grey, grey, grey, alpha))
    decoded = decode_image(tiff_premultiplied(rgba))
    # Pillow un-premultiplies while decoding and reports RGBA.
    assert decoded.mode == "RGBA" and decoded.on_white is not None
    assert pixels(decoded.on_white)[0, 0].tolist() == [255, 255, 255]


# --- EXIF orientation ---------------------------------------------------------------------


def test_exif_orientation_is_a_variant_and_the_primary_is_as_stored(media: Path) -> None:
    decoded = decode_path(media / "chelsea_exif6.jpg")
    with Image.open(media / "chelsea_exif6.jpg") as raw:
        stored = raw.convert("RGB")
        shown = ImageOps.exif_transpose(raw).convert("RGB")
    assert np.array_equal(pixels(decoded.rgb), pixels(stored))
    assert decoded.upright is not None
    assert np.array_equal(pixels(decoded.upright), pixels(shown))
    # And the upright variant looks like the untagged original the fixture was made from.
    cat = PDQ.compute(decode_path(media / "chelsea.jpg").rgb)
    assert PDQ.distance(PDQ.compute(decoded.upright).hex, cat.hex) <= PDQ.default_threshold
    assert PDQ.distance(PDQ.compute(decoded.rgb).hex, cat.hex) > PDQ.default_threshold


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_matches_pillows_exif_transpose(orientation: int) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(noise((12, 7), seed=orientation), "PNG", exif=exif.tobytes())
    decoded = decode_image(data)
    with Image.open(io.BytesIO(data)) as raw:
        shown = pixels(ImageOps.exif_transpose(raw).convert("RGB"))
    if orientation == 1:
        assert decoded.upright is None
    else:
        assert decoded.upright is not None and np.array_equal(pixels(decoded.upright), shown)


# --- reference vectors through our decoder -------------------------------------------------


def vector_rows(vectors_root: Path, source: str, prefix: str = "") -> list[dict[str, str]]:
    with (vectors_root / "pdq" / "expected.csv").open() as handle:
        return [r for r in csv.DictReader(handle) if r["source"] == source and r["file"].startswith(prefix)]


@pytest.mark.vectors
def test_pytx_exact_vectors_survive_our_decoder(vectors: Path) -> None:
    rows = vector_rows(vectors, "pytx-exact")
    assert {r["file"] for r in rows} >= {"pytx/LA.png", "pytx/I16.png"}
    for row in rows:
        value = PDQ.compute(decode_path(vectors / "pdq" / row["file"]).rgb)
        assert value.hex == row["pdq_hex"], row["file"]
        if row["quality"]:
            assert value.quality == int(row["quality"]), row["file"]


@pytest.mark.vectors
def test_la_vector_has_flattened_variants(vectors: Path) -> None:
    decoded = decode_path(vectors / "pdq" / "pytx" / "LA.png")
    assert decoded.on_white is not None and decoded.on_black is not None


EXIF_FILES = ["exif-rotn-6.jpg", pytest.param("exif-rotn-3.jpg", marks=pytest.mark.slow),
              pytest.param("exif-rotn-8.jpg", marks=pytest.mark.slow)]


@pytest.mark.vectors
@pytest.mark.parametrize("name", EXIF_FILES)
def test_exif_vectors_reference_hashes_are_of_the_stored_pixels(vectors: Path, name: str) -> None:
    # Meta's C++ reference does not apply EXIF orientation (nor does python-threatexchange):
    # our primary hash must agree with it, within 10 bits as the PDQ README asks of a port.
    (row,) = vector_rows(vectors, "cpp-reference", f"reg-test-input/exif-rotn/{name}")
    decoded = decode_path(vectors / "pdq" / row["file"])
    assert PDQ.distance(PDQ.compute(decoded.rgb).hex, row["pdq_hex"]) <= 10
    assert decoded.upright is not None


# --- limits and hostile input -------------------------------------------------------------


def test_fifty_thousand_square_png_of_a_few_bytes_is_refused_from_its_header(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(png_claiming(50_000, 50_000))
    assert path.stat().st_size < 4096
    with pytest.raises(MediaTooLarge) as excinfo:
        decode_path(path)
    message = refusal(excinfo)
    assert "50000x50000" in message and "50,000,000-pixel limit" in message


@pytest.mark.parametrize(
    "data",
    [
        png_claiming(10_000, 10_000),
        gif_with_screen(1, 1, gif_frame(10_000, 10_000, ONE_PIXEL_LZW)),
        webp_vp8x(10_000, 10_000),
        jpeg_claiming(10_000, 10_000),
        bmp_claiming(10_000, 10_000),
        tiff_claiming(10_000, 10_000),
    ],
    ids=["png", "gif-frame-grows-canvas", "webp", "jpeg", "bmp", "tiff"],
)
def test_between_pillows_warning_and_error_limits_no_warning_leaks(data: bytes) -> None:
    # 100 Mpx is over Pillow's warning threshold and under its error threshold: Pillow would
    # warn (an exception under pytest's warnings-as-errors). We refuse first, from the header,
    # even when the configured limit is above Pillow's.
    assert PILLOW_LIMIT is not None and PILLOW_LIMIT < 100_000_000 < 2 * PILLOW_LIMIT
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for limits in (MediaLimits(), MediaLimits(max_pixels=10**12)):
            with pytest.raises(MediaTooLarge) as excinfo:
                decode_image(data, limits)
            assert "10000x10000" in refusal(excinfo)


@pytest.mark.parametrize(
    "data",
    [webp_vp8x(16_384, 16_384), jpeg_claiming(65_000, 65_000), tiff_claiming(200_000, 200_000),
     gif_with_screen(65_535, 65_535, gif_frame(1, 1, ONE_PIXEL_LZW))],
    ids=["webp", "jpeg", "tiff", "gif"],
)
def test_far_over_pillows_limit_is_our_error_not_pillows(data: bytes) -> None:
    with pytest.raises(MediaTooLarge) as excinfo:
        decode_image(data)
    assert "pixel limit" in refusal(excinfo)


def test_pixel_limit_is_configurable(media: Path) -> None:
    with pytest.raises(MediaTooLarge) as excinfo:
        decode_path(media / "chelsea.jpg", MediaLimits(max_pixels=100_000))
    assert "451x300 (135,300 pixels), over the 100,000-pixel limit" in refusal(excinfo)


def test_flat_7000_square_png_is_refused_by_the_decode_memory_cap() -> None:
    # Under the pixel limit (49 Mpx < 50 Mpx) and a few hundred KB, but its decode would take
    # 49e6 x (4 bytes in Pillow + 3 in the hashers' array) = 343 MB: refused from the header.
    data = flat_png(7000, 7000)
    assert len(data) < 400_000
    assert 7000 * 7000 < MediaLimits().max_pixels
    with pytest.raises(MediaTooLarge) as excinfo:
        decode_image(data)
    message = refusal(excinfo)
    assert "7000x7000" in message and "327 MiB" in message and "256 MiB decode-memory limit" in message


@pytest.mark.parametrize(("mode", "per_pixel"), [("RGB", 4 + 3), ("L", 1 + 4 + 3), ("RGBA", 4 + 4 + 3 + 9)])
def test_decode_memory_limit_counts_the_mode_and_is_configurable(mode: str, per_pixel: int) -> None:
    data = encode(noise((300, 200), mode), "PNG")
    need = 300 * 200 * per_pixel
    decode_image(data, MediaLimits(max_decode_bytes=need))
    with pytest.raises(MediaTooLarge) as excinfo:
        decode_image(data, MediaLimits(max_decode_bytes=need - 1))
    assert "decode-memory limit" in refusal(excinfo)


def test_rgb_images_are_not_copied_to_convert_them(media: Path) -> None:
    decoded = decode_path(media / "chelsea.jpg")
    with Image.open(media / "chelsea.jpg") as image:
        assert decoded.rgb.mode == "RGB" and pixels(decoded.rgb).tobytes() == pixels(image.convert("RGB")).tobytes()
    assert decoded.upright is None and decoded.variants() == ()


def test_over_the_byte_limit(media: Path) -> None:
    path = media / "chelsea.jpg"
    limits = MediaLimits(max_bytes=1000)
    with pytest.raises(MediaTooLarge) as excinfo:
        read_file(path, limits)
    assert f"{path.stat().st_size:,} bytes, over the 1,000-byte limit" in refusal(excinfo)
    with pytest.raises(MediaTooLarge):
        decode_image(path.read_bytes(), limits)


@pytest.mark.parametrize("name", ["astronaut_corrupt.jpg", "chelsea_corrupt.jpg", "camera_corrupt.png"])
def test_corrupt_fixtures_are_refused(media: Path, name: str) -> None:
    with pytest.raises(UnsupportedMedia) as excinfo:
        decode_path(media / name)
    assert not isinstance(excinfo.value, MediaTooLarge)
    refusal(excinfo)


def test_truncated_jpeg(tmp_path: Path) -> None:
    whole = encode(noise((64, 64), seed=7), "JPEG", quality=90)
    path = tmp_path / "cut.jpg"
    path.write_bytes(whole[: len(whole) * 2 // 3])
    with pytest.raises(UnsupportedMedia) as excinfo:
        decode_path(path)
    assert "truncated" in refusal(excinfo)


def test_png_with_bad_crc(tmp_path: Path) -> None:
    data = bytearray(encode(noise((32, 32), seed=8), "PNG"))
    idat = data.index(b"IDAT")
    data[idat + 10] ^= 0x01  # one bit inside the compressed pixels; the CRC no longer agrees
    with pytest.raises(UnsupportedMedia) as excinfo:
        decode_image(bytes(data))
    assert "bad CRC in its 'IDAT' chunk" in refusal(excinfo)


def test_png_without_iend_is_truncated() -> None:
    data = encode(noise((32, 32), seed=9), "PNG")
    with pytest.raises(UnsupportedMedia) as excinfo:
        decode_image(data[: data.rindex(b"IEND") - 4])
    assert "truncated" in refusal(excinfo)


def test_gif_with_ten_thousand_frames_is_hashed_on_its_first_frame() -> None:
    # No frame cap: only the first frame is ever parsed, so the cost does not depend on the
    # frame count (scripts/bench_media.py measures it). The other frames hold LZW codes that
    # cannot be decoded, so touching any of them would fail this test.
    first = noise((64, 48), seed=4).quantize(colors=4)
    single = encode(first, "GIF")
    assert single.endswith(b";")
    data = single[:-1] + gif_frame(1, 1, BAD_LZW) * 9_999 + b";"
    decoded = decode_image(data)
    assert decoded.format == "GIF"
    with Image.open(io.BytesIO(single)) as expected:
        assert np.array_equal(pixels(decoded.rgb), pixels(expected.convert("RGB")))


@pytest.mark.parametrize(
    ("content", "named"),
    [
        (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>', "SVG"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"><rect width="5" height="5"/></svg>', "SVG"),
        (b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n", "PDF"),
    ],
    ids=["svg-xml", "svg", "pdf"],
)
def test_documents_named_jpg_are_refused(tmp_path: Path, content: bytes, named: str) -> None:
    path = tmp_path / "photo.jpg"
    path.write_bytes(content)
    data = read_file(path)
    for call in (media_type, decode_image):
        with pytest.raises(UnsupportedMedia) as excinfo:
            call(data)
        assert named in refusal(excinfo)


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.touch()
    for call in (media_type, decode_image):
        with pytest.raises(UnsupportedMedia) as excinfo:
            call(read_file(path))
        assert "empty" in refusal(excinfo)


def test_text_named_mp4_is_not_routed_to_video(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    path.write_text("this is not a video, just some words in a file\n")
    with pytest.raises(UnsupportedMedia) as excinfo:
        media_type(read_file(path))
    assert "text" in refusal(excinfo)


@pytest.mark.parametrize(
    ("head", "fmt"),
    [
        (b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41", "MP4"),
        (b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00qt  ", "MOV"),
        (b"\x00\x00\x00\x08wide\x00\x00\x10\x00mdat", "MOV"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\xf2\x81\x04webm", "MKV"),
        (b"RIFF\x24\x10\x00\x00AVI LIST\x00\x01\x00\x00hdrlavih", "AVI"),
    ],
)
def test_video_containers_are_recognised(head: bytes, fmt: str) -> None:
    assert sniff(head) == ("video", fmt)
    assert media_type(head) == "video"
    with pytest.raises(UnsupportedMedia) as excinfo:
        decode_image(head)
    assert "video" in refusal(excinfo)


def test_fixture_videos_are_videos(media: Path) -> None:
    videos = sorted(media.glob("*.mp4"))
    if not videos:
        pytest.skip("no fixture videos yet")
    assert {media_type(read_file(v)) for v in videos} == {"video"}


def test_heif_is_refused_not_sent_to_video() -> None:
    with pytest.raises(UnsupportedMedia) as excinfo:
        media_type(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic")
    assert "HEIF" in refusal(excinfo)


def test_unreadable_paths(tmp_path: Path) -> None:
    for path in (tmp_path / "missing.jpg", tmp_path):
        with pytest.raises(UnsupportedMedia) as excinfo:
            read_file(path)
        refusal(excinfo)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs mkfifo")
def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    with pytest.raises(UnsupportedMedia) as excinfo:
        read_file(fifo)
    assert "not a regular file" in refusal(excinfo)


# --- mutation fuzzing: only a decoded image or a typed refusal ------------------------------

FUZZ_SOURCES = ["chelsea.jpg", "camera.png", "logo_palette.png", "rocket_anim.gif", "astronaut_cmyk.jpg",
                "chelsea_exif6.jpg"]


def mutate(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    kind = rng.randrange(4)
    if kind == 0:  # flip a few bits anywhere
        for _ in range(rng.randint(1, 8)):
            out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
    elif kind == 1:  # scribble over the header, where the parsers live
        for _ in range(rng.randint(1, 4)):
            out[rng.randrange(min(len(out), 256))] = rng.randrange(256)
    elif kind == 2:  # truncate
        del out[rng.randrange(1, len(out)) :]
    else:  # splice random bytes in
        at = rng.randrange(len(out))
        out[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    return bytes(out)


def fuzz(media: Path, cases_per_source: int) -> None:
    limits = MediaLimits(max_pixels=4_000_000)
    for name in FUZZ_SOURCES:
        rng = random.Random(name)
        original = (media / name).read_bytes()
        for _ in range(cases_per_source):
            data = mutate(original, rng)
            try:
                decoded = decode_image(data, limits)
            except UnsupportedMedia as exc:
                assert str(exc) and "\n" not in str(exc)
            else:
                assert decoded.rgb.mode == "RGB"


def test_mutated_fixtures_decode_or_are_refused(media: Path) -> None:
    fuzz(media, 40)


@pytest.mark.slow
def test_mutated_fixtures_decode_or_are_refused_soak(media: Path) -> None:
    fuzz(media, 2_000)


def test_rgb_pixels_are_numpys_array_of_the_image(media: Path) -> None:
    # One call of Pillow's packer instead of tobytes()'s pieces: the same array, for photos,
    # a palette image's RGB, an image too large for one block of Pillow's memory, and a
    # single pixel; images not RGB go to np.asarray.
    rng = np.random.default_rng(3)
    images = [Image.open(media / "astronaut.jpg").convert("RGB"),
              Image.fromarray(rng.integers(0, 256, (3000, 2500, 3), dtype=np.uint8)),
              Image.new("RGB", (1, 1), (9, 8, 7)),
              Image.new("L", (5, 3), 4)]
    for image in images:
        got = rgb_pixels(image)
        want = np.asarray(image)
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
