"""PDQ against Meta's published vectors and, bit for bit, against pdqhash (Meta's C++ behind a
binding: the oracle, installed with the test extra only).

Images for the `pytx-exact` rows are read as python-threatexchange reads them: Image.open,
then convert("RGB") for LA and I;16. Synthetic images are seeded, so a failure reproduces.
"""

from __future__ import annotations

import csv
import functools
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pdqhash
import pytest
from PIL import Image

from hashdb.errors import InvalidInput
from hashdb.hashing import pdq_core
from hashdb.hashing.media import decode_image
from hashdb.hashing.pdq import DIHEDRAL_NAMES, PdqSignal, bits_to_hex

PDQ = PdqSignal()
# pytx's names for Pillow's transposes (see ../shared/vectors/README.md).
PILLOW_OPS = {
    "original": None,
    "rotate90": Image.Transpose.ROTATE_90,
    "rotate180": Image.Transpose.ROTATE_180,
    "rotate270": Image.Transpose.ROTATE_270,
    "flipx": Image.Transpose.FLIP_TOP_BOTTOM,
    "flipy": Image.Transpose.FLIP_LEFT_RIGHT,
    "flipplus1": Image.Transpose.TRANSPOSE,
    "flipminus1": Image.Transpose.TRANSVERSE,
}


def distance(a: str, b: str) -> int:
    # Python integers: independent of the numpy code under test.
    return (int(a, 16) ^ int(b, 16)).bit_count()


def oracle(rgb: np.ndarray) -> tuple[str, int]:
    # Hex as python-threatexchange formats pdqhash's bit vector (not our bits_to_hex).
    bits, quality = pdqhash.compute(np.ascontiguousarray(rgb))
    return format(int("".join(str(int(b)) for b in bits), 2), "064x"), int(quality)


def rows(vectors: Path, *sources: str) -> list[dict[str, str]]:
    with (vectors / "pdq" / "expected.csv").open(newline="") as handle:
        found = [row for row in csv.DictReader(handle) if row["source"] in sources]
    assert found, f"no rows with source {sources} in expected.csv"
    return found


def pytx_open(path: Path) -> Image.Image:
    with Image.open(path) as image:
        image.load()
        return image.convert("RGB") if image.mode in ("LA", "I;16") else image.copy()


@functools.cache
def rgb_of(path: Path) -> np.ndarray:
    # Cached: the 12-megapixel vector photos are decoded once for the whole module.
    with Image.open(path) as image:
        rgb = np.asarray(image.convert("RGB"))
    rgb.flags.writeable = False
    return rgb


# ---------------------------------------------------------------- reference vectors


