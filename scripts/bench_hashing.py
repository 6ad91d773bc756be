"""Image hashing speed: our PDQ port against pdqhash (Meta's C++) on the same decoded arrays.

    .venv/bin/python scripts/bench_hashing.py
    .venv/bin/python scripts/bench_hashing.py --sizes 1024,4000 --repeat 9 photo1.jpg photo2.png

Each image is decoded once (decode time reported on its own), then resized so its long side
is each of --sizes. On every resized array it times, alternating so that load from elsewhere
hits all alike: pdqhash.compute (the reference) and PdqSignal.compute_array, and on PIL
images of the same pixels pHash and dHash (imagehash) for context. It also times the 8
dihedral variants: PdqSignal.dihedral against pdqhash.compute on each of the 8 Pillow
transposes (made beforehand, not timed), and against PdqSignal.compute on each Pillow
transpose (transposes timed: what dihedral() did before it shared work). Every PDQ is checked
bit-exact against pdqhash first. The table is run twice: on one pinned core with
cv2.setNumThreads(1), then with OpenCV's default threads on all cores. Times are the best of
the rounds per image, averaged over images; the medians and the per-image speed-ups follow
each table, and on one core a stage-by-stage profile of our port on the first image.

Default images: a few of ../shared/vectors/pdq (when present) and fixtures/media originals.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import PIL
import pdqhash
from PIL import Image

from hashdb.hashing import pdq_core
from hashdb.hashing.imagehashes import DHashSignal, PHashSignal
from hashdb.hashing.pdq import PdqSignal, bits_to_hex

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT.parent / "shared" / "vectors" / "pdq"
DEFAULT_IMAGES = [
    VECTORS / "bridge-mods" / "aaa-orig.jpg",
    VECTORS / "misc-images" / "c.png",
    VECTORS / "reg-test-input" / "exif-rotn" / "exif-rotn-1.jpg",
    ROOT / "fixtures" / "media" / "astronaut.jpg",
    ROOT / "fixtures" / "media" / "chelsea.jpg",
]
TRANSPOSES = (
    Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_180, Image.Transpose.ROTATE_270,
    Image.Transpose.FLIP_TOP_BOTTOM, Image.Transpose.FLIP_LEFT_RIGHT,
    Image.Transpose.TRANSPOSE, Image.Transpose.TRANSVERSE,
)
PDQ = PdqSignal()


@dataclass
class Sized:
    name: str
    rgb: np.ndarray
    image: Image.Image
    transposed: list[np.ndarray]


def timed(repeat: int, runs: dict[str, Callable[[], object]]) -> dict[str, tuple[float, float]]:
    """(best, median) wall time in ms of each run over `repeat` rounds.

    The runs alternate within a round, so load from other processes on this shared machine
    hits them alike; the best of the rounds is the cost without such load.
    """
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append((time.perf_counter() - start) * 1000)
    return {name: (min(values), statistics.median(values)) for name, values in times.items()}


def decode(paths: list[Path]) -> list[tuple[str, np.ndarray, float]]:
    decoded = []
    for path in paths:
        start = time.perf_counter()
        with Image.open(path) as image:
            rgb = np.asarray(image.convert("RGB"))
        decoded.append((path.name, rgb, (time.perf_counter() - start) * 1000))
    return decoded


def resize(rgb: np.ndarray, long_side: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    scale = long_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    return np.ascontiguousarray(cv2.resize(rgb, size, interpolation=interpolation))


def check_exact(item: Sized) -> None:
    bits, quality = pdqhash.compute(item.rgb)
    ours = PDQ.compute_array(item.rgb)
    if (ours.hex, ours.quality) != (bits_to_hex(bits), quality):
        raise SystemExit(f"{item.name}: our PDQ differs from pdqhash")
    if not item.transposed:
        return
    want = [bits_to_hex(pdqhash.compute(a)[0]) for a in [item.rgb, *item.transposed]]
    if [v.hex for v in PDQ.dihedral(item.image)] != want:
        raise SystemExit(f"{item.name}: our dihedral PDQs differ from pdqhash on the transposes")


def table(items_by_size: dict[int, list[Sized]], repeat: int, repeat_large: int, dihedral_images: int) -> None:
    phash, dhash = PHashSignal(), DHashSignal()
    medians: list[str] = []
    print("| long side | images | pdqhash ms | ours ms | speed-up | ours dihedral ms | 8 x pdqhash ms | "
          "dihedral speed-up | 8 x ours on Pillow transposes ms | pHash ms | dHash ms |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for size, items in items_by_size.items():
        rounds = repeat if size <= 2048 else repeat_large
        single = [timed(rounds, {
            "pdqhash": lambda i=item: pdqhash.compute(i.rgb),
            "ours": lambda i=item: PDQ.compute_array(i.rgb),
            "phash": lambda i=item: phash.compute(i.image),
            "dhash": lambda i=item: dhash.compute(i.image),
        }) for item in items]
        eight = [timed(max(2, rounds // 2), {
            "reference": lambda i=item: [pdqhash.compute(a) for a in [i.rgb, *i.transposed]],
            "ours": lambda i=item: PDQ.dihedral(i.image),
            "ours naive": lambda i=item: [PDQ.compute(i.image.transpose(op) if op else i.image)
                                          for op in (None, *TRANSPOSES)],
        }) for item in items[:dihedral_images]]

        def mean(rows: list[dict[str, tuple[float, float]]], key: str, median: bool = False) -> float:
            return statistics.fmean(row[key][median] for row in rows)

        ref, ours = mean(single, "pdqhash"), mean(single, "ours")
        ref8, ours8, naive8 = mean(eight, "reference"), mean(eight, "ours"), mean(eight, "ours naive")
        shapes = ", ".join(f"{i.rgb.shape[1]}x{i.rgb.shape[0]}" for i in items)
        print(f"| {size} | {len(items)} ({shapes}) | {ref:.1f} | {ours:.1f} | {ref / ours:.1f}x | "
              f"{ours8:.1f} | {ref8:.1f} | {ref8 / ours8:.1f}x | {naive8:.1f} | {mean(single, 'phash'):.1f} | "
              f"{mean(single, 'dhash'):.1f} |")
        medians.append(f"{size} px: {mean(single, 'pdqhash', True):.1f} / {mean(single, 'ours', True):.1f} ms = "
                       f"{mean(single, 'pdqhash', True) / mean(single, 'ours', True):.1f}x, per image "
                       + ", ".join(f"{row['pdqhash'][0] / row['ours'][0]:.1f}x" for row in single) + " (best)")
    print("\nMedians, pdqhash / ours: " + "; ".join(medians))


def stages(item: Sized, repeat: int) -> None:
    """Where our time goes on one image: each stage of pdq_core.pdq_hex timed on its own."""
    rgb = item.rgb
    rows, cols = rgb.shape[:2]
    along_rows, along_cols = pdq_core.jarosz_window(cols), pdq_core.jarosz_window(rows)
    lt = pdq_core.luma_transposed(rgb)
    pass1 = np.empty((rows, cols), dtype=np.float32)
    pass2 = np.empty((cols, rows), dtype=np.float32)
    pdq_core.box_into_transposed(lt, along_rows, pass1)
    pdq_core.box_into_transposed(pass1, along_cols, pass2)
    pass3 = pdq_core.box_sampled(pass2, along_rows, pdq_core.decimation_indices(cols))
    image = pdq_core.downsample(pdq_core.luma_transposed(rgb))
    best = timed(repeat, {
        "luma (to W x H), fresh array": lambda: pdq_core.luma_transposed(rgb),
        "box pass 1 (horizontal, all outputs), into a reused array":
            lambda: pdq_core.box_into_transposed(lt, along_rows, pass1),
        "box pass 2 (vertical, all outputs), into a reused array":
            lambda: pdq_core.box_into_transposed(pass1, along_cols, pass2),
        "box pass 3 (horizontal, 64 columns kept)":
            lambda: pdq_core.box_sampled(pass2, along_rows, pdq_core.decimation_indices(cols)),
        "box pass 4 (vertical, 64 rows kept)":
            lambda: pdq_core.box_sampled_few_lanes(pass3, along_cols, pdq_core.decimation_indices(rows)),
        "DCT, quality, bits": lambda: (pdq_core.dct_hex(pdq_core.dct16(image)), pdq_core.quality(image)),
        "whole compute_array": lambda: PDQ.compute_array(rgb),
    })
    print(f"\n{item.name} at {cols}x{rows}: {2 * cols + rows} sequential box steps (each one numpy add "
          f"and one subtract over every lane), best of {repeat}\n\n| stage | ms |\n|---|---|")
    for name, (ms, _) in best.items():
        print(f"| {name} | {ms:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("images", nargs="*", type=Path, help="images to decode (default: see above)")
    parser.add_argument("--sizes", default="1024,4000", help="long sides to resize to, comma-separated")
    parser.add_argument("--repeat", type=int, default=9, help="rounds per image up to 2048 px")
    parser.add_argument("--repeat-large", type=int, default=5, help="rounds per image above 2048 px")
    parser.add_argument("--dihedral-images", type=int, default=2, help="images per size for the dihedral columns")
    args = parser.parse_args()
    paths = args.images or [p for p in DEFAULT_IMAGES if p.exists()]
    sizes = [int(s) for s in args.sizes.split(",")]

    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores; Python "
          f"{platform.python_version()}, numpy {np.__version__}, OpenCV {cv2.__version__}, "
          f"Pillow {PIL.__version__}, pdqhash {pdqhash.__version__}")
    decoded = decode(paths)
    print("\n| image | decoded size | decode ms (Pillow, once) |\n|---|---|---|")
    for name, rgb, ms in decoded:
        print(f"| {name} | {rgb.shape[1]}x{rgb.shape[0]} | {ms:.1f} |")

    items_by_size: dict[int, list[Sized]] = {}
    for size in sizes:
        items_by_size[size] = []
        for index, (name, rgb, _) in enumerate(decoded):
            resized = resize(rgb, size)
            image = Image.fromarray(resized)
            # Only the images the dihedral columns use keep their 7 transposes (memory).
            keep = index < args.dihedral_images
            transposed = [np.asarray(image.transpose(op)) for op in TRANSPOSES] if keep else []
            items_by_size[size].append(Sized(name, resized, image, transposed))
    for items in items_by_size.values():
        for item in items:
            check_exact(item)
    count = sum(len(items) for items in items_by_size.values())
    print(f"\nBit-exact with pdqhash (hash and quality) on all {count} arrays, and on the 8 Pillow "
          f"transposes of the first {args.dihedral_images} image(s) of each size (dihedral).")

    everything = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    default_threads = cv2.getNumThreads()
    for label in ("one core", "default threads"):
        if label == "one core":
            cv2.setNumThreads(1)
            if everything:
                os.sched_setaffinity(0, {min(everything)})
        else:
            cv2.setNumThreads(default_threads)
            if everything:
                os.sched_setaffinity(0, everything)
        cores = len(os.sched_getaffinity(0)) if everything else os.cpu_count()
        print(f"\n## {label}: cv2.getNumThreads() = {cv2.getNumThreads()}, process on {cores} core(s)\n")
        table(items_by_size, args.repeat, args.repeat_large, args.dihedral_images)
        if label == "one core":
            for size, items in items_by_size.items():
                stages(items[0], args.repeat if size <= 2048 else args.repeat_large)


if __name__ == "__main__":
    main()
