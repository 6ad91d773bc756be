"""The compiled kernel against its oracles: pdqhash (Meta's C++) for PDQ, Pillow and imagehash
for pHash's thumbnail. Every comparison is exact: floats, bits, qualities, bytes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import imagehash
import numpy as np
import pdqhash
import pytest
from PIL import Image

from hashdb.hashing import crops, kernel, pdq_core, pdq_dihedral
from hashdb.hashing.imagehashes import PHashSignal
from hashdb.hashing.pdq import PdqSignal, bits_to_hex

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "media"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# Pillow's transposes in pdq_dihedral.DIHEDRAL order (FLIP_LEFT_RIGHT is 0: compare with None).
TRANSPOSES = (None, Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_180, Image.Transpose.ROTATE_270,
              Image.Transpose.FLIP_TOP_BOTTOM, Image.Transpose.FLIP_LEFT_RIGHT, Image.Transpose.TRANSPOSE,
              Image.Transpose.TRANSVERSE)
# Under and over 64 on each side, 64x64 (no filter), odd sizes, very wide and tall, ~1024 px.
SHAPES = [(5, 5), (5, 9), (17, 31), (64, 64), (63, 64), (64, 65), (127, 129), (200, 33), (33, 200),
          (300, 517), (9, 2000), (2000, 9), (768, 1024), (1001, 999)]


@pytest.fixture(autouse=True)
def _kernel() -> None:
    # `pip install -e .` builds it when a C compiler is there; CI must have it.
    if not kernel.available():
        if IN_CI:
            pytest.fail("the compiled kernel (hashdb/hashing/_pdq_kernel.c) is required in CI but was not built")
        pytest.skip("the compiled kernel was not built (no C compiler at install time)")


def image(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # Smooth colour fields with some noise: real-looking DCTs, and every bit in play.
    small = rng.integers(0, 256, (max(2, h // 8), max(2, w // 8), 3), dtype=np.uint8)
    smooth = np.asarray(Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC))
    return np.clip(smooth.astype(np.int16) + rng.integers(-20, 21, (h, w, 3)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize(("h", "w"), SHAPES)
def test_dct_floats_and_quality_equal_pdqhash(h: int, w: int) -> None:
    rgb = image(h, w, h * 7919 + w)
    floats, qualities = kernel.KERNEL.pdq_float(rgb, h, w, rgb.strides[0], 3, pdq_core._DCT, False)
    want, quality = pdqhash.compute_float(rgb)
    np.testing.assert_array_equal(np.frombuffer(floats, dtype=np.float32)[::-1], want.astype(np.float32))
    assert qualities == (quality,)


def test_every_colour_gives_pdqhashs_floats() -> None:
    # All 2**24 colours, each once, in rows of a width that leaves the vectorised luma a tail
    # (4,101 = 16 * 256 + 5 pixels): the DCT floats of the whole and of a few strips equal
    # pdqhash's, so every pixel's luma went into the sums as the C++ computes it.
    colours = np.arange(2**24, dtype=np.uint32)
    flat = np.stack([colours >> 16, (colours >> 8) & 255, colours & 255], axis=1).astype(np.uint8)
    width = 4101
    rgb = np.concatenate([flat, flat[: -len(flat) % width]]).reshape(-1, width, 3)
    for part in (rgb, rgb[:64], rgb[-70:, :1000], rgb[100:160, 3:]):
        part = np.ascontiguousarray(part)
        floats, qualities = kernel.KERNEL.pdq_float(part, part.shape[0], part.shape[1], part.strides[0], 3,
                                                    pdq_core._DCT, False)
        want, quality = pdqhash.compute_float(part)
        np.testing.assert_array_equal(np.frombuffer(floats, dtype=np.float32)[::-1], want.astype(np.float32))
        assert qualities == (quality,)


@pytest.mark.parametrize(("h", "w"), SHAPES)
def test_dihedral_equals_pdqhash_of_each_pillow_transpose(h: int, w: int) -> None:
    rgb = image(h, w, h + 31 * w)
    picture = Image.fromarray(rgb)
    want = []
    for op in TRANSPOSES:
        bits, quality = pdqhash.compute(np.asarray(picture.transpose(op)) if op is not None else rgb)
        want.append((bits_to_hex(bits), quality))
    assert kernel.pdq(rgb, dihedral=True) == tuple(want)
    assert kernel.pdq(rgb, dihedral=False) == (want[0],)


def transposes_pdq(rgb: np.ndarray, compute=pdqhash.compute) -> list:  # type: ignore[no-untyped-def]
    picture = Image.fromarray(rgb)
    return [compute(np.asarray(picture.transpose(op)) if op is not None else rgb) for op in TRANSPOSES]


@pytest.mark.parametrize(("h", "w"), [(5, 7), (63, 65), (64, 64), (200, 33), (767, 1023)])
def test_dihedral_dct_floats_equal_pdqhash_of_each_transpose(h: int, w: int) -> None:
    # Stronger than the bits: every one of the 8 x 256 DCT floats, so that a rounding step
    # done in another order (the box sums, the divides, the luma) shows even where no bit flips.
    rng = np.random.default_rng(h * 1009 + w)
    rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    floats, qualities = kernel.KERNEL.pdq_float(rgb, h, w, rgb.strides[0], 3, pdq_core._DCT, True)
    ours = np.frombuffer(floats, dtype=np.float32).reshape(8, 256)
    for o, (want, quality) in enumerate(transposes_pdq(rgb, pdqhash.compute_float)):
        np.testing.assert_array_equal(ours[o][::-1], want.astype(np.float32), err_msg=f"variant {o}")
        assert qualities[o] == quality, f"variant {o}"


# Seeded noise of odd sizes, down to sizes below PDQ's minimum side (all-zero hash, quality 0).
@pytest.mark.parametrize(("h", "w"), [(1, 1), (2, 3), (4, 9), (63, 65), (1023, 767)])
def test_signal_dihedral_of_odd_sizes_equals_pdqhash(h: int, w: int) -> None:
    rgb = np.random.default_rng(h + 7 * w).integers(0, 256, (h, w, 3), dtype=np.uint8)
    want = [(bits_to_hex(bits), quality) for bits, quality in transposes_pdq(rgb)]
    got = [(v.hex, v.quality) for v in PdqSignal().dihedral_array(rgb)]
    assert got == want


@pytest.mark.parametrize(("h", "w"), [(5, 5), (64, 64), (127, 129), (33, 200)])
def test_kernel_equals_the_numpy_port(h: int, w: int) -> None:
    # The port is what runs when the kernel could not be built: same hashes.
    rgb = image(h, w, 5 * h + w)
    assert kernel.pdq(rgb, dihedral=True) == pdq_dihedral.pdq_dihedral_hex(rgb)


def test_non_contiguous_arrays_are_hashed_as_their_pixels() -> None:
    rgb = image(90, 120, 3)
    view = np.ascontiguousarray(rgb[:, ::-1])[:, ::-1]  # a strided view of the same pixels
    assert kernel.pdq(rgb[10:80, 5:100], dihedral=False) == kernel.pdq(np.ascontiguousarray(rgb[10:80, 5:100]), False)
    assert kernel.pdq(view, dihedral=True) == kernel.pdq(rgb, dihedral=True)


def thumbnail_oracle(picture: Image.Image) -> np.ndarray:
    return np.asarray(picture.convert("L").resize((32, 32), Image.Resampling.LANCZOS))


# Both of Pillow 13's pass orders (vertical first when the height shrinks by more than twice
# the width), upscaling on one or both sides, exactly 32 on one side, and a row so long that
# its taps' 16-bit halves could overflow 32-bit sums (the 32-bit products then).
@pytest.mark.parametrize(("h", "w"), [(1, 1), (7, 5), (32, 32), (32, 500), (500, 32), (31, 32), (42, 34),
                                      (42, 40), (60, 45), (90, 60), (1000, 3), (3, 1000), (1531, 97),
                                      (768, 1024), (1024, 768), (2, 40000)])
def test_thumbnail_equals_pillows(h: int, w: int) -> None:
    rgb = image(h, w, h * 3 + w)
    picture = Image.fromarray(rgb)
    if not kernel._PILLOW_RULE:
        pytest.skip("the kernel follows Pillow 13's resize; this Pillow is older")
    np.testing.assert_array_equal(kernel.grey_thumbnail(rgb, 32), thumbnail_oracle(picture))
    grey = np.asarray(picture.convert("L"))
    np.testing.assert_array_equal(kernel.grey_thumbnail(grey, 32), thumbnail_oracle(picture))


def test_every_colour_gives_pillows_grey() -> None:
    # All 2**24 colours, each once, in a 4096 x 4096 image thumbnailed to its own size (no
    # resampling): the kernel's grey conversion, its vectorised loop and its scalar tail, is
    # Pillow's convert("L") for every colour.
    colours = np.arange(2**24, dtype=np.uint32)
    rgb = np.stack([colours >> 16, (colours >> 8) & 255, colours & 255], axis=1).astype(np.uint8)
    rgb = rgb.reshape(4096, 4096, 3)
    np.testing.assert_array_equal(kernel.grey_thumbnail(rgb, 4096), np.asarray(Image.fromarray(rgb).convert("L")))


def media_images() -> list[Path]:
    return sorted(p for p in FIXTURES.iterdir() if p.suffix in (".jpg", ".png") and "corrupt" not in p.name)


@pytest.mark.parametrize("path", media_images(), ids=lambda p: p.name)
def test_phash_from_the_array_equals_imagehash(path: Path) -> None:
    with Image.open(path) as opened:
        picture = opened.convert("RGB")
    rgb = np.asarray(picture)
    np.testing.assert_array_equal(kernel.grey_thumbnail(rgb, 32), thumbnail_oracle(picture))
    assert PHashSignal().compute_rgb(picture, rgb).hex == str(imagehash.phash(picture))


def _tied(kind: str) -> Image.Image:
    """Thumbnails whose DCT has exact ties with its median (symmetry zeroes coefficients), where
    the bits come from rounding noise: pHash must then take SciPy's own DCT, as imagehash does."""
    rng = np.random.default_rng(5)
    if kind == "flat":
        return Image.new("RGB", (300, 200), (120, 130, 140))
    half = rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)
    if kind == "mirrored":
        return Image.fromarray(np.concatenate([half, half[:, ::-1]], axis=1))
    return Image.fromarray(np.concatenate([half, half[::-1]], axis=0))  # "mirrored top to bottom"