@pytest.mark.vectors
def test_pytx_exact_rows_bit_for_bit(vectors: Path) -> None:
    wrong = []
    for row in rows(vectors, "pytx-exact"):
        got = PDQ.compute(pytx_open(vectors / "pdq" / row["file"]))
        want_quality = int(row["quality"]) if row["quality"] else got.quality
        if (got.hex, got.quality) != (row["pdq_hex"], want_quality):
            wrong.append(f"{row['file']}: {got.hex} q{got.quality}, want {row['pdq_hex']} q{row['quality']}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.vectors
def test_pytx_exact_rows_through_media_decoding(vectors: Path) -> None:
    # The production path (media.decode_image, then compute) must hash these files as pytx does.
    for row in rows(vectors, "pytx-exact"):
        decoded = decode_image((vectors / "pdq" / row["file"]).read_bytes())
        assert PDQ.compute(decoded.rgb).hex == row["pdq_hex"], row["file"]


@pytest.mark.vectors
def test_reference_hashers_within_10_bits_where_quality_is_80_or_more(vectors: Path) -> None:
    checked, wrong = 0, []
    for row in rows(vectors, "cpp-reference", "java-reference"):
        got = PDQ.compute_array(rgb_of(vectors / "pdq" / row["file"]))
        quality = int(row["quality"]) if row["quality"] else got.quality
        if quality < 80:
            continue
        checked += 1
        if distance(got.hex, row["pdq_hex"]) > 10:
            wrong.append(f"{row['file']} ({row['source']}): {distance(got.hex, row['pdq_hex'])} bits")
    assert checked >= 20
    assert not wrong, "\n".join(wrong)


@pytest.mark.vectors
def test_dihedral_of_la_png_matches_pytx(vectors: Path) -> None:
    want = {row["source"].removeprefix("pytx-exact-dihedral-"): row["pdq_hex"]
            for row in rows(vectors, *(f"pytx-exact-dihedral-{name}" for name in DIHEDRAL_NAMES))}
    assert set(want) == set(DIHEDRAL_NAMES)
    got = PDQ.dihedral(pytx_open(vectors / "pdq" / "pytx" / "LA.png"))
    assert [value.hex for value in got] == [want[name] for name in DIHEDRAL_NAMES]


@pytest.mark.vectors
@pytest.mark.parametrize(
    ("name", "quality"),
    [("misc-images/small.jpg", 0), ("reg-test-input/labelme-subset/q0003.jpg", 3),
     ("reg-test-input/labelme-subset/q0004.jpg", 4), ("pytx/I16.png", 36)],
)
def test_known_qualities_from_the_vectors_readme(vectors: Path, name: str, quality: int) -> None:
    assert PDQ.compute(pytx_open(vectors / "pdq" / name)).quality == quality


def vector_images(vectors: Path) -> list[Path]:
    found = sorted(p for p in (vectors / "pdq").rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    assert len(found) >= 30
    return found


def equals_oracle(paths: list[Path]) -> None:
    for path in paths:
        rgb = rgb_of(path)
        got = PDQ.compute_array(rgb)
        assert (got.hex, got.quality) == oracle(rgb), path.name


@pytest.mark.vectors
def test_every_vector_image_equals_pdqhash(vectors: Path) -> None:
    # The four 12-megapixel exif-rotn photos take seconds through pdqhash: the slow test below
    # has them (the default run has 4000-pixel synthetic images).
    equals_oracle([p for p in vector_images(vectors) if "exif-rotn" not in p.parts])


@pytest.mark.vectors
@pytest.mark.slow
def test_every_large_vector_image_equals_pdqhash(vectors: Path) -> None:
    equals_oracle([p for p in vector_images(vectors) if "exif-rotn" in p.parts])


# ---------------------------------------------------------------- synthetic images vs pdqhash


def _noise(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _smooth(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    small = rng.integers(0, 256, (max(1, h // 16), max(1, w // 16), 3), dtype=np.uint8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC).reshape(h, w, 3)


def _gradient(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    angle = rng.uniform(0, 2 * np.pi)
    y, x = np.mgrid[0:h, 0:w]
    ramp = (np.cos(angle) * x + np.sin(angle) * y).astype(np.float64)
    ramp = (ramp - ramp.min()) / max(np.ptp(ramp), 1.0)
    colour = rng.uniform(0, 255, 3)
    return np.clip(ramp[..., None] * colour, 0, 255).astype(np.uint8)


def _grey(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    return np.repeat(_smooth(rng, h, w)[..., :1], 3, axis=2)


def _flat(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    return np.broadcast_to(rng.integers(0, 256, 3, dtype=np.uint8), (h, w, 3)).copy()


def _blocks(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    cells = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    return cv2.resize(cells, (w, h), interpolation=cv2.INTER_NEAREST).reshape(h, w, 3)


def _extremes(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    # Only 0 and 255: the largest luma values and the largest running sums.
    return (rng.integers(0, 2, (h, w, 3), dtype=np.uint8) * 255).astype(np.uint8)


KINDS: dict[str, Callable[[np.random.Generator, int, int], np.ndarray]] = {
    "noise": _noise, "smooth": _smooth, "gradient": _gradient, "grey": _grey,
    "flat": _flat, "blocks": _blocks, "extremes": _extremes,
}
# (height, width, kind): tiny (under the 5-pixel minimum), the 64x64 no-filter case and its
# neighbours, odd sizes, window sizes from 1 up, very wide and very tall, ~1024 and ~4000 px.
SYNTHETIC = [
    (1, 1, "noise"), (2, 3, "noise"), (4, 4, "smooth"), (4, 300, "gradient"), (5, 5, "noise"),
    (5, 6, "extremes"), (7, 5, "grey"), (31, 17, "smooth"), (63, 64, "noise"), (64, 64, "smooth"),
    (64, 64, "flat"), (64, 63, "gradient"), (65, 64, "blocks"), (127, 129, "smooth"),
    (128, 128, "noise"), (129, 257, "grey"), (200, 200, "flat"), (333, 517, "smooth"),
    (517, 333, "extremes"), (9, 2000, "smooth"), (2000, 9, "gradient"), (60, 1000, "noise"),
    (1000, 60, "blocks"), (480, 640, "gradient"), (768, 1024, "smooth"), (1024, 768, "noise"),
    (1024, 1024, "blocks"), (999, 1001, "grey"), (301, 4000, "smooth"), (4000, 257, "noise"),
    # Windows wider than the port's block of 64 steps: 9000 and 17000 pixels wide.
    (6, 9000, "noise"), (40, 17000, "smooth"),
]


def _synthetic(index: int) -> np.ndarray:
    h, w, kind = SYNTHETIC[index]
    return KINDS[kind](np.random.default_rng(1000 + index), h, w)


@pytest.mark.parametrize("index", range(len(SYNTHETIC)), ids=[f"{h}x{w}-{k}" for h, w, k in SYNTHETIC])
def test_synthetic_images_equal_pdqhash(index: int) -> None:
    rgb = _synthetic(index)
    got = PDQ.compute_array(rgb)
    assert (got.hex, got.quality) == oracle(rgb)


@pytest.mark.parametrize("index", [i for i, (h, w, _) in enumerate(SYNTHETIC) if min(h, w) >= 5])
def test_dct_floats_equal_pdqhash_before_thresholding(index: int) -> None:
    # Stronger than the bits: every float of the 16x16 DCT, so an ulp of difference in the
    # filter or the DCT's summation order shows even where no bit flips.
    rgb = _synthetic(index)
    floats, quality = pdqhash.compute_float(np.ascontiguousarray(rgb))
    ours, our_quality = pdq_core.pdq_float(rgb)
    np.testing.assert_array_equal(ours.ravel()[::-1], floats.astype(np.float32))
    assert our_quality == quality


@pytest.mark.slow
@pytest.mark.parametrize(("h", "w"), [(3000, 4000), (4000, 2250), (4096, 4096)])
def test_large_images_equal_pdqhash(h: int, w: int) -> None:
    rgb = _smooth(np.random.default_rng(h * w), h, w)
    got = PDQ.compute_array(rgb)
    assert (got.hex, got.quality) == oracle(rgb)


def _box1d_reference(x: np.ndarray, window: int) -> list[np.float32]:
    # box1DFloat from downscaling.cpp, one float32 scalar operation at a time.
    f32 = np.float32
    half = (window + 2) // 2
    total, count, left, right, out = f32(0.0), 0, 0, 0, []
    for _ in range(half - 1):
        total, count, right = f32(total + x[right]), count + 1, right + 1
    for _ in range(window - half + 1):
        total, count, right = f32(total + x[right]), count + 1, right + 1
        out.append(f32(total / f32(count)))
    for _ in range(len(x) - window):
        total = f32(f32(total + x[right]) - x[left])
        out.append(f32(total / f32(count)))
        left, right = left + 1, right + 1
    for _ in range(half - 1):
        total, count, left = f32(total - x[left]), count - 1, left + 1
        out.append(f32(total / f32(count)))
    return out


@pytest.mark.parametrize(
    ("n", "lanes", "window"),
    [(5, 1, 1), (2000, 1, 16), (300, 2, 3), (301, 3, 5), (129, 7, 2), (500, 64, 4), (61, 1600, 8)],
)
def test_box_passes_equal_the_cpp_loop(n: int, lanes: int, window: int) -> None:
    # Narrow and wide lane counts take different paths (np.add.reduce, per-step loops).
    x = (np.random.default_rng(n * lanes).random((n, lanes)) * 255).astype(np.float32)
    want = np.array([_box1d_reference(x[:, lane], window) for lane in range(lanes)], dtype=np.float32).T
    keep = pdq_core.decimation_indices(n)
    np.testing.assert_array_equal(pdq_core.box_sampled(x, window, keep), want[keep])
    full = np.empty((lanes, n), dtype=np.float32)
    pdq_core.box_into_transposed(x, window, full)
    np.testing.assert_array_equal(full.T, want)


def test_threads_hash_large_images_alike() -> None:
    # Large images reuse per-thread scratch memory: threads must not share it.
    images = [_smooth(np.random.default_rng(seed), 2100, 2000) for seed in (1, 2, 3)]
    want = [oracle(rgb) for rgb in images]
    with ThreadPoolExecutor(max_workers=3) as pool:
        got = list(pool.map(lambda rgb: PDQ.compute_array(rgb), images * 2))
    assert [(v.hex, v.quality) for v in got] == want * 2


def test_fixture_images_equal_pdqhash(media: Path) -> None:
    paths = sorted(p for p in media.iterdir() if p.suffix in (".jpg", ".png", ".gif") and "corrupt" not in p.stem)
    assert paths, f"no images in {media}"
    for path in paths:
        rgb = rgb_of(path)
        got = PDQ.compute_array(rgb)
        assert (got.hex, got.quality) == oracle(rgb), path.name


def test_luma_equals_pdqhash_formula_for_every_colour() -> None:
    # The port computes luma as (299R + 587G + 114B) / 1000 in float32; pdqhash computes
    # R*0.299 + G*0.587 + B*0.114 in float64 and rounds. Prove them equal on all 2**24 colours.
    g, b = np.mgrid[0:256, 0:256].astype(np.uint8)
    for r in range(256):
        rgb = np.stack((np.full_like(g, r), g, b), axis=2)
        want = (rgb[:, :, 0] * 0.299 + rgb[:, :, 1] * 0.587 + rgb[:, :, 2] * 0.114).astype(np.float32)
        np.testing.assert_array_equal(pdq_core.luma(rgb), want)


def test_flat_image_has_quality_zero() -> None:
    assert PDQ.compute_array(np.full((300, 200, 3), 77, dtype=np.uint8)).quality == 0


def test_images_under_five_pixels_get_the_zero_hash() -> None:
    got = PDQ.compute_array(np.full((4, 1000, 3), 200, dtype=np.uint8))
    assert (got.hex, got.quality) == ("0" * 64, 0)
    assert all(v.hex == "0" * 64 for v in PDQ.dihedral(Image.new("RGB", (3, 50), "red")))


# ---------------------------------------------------------------- dihedral


@pytest.mark.parametrize(("h", "w", "kind"), [(64, 64, "noise"), (6, 9, "noise"), (100, 37, "smooth"),
                                              (333, 517, "gradient"), (480, 640, "blocks")])
def test_dihedral_equals_pdqhash_of_each_pillow_transpose(h: int, w: int, kind: str) -> None:
    image = Image.fromarray(KINDS[kind](np.random.default_rng(h + w), h, w))
    got = PDQ.dihedral(image)
    assert len(got) == 8
    for name, value in zip(DIHEDRAL_NAMES, got):
        op = PILLOW_OPS[name]
        want = oracle(np.asarray(image if op is None else image.transpose(op)))
        assert (value.hex, value.quality) == want, name


def test_dihedral_names_follow_pytx() -> None:
    assert DIHEDRAL_NAMES == tuple(PILLOW_OPS)


# ---------------------------------------------------------------- interface


def test_compute_converts_other_modes_like_pillow_rgb() -> None:
    rgb = _smooth(np.random.default_rng(7), 120, 90)
    rgba = np.dstack((rgb, np.full(rgb.shape[:2], 10, dtype=np.uint8)))
    # Alpha is ignored, as pytx's hashes ignore it.
    assert PDQ.compute(Image.fromarray(rgba, "RGBA")) == PDQ.compute_array(rgb)
    grey = rgb[:, :, 1].copy()
    assert PDQ.compute(Image.fromarray(grey, "L")).hex == oracle(np.dstack((grey, grey, grey)))[0]


def test_compute_array_accepts_views() -> None:
    rgb = _smooth(np.random.default_rng(8), 300, 400)
    bgr_view = rgb[:, :, ::-1]
    crop = rgb[10:250, 30:390]
    assert PDQ.compute_array(bgr_view).hex == oracle(bgr_view)[0]
    assert PDQ.compute_array(crop).hex == oracle(crop)[0]


@pytest.mark.parametrize(
    "bad",
    [np.zeros((10, 10, 3), dtype=np.float32), np.zeros((10, 10), dtype=np.uint8),
     np.zeros((10, 10, 4), dtype=np.uint8), [[1, 2, 3]], None],
    ids=["float", "2d", "4-channels", "list", "none"],
)
def test_compute_array_refuses_what_is_not_uint8_rgb(bad: object) -> None:
    with pytest.raises(InvalidInput, match="uint8 RGB array"):
        PDQ.compute_array(bad)  # type: ignore[arg-type]


def test_hash_value_shape() -> None:
    got = PDQ.compute_array(_smooth(np.random.default_rng(9), 64, 80))
    assert got.signal == "pdq"
    assert len(got.hex) == 64 and got.hex == got.hex.lower()
    assert PdqSignal.parse(got.hex, got.quality) == got


def test_bits_to_hex_puts_the_first_bit_first() -> None:
    bits = np.zeros(256, dtype=np.uint8)
    bits[0] = 1
    bits[255] = 1
    assert bits_to_hex(bits) == "8" + "0" * 62 + "1"


def test_production_path_works_without_pdqhash() -> None:
    # pdqhash is only in the test extra: the production modules must not need it.
    code = (
        "import sys; sys.modules['pdqhash'] = None\n"
        "import numpy as np\n"
        "from hashdb.hashing.pdq import PdqSignal\n"
        "print(PdqSignal().compute_array(np.full((70, 90, 3), 9, dtype=np.uint8)).quality)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0"
