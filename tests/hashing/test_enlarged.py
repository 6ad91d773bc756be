"""Small pictures enlarged (hashing/enlarged.py): which images get an enlarged copy, that its
PDQ is the reference PDQ of the bicubic enlargement, and that it keeps a re-encoded or resized
copy of a small drawing near its original where the whole-image PDQ does not."""

from __future__ import annotations

import io
import random

import cv2
import numpy as np
import pdqhash
import pytest
from PIL import Image, ImageDraw

from hashdb.config import Settings
from hashdb.hashing import enlarged
from hashdb.hashing.derived import ENLARGED, MAX_DERIVED
from hashdb.service.media_hashing import hash_media

MIN_QUALITY = Settings().pdq_min_quality


def drawing(seed: int, side: int = 96) -> Image.Image:
    """Twelve outlined rectangles and ellipses in random colours on white: a small drawing of
    known make whose details are a pixel or two wide, as clip art and icons are."""
    rng = random.Random(seed)
    image = Image.new("RGB", (side, side), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x0, y0 = rng.randrange(side), rng.randrange(side)
        w, h = rng.randrange(4, side // 2), rng.randrange(4, side // 2)
        fill = tuple(rng.randrange(256) for _ in range(3))
        shape = draw.rectangle if rng.random() < 0.5 else draw.ellipse
        shape((x0, y0, x0 + w, y0 + h), fill=fill, outline=(0, 0, 0))
    return image


def encoded(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def bits(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


@pytest.mark.parametrize(("size", "expected"), [
    ((100, 80), (240, 192)),  # the shorter side to 192
    ((80, 100), (192, 240)),
    ((191, 191), (192, 192)),
    ((300, 100), (512, 171)),  # the longer side kept within the work copy's 512
    ((192, 100), (369, 192)),
    ((192, 192), None),  # not small
    ((512, 32), None),  # a panorama's work copy: enlarging would take it past 512
    ((15, 100), None),  # too thin to say anything
])
def test_which_images_are_enlarged_and_to_what_size(size, expected):
    assert enlarged.enlarged_size(*size) == expected


def test_the_enlarged_pdq_is_the_reference_pdq_of_the_bicubic_enlargement():
    rgb = np.asarray(drawing(3))
    [made] = enlarged.enlarged_pdqs(rgb, MIN_QUALITY)
    big = cv2.resize(rgb, (192, 192), interpolation=cv2.INTER_CUBIC)
    vector, quality = pdqhash.compute(np.ascontiguousarray(big))
    reference = format(int("".join(str(int(b)) for b in vector), 2), "064x")  # as python-threatexchange writes it
    assert made.via == ENLARGED and made.hash.hex == reference and made.hash.quality == quality
    assert made.colours is not None and made.share is None


def test_a_large_image_has_no_enlarged_copy():
    photo = drawing(3).resize((1200, 900), Image.Resampling.BICUBIC)
    for lookup in (False, True):
        derived = hash_media(Settings(), encoded(photo), "big", dihedral=lookup).derived
        assert ENLARGED not in {d.via for d in derived}


def test_a_flat_small_image_has_no_enlarged_copy():
    assert enlarged.enlarged_pdqs(np.full((64, 64, 3), 200, dtype=np.uint8), MIN_QUALITY) == ()


@pytest.mark.parametrize("seed", [0, 11])
def test_a_resized_copy_of_a_small_drawing_stays_near_only_enlarged(seed):
    # 96 pixels: PDQ's box filter is one pixel wide and reads the sharp outlines unsmoothed.
    original = drawing(seed)
    stored = hash_media(Settings(), encoded(original), "original")
    query = hash_media(Settings(), encoded(original.resize((48, 48), Image.Resampling.BICUBIC), "JPEG"),
                       "half", dihedral=True)
    whole = [v.hex for v in stored.hashes if v.signal == "pdq"][0]
    query_wholes = [v.hex for v in (*query.hashes, *query.dihedral) if v.signal == "pdq"]
    assert min(bits(whole, q) for q in query_wholes) > 31
    [mine] = [d for d in stored.derived if d.via == ENLARGED]
    [theirs] = [d for d in query.derived if d.via == ENLARGED]
    assert bits(mine.hash.hex, theirs.hash.hex) <= 12
    assert len(query.derived) <= MAX_DERIVED


def pattern(kind: str, period: int, side: int = 96, colour: tuple[int, int, int] = (200, 30, 30)) -> Image.Image:
    image = Image.new("RGB", (side, side), "white")
    draw = ImageDraw.Draw(image)
    for x in range(0, side, period):
        if kind == "checker":
            for y in range(0, side, period):
                if (x // period + y // period) % 2:
                    draw.rectangle((x, y, x + period - 1, y + period - 1), fill=colour)
        else:
            draw.line(((x, 0), (x, side - 1)), fill=colour, width=max(1, period // 2))
            draw.line(((0, x), (side - 1, x)), fill=colour, width=max(1, period // 2))
    return image


@pytest.mark.parametrize(("kind", "period", "side"), [("grid", 6, 96), ("grid", 8, 96), ("checker", 4, 96),
                                                      ("checker", 8, 160), ("checker", 6, 96)])
def test_a_fine_periodic_pattern_has_no_enlarged_copy(kind, period, side):
    # Found in a trial: such patterns' enlarged copies all hashed to aaaa5555... (or one of a
    # few values like it) at quality 100, so unrelated grids and stripes matched at 0-12 bits.
    rgb = np.asarray(pattern(kind, period, side))
    big = cv2.resize(rgb, enlarged.enlarged_size(side, side), interpolation=cv2.INTER_CUBIC)
    vector, quality = pdqhash.compute(np.ascontiguousarray(big))
    reference = format(int("".join(str(int(b)) for b in vector), 2), "064x")
    assert quality >= MIN_QUALITY  # the quality rule alone lets it through
    assert enlarged.parity_alike(reference) >= enlarged.PARITY_ALIKE
    assert enlarged.enlarged_pdqs(rgb, MIN_QUALITY) == ()


def test_parity_alike_counts_bits_by_the_parity_of_row_and_column():
    assert enlarged.parity_alike("aaaa5555" * 8) == enlarged.parity_alike("aaaaaaaa" * 8) == 256
    assert enlarged.parity_alike("ff00" * 16) == 128  # half of each class set: no parity class leans
    rng = random.Random(1)
    typical = [enlarged.parity_alike(f"{rng.getrandbits(256):064x}") for _ in range(200)]
    assert max(typical) < enlarged.PARITY_ALIKE


def test_enlarged_copies_of_different_patterns_are_never_near():
    # Found in a trial: over drawn patterns (7 kinds, periods 4 to 16, 48 to 160 px) 93 pairs of
    # different kinds had enlarged copies within 22 bits (the corroborated band), a diagonal
    # stripe and a square grid at 2. Their whole images are 70 to 128 bits apart.
    import itertools

    copies: dict[tuple[str, int, int], int] = {}
    for kind, period, side in itertools.product(("dots", "stripes", "diag", "checker", "rings", "grid"),
                                                (4, 6, 8, 12), (48, 96, 160)):
        image = Image.new("RGB", (side, side), "white")
        draw = ImageDraw.Draw(image)
        width = max(1, period // 2)
        for x in range(-side if kind == "diag" else 0, side, period):
            if kind == "dots":
                for y in range(0, side, period):
                    draw.ellipse((x, y, x + width, y + width), fill=(120, 0, 160))
            elif kind == "stripes":
                draw.line(((x, 0), (x, side)), fill=(200, 30, 30), width=width)
            elif kind == "diag":
                draw.line(((x, 0), (x + side, side)), fill=(200, 30, 30), width=width)
            elif kind == "checker":
                for y in range(0, side, period):
                    if (x // period + y // period) % 2:
                        draw.rectangle((x, y, x + period - 1, y + period - 1), fill=(20, 20, 20))
            elif kind == "rings" and x:
                draw.ellipse((side / 2 - x, side / 2 - x, side / 2 + x, side / 2 + x), outline=(40, 40, 200),
                             width=width)
            elif kind == "grid":
                draw.line(((x, 0), (x, side)), fill=(200, 30, 30), width=width)
                draw.line(((0, x), (side, x)), fill=(200, 30, 30), width=width)
        for made in enlarged.enlarged_pdqs(np.asarray(image), MIN_QUALITY):
            copies[(kind, period, side)] = int(made.hash.hex, 16)
    near = [(a, b) for a, b in itertools.combinations(copies, 2)
            if a[0] != b[0] and (copies[a] ^ copies[b]).bit_count() <= 22]
    assert near == []