@pytest.mark.parametrize("kind", ["flat", "mirrored", "mirrored top to bottom"])
def test_phash_of_symmetric_images_equals_imagehash(kind: str) -> None:
    picture = _tied(kind)
    assert PHashSignal().compute_rgb(picture, np.asarray(picture)).hex == str(imagehash.phash(picture))


def test_phash_of_a_photo_needs_no_scipy() -> None:
    # SciPy's FFT costs a quarter of a second to import: a photo's pHash is made without it.
    code = ("import sys; import numpy as np; from PIL import Image; "
            "from hashdb.hashing.imagehashes import PHashSignal; "
            f"picture = Image.open({str(FIXTURES / 'chelsea.jpg')!r}).convert('RGB'); "
            "print(PHashSignal().compute_rgb(picture, np.asarray(picture)).hex); "
            "print(any(m.startswith('scipy') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    with Image.open(FIXTURES / "chelsea.jpg") as opened:
        assert out == [str(imagehash.phash(opened.convert("RGB"))), "False"]


@pytest.mark.vectors
def test_phash_and_pdq_of_every_vector_image(vectors: Path) -> None:
    paths = sorted(p for p in (vectors / "pdq").rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png")
                   and "exif-rotn" not in p.parts)
    assert len(paths) >= 25
    for path in paths:
        with Image.open(path) as opened:
            picture = opened.convert("RGB")
        rgb = np.asarray(picture)
        assert PHashSignal().compute_rgb(picture, rgb).hex == str(imagehash.phash(picture)), path.name
        if min(rgb.shape[:2]) >= 5:
            bits, quality = pdqhash.compute(rgb)
            assert kernel.pdq(rgb, dihedral=False) == ((bits_to_hex(bits), quality),), path.name


def test_threads_hashing_at_once_get_the_serial_answers() -> None:
    # The kernel runs without the GIL and keeps its work arrays between calls: threads hashing
    # images of different sizes at once must each get what a lone call gives.
    from concurrent.futures import ThreadPoolExecutor

    images = [image(h, w, h + w) for h, w in ((300, 517), (64, 64), (767, 1023), (33, 200), (5, 9))] * 4
    alone = [kernel.pdq(rgb, dihedral=n % 2 == 0) for n, rgb in enumerate(images)]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda n: kernel.pdq(images[n], dihedral=n % 2 == 0), range(len(images))))
    assert together == alone


# ---------------------------------------------------------------- one filter (what lookups query)


@pytest.mark.parametrize(("h", "w"), [(5, 5), (64, 64), (100, 37), (127, 129), (200, 33), (33, 200), (300, 517),
                                      (767, 1023)])
def test_one_filter_kernel_equals_the_numpy_port(h: int, w: int) -> None:
    rgb = image(h, w, 3 * h + w)
    assert kernel.pdq(rgb, dihedral=True, one_filter=True) == pdq_dihedral.pdq_one_filter_hex(rgb)


@pytest.mark.parametrize(("h", "w"), SHAPES)
def test_one_filter_upright_is_pdqhash_and_the_turned_are_near_each_turned_image(h: int, w: int) -> None:
    rgb = image(h, w, h + 31 * w)
    got = kernel.pdq(rgb, dihedral=True, one_filter=True)
    want = [(bits_to_hex(bits), quality) for bits, quality in transposes_pdq(rgb)]
    assert got is not None and got[0] == want[0]
    pdq = PdqSignal()
    for o, ((hex_got, q_got), (hex_want, q_want)) in enumerate(zip(got, want)):
        # This per-pixel noise is the hard case: the cells next to a border (a 200-pixel side,
        # whose window of 2 barely averages) move 12-16 bits; anything else is a few.
        assert pdq.distance(hex_got, hex_want) <= 16, f"variant {o}"
        assert abs(q_got - q_want) <= 1, f"variant {o}"


@pytest.mark.parametrize(("h", "w"), [(100, 37), (128, 128), (5, 128), (90, 64)])
def test_one_filter_is_exact_where_no_side_is_filtered(h: int, w: int) -> None:
    # Sides up to 128 pixels have a window of 1: nothing to run backwards, so every turned
    # image's cells are the upright cells mirrored, to the float.
    rgb = image(h, w, h * w)
    want = [(bits_to_hex(bits), quality) for bits, quality in transposes_pdq(rgb)]
    assert kernel.pdq(rgb, dihedral=True, one_filter=True) == tuple(want)


def test_one_filter_of_fixture_photos_is_within_a_few_bits_of_each_turned_image() -> None:
    pdq = PdqSignal()
    names = ("astronaut.jpg", "chelsea.jpg", "coffee.jpg", "rocket.jpg", "camera_jpeg30.jpg")
    for path in (FIXTURES / name for name in names):
        with Image.open(path) as opened:
            rgb = np.asarray(opened.convert("RGB"))
        want = [bits_to_hex(bits) for bits, _ in transposes_pdq(rgb)]
        got = [v.hex for v in pdq.dihedral_one_filter_array(rgb)]
        assert got[0] == want[0], path.name
        assert max(pdq.distance(a, b) for a, b in zip(got, want)) <= 4, path.name


def test_a_crop_is_hashed_where_it_lies_and_other_strides_are_refused() -> None:
    # kernel.pdq hands a crop's rows to the kernel in place; the kernel takes a strided buffer
    # only when its strides are the rows and packed pixels it was told.
    rgb = image(200, 300, 9)
    crop = rgb[17:180, 23:290]
    assert not crop.flags.c_contiguous
    floats, qualities = kernel.KERNEL.pdq_float(crop, 163, 267, rgb.strides[0], 3, pdq_core._DCT, 0)
    want, quality = pdqhash.compute_float(np.ascontiguousarray(crop))
    np.testing.assert_array_equal(np.frombuffer(floats, dtype=np.float32)[::-1], want.astype(np.float32))
    assert qualities == (quality,)
    for bad in ((crop, 163, 267, 3 * 267), (crop, 162, 267, rgb.strides[0]), (rgb[:, ::2], 200, 150, rgb.strides[0])):
        with pytest.raises(ValueError, match="strided other than as given"):
            kernel.KERNEL.pdq_float(*bad, 3, pdq_core._DCT, 0)


def test_a_kernel_built_before_strided_crops_gets_copies(monkeypatch: pytest.MonkeyPatch) -> None:
    # An editable checkout may still hold an older build; kernel.pdq then copies a crop out.
    assert kernel._STRIDED
    rgb = image(120, 150, 2)
    want = kernel.pdq(rgb[10:100, 20:140], dihedral=False)
    monkeypatch.setattr(kernel, "_STRIDED", False)
    assert kernel.pdq(rgb[10:100, 20:140], dihedral=False) == want


def test_row_medians_equal_numpys_on_strided_views() -> None:
    # regions._median's kernel path: np.median(...).astype(np.int16) of each row, odd and even
    # lengths, the extremes, and the strided views the detectors pass (every k-th pixel of a
    # line, the planes' columns).
    rng = np.random.default_rng(5)
    planes = rng.integers(0, 256, (3, 40, 301)).astype(np.int16)
    planes[:, ::3, ::7] = 255
    planes[:, 1::3, ::5] = 0
    views = [planes, planes[:, :, ::3], planes[:, ::2, 1::5], planes.transpose(0, 2, 1)[:, :, ::4],
             planes[1, 3, ::2], planes[:, :, :1], planes[:, :, :2], planes[0, :, 100:228]]
    for view in views:
        got = kernel.row_medians(view)
        assert got is not None and got.dtype == np.int16 and got.shape == view.shape[:-1]
        np.testing.assert_array_equal(got, np.median(view, axis=-1).astype(np.int16))


def test_row_medians_refuse_values_outside_a_byte() -> None:
    for row in ([3, 256, 7], [3, -1, 7]):
        with pytest.raises(ValueError, match="outside 0..255"):
            kernel.row_medians(np.array([row], dtype=np.int16))


def test_regions_from_one_luma_equal_pdqhash_of_their_pixels() -> None:
    # kernel.Luma: the luma of an image made once, each region's PDQ filtered from its part of
    # it (the derived hashes' regions, crops and corner masks). Every region must hash as
    # pdqhash hashes its pixels (bits and quality), the smallest sides and 64 x 64 included.
    rng = np.random.default_rng(21)
    for h, w in [(341, 512), (512, 384), (64, 64), (70, 9), (5, 5)]:
        rgb = image(h, w, h + w)
        luma = kernel.Luma(rgb)
        assert luma.plane is not None and luma.plane.shape == (h, w)
        boxes = [(0, 0, w, h), (0, 0, 64, 64) if min(h, w) >= 64 else (0, 0, 5, 5), (w - 5, h - 5, w, h)]
        for _ in range(12):
            x0, x1 = sorted(int(v) for v in rng.integers(0, w + 1, 2))
            y0, y1 = sorted(int(v) for v in rng.integers(0, h + 1, 2))
            if min(x1 - x0, y1 - y0) >= pdq_core.MIN_HASHABLE_DIM:
                boxes.append((x0, y0, x1, y1))
        for left, top, right, bottom in boxes:
            pixels = np.ascontiguousarray(rgb[top:bottom, left:right])
            want_hash, want_quality = pdqhash.compute(pixels)
            assert luma.pdq(left, top, right, bottom) == (bits_to_hex(want_hash), want_quality), (h, w, left, top)
            assert PdqSignal().compute_region(luma, left, top, right, bottom) == PdqSignal().compute_array(pixels)
    # Under MIN_HASHABLE_DIM the caller hashes the pixels (the all-zero hash, quality 0).
    assert kernel.Luma(image(40, 40, 1)).pdq(0, 0, 4, 40) is None


def test_many_regions_in_one_call_equal_pdqhash_of_their_pixels() -> None:
    # Luma.pdqs: a lookup's windows and a stored image's crops filtered in one kernel call;
    # each as pdqhash hashes the region's pixels, a box too small to filter left to the caller.
    rng = np.random.default_rng(5)
    rgb = image(171, 256, 3)
    luma = kernel.Luma(rgb)
    boxes = [(0, 0, 256, 171), (0, 0, 64, 64), (200, 100, 256, 171), (3, 3, 6, 171), (10, 10, 14, 14)]
    # Boxes sharing their columns share the first pass: stacked windows, overlapping or apart,
    # and 64 x 64 boxes among them (hashed unfiltered, as pdqhash does).
    boxes += [*crops.window_boxes(256, 171), (0, 3, 64, 67), (0, 100, 64, 171), (0, 50, 64, 114), (0, 9, 64, 20)]
    for _ in range(10):
        x0, x1 = sorted(int(v) for v in rng.integers(0, 257, 2))
        y0, y1 = sorted(int(v) for v in rng.integers(0, 172, 2))
        boxes.append((x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)))
    got = luma.pdqs(boxes)
    for (left, top, right, bottom), value in zip(boxes, got, strict=True):
        if min(right - left, bottom - top) < pdq_core.MIN_HASHABLE_DIM:
            assert value is None
            continue
        want_hash, want_quality = pdqhash.compute(np.ascontiguousarray(rgb[top:bottom, left:right]))
        assert value == (bits_to_hex(want_hash), want_quality), (left, top, right, bottom)
    assert luma.pdqs([]) == []
    hashes = [PdqSignal().compute_region(luma, *box) for box in boxes]
    assert PdqSignal().compute_regions(luma, boxes) == hashes


def test_hexes_of_many_dcts_equal_one_at_a_time() -> None:
    rng = np.random.default_rng(6)
    dcts = rng.normal(0, 100, (20, 256)).astype(np.float32)
    dcts[3] = 1.0  # ties with the median: none above it
    dcts[4, ::2] = 0.0
    assert kernel.dct_hexes(dcts) == [pdq_core.dct_hex(d.reshape(16, 16)) for d in dcts]


def test_a_filled_copys_luma_hashes_as_the_filled_pixels() -> None:
    # The corner masks' copies: the plane copied with one box at the fill colour's luma.
    rgb = image(170, 256, 9)
    luma = kernel.Luma(rgb)
    for box, fill in [((0, 0, 128, 68), (255, 0, 7)), ((128, 102, 256, 170), (13, 200, 90)), ((3, 4, 3, 9), (0, 0, 0))]:
        colour = np.array(fill, dtype=np.uint8)
        covered = rgb.copy()
        covered[box[1]:box[3], box[0]:box[2]] = colour
        filled = luma.filled(box, colour)
        np.testing.assert_array_equal(filled.rgb, covered)
        want_hash, want_quality = pdqhash.compute(covered)
        assert filled.pdq(0, 0, 256, 170) == (bits_to_hex(want_hash), want_quality)
    assert kernel.Luma(rgb).pdq(0, 0, 256, 170) == luma.pdq(0, 0, 256, 170)  # the source plane is unchanged


def test_without_the_luma_entry_points_regions_hash_their_pixels(monkeypatch: pytest.MonkeyPatch) -> None:
    # A kernel built before luma_plane (an editable checkout's older .so): the same hashes.
    rgb = image(120, 150, 4)
    want = PdqSignal().compute_region(kernel.Luma(rgb), 10, 20, 140, 100)
    monkeypatch.setattr(kernel, "_LUMA", None)
    luma = kernel.Luma(rgb)
    assert luma.plane is None and luma.pdq(10, 20, 140, 100) is None
    assert PdqSignal().compute_region(luma, 10, 20, 140, 100) == want
    covered = rgb.copy()
    covered[0:50, 0:50] = (1, 2, 3)
    filled = luma.filled((0, 0, 50, 50), np.array([1, 2, 3], np.uint8))
    assert PdqSignal().compute_region(filled, 0, 0, 150, 120) == PdqSignal().compute_array(covered)


def test_near_counts_equal_numpys_on_strided_views() -> None:
    # regions._near_counts' kernel path: per line, the pixels whose every channel is within the
    # tolerance of the line's colour (or of one colour for all), on the views the detectors
    # pass: rows, columns (a transposed view), reversed, sampled, one line, one position.
    rng = np.random.default_rng(8)
    planes = rng.integers(0, 256, (3, 50, 301)).astype(np.int16)
    planes[:, ::2, ::3] = 100
    views = [planes, planes[:, :, ::3], planes[:, ::2, 1::5], planes.transpose(0, 2, 1),
             planes.transpose(0, 2, 1)[:, ::-1], planes[:, ::-1], planes[:, :, ::-1], planes[:, 3:4],
             planes[:, :, :1], planes[:, 10:40, 20:200].transpose(0, 2, 1)[:, ::-1, ::2]]
    for view in views:
        for colours in (view[:, :, 0], view[:, :, -1], np.array([100, 90, 124], np.int16)):
            for tolerance in (0, 24, 255):
                spread = colours[:, :, None] if colours.ndim == 2 else colours[:, None, None]
                want = np.count_nonzero(np.all(np.abs(view - spread) <= tolerance, axis=0), axis=1)
                got = kernel.near_counts(view, colours, tolerance)
                assert got is not None
                np.testing.assert_array_equal(got, want)


def test_row_medians_of_rows_in_blocks_and_of_long_rows() -> None:
    # Rows go through in blocks of 16 (16-bit counts) below 65,536 samples, one at a time in
    # 32-bit counts from there: a block's last partial group, runs of one value (every count
    # in one table), and a row too long for 16-bit counts.
    rng = np.random.default_rng(13)
    planes = rng.integers(0, 256, (2, 37, 255)).astype(np.int16)
    planes[0, :5] = 7
    planes[1, 20:] = rng.integers(250, 256, (17, 255))
    for view in (planes, planes.transpose(0, 2, 1), planes[:, ::-1, ::-2]):
        got = kernel.row_medians(view)
        assert got is not None
        np.testing.assert_array_equal(got, np.median(view, axis=-1).astype(np.int16))
    long = rng.integers(0, 256, (3, 70_001)).astype(np.int16)
    long[1] = 255
    got = kernel.row_medians(long)
    assert got is not None
    np.testing.assert_array_equal(got, np.median(long, axis=-1).astype(np.int16))


def test_planes_equal_numpys_on_strided_views() -> None:
    # regions.planes' kernel path, on the views the detectors pass: the work copy, every k-th
    # pixel, crops, reversed rows, transposed (columns as lines), empty.
    rgb = image(171, 256, 12)
    for view in [rgb, rgb[::2, ::3], rgb[10:150, 20:200], rgb[::-1], rgb.transpose(1, 0, 2),
                 rgb[5:9].transpose(1, 0, 2)[::-1], rgb[:0], rgb[:, :1]]:
        got = kernel.planes(view)
        want = np.ascontiguousarray(view.transpose(2, 0, 1), dtype=np.int16)
        assert got is not None and got.dtype == np.int16 and got.flags.c_contiguous
        np.testing.assert_array_equal(got, want)
    assert kernel.planes(rgb.astype(np.int16)) is None
