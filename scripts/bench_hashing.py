"""Image hashing speed: our PDQ against pdqhash (Meta's C++) on the same decoded arrays.

"ours" is PdqSignal: the compiled kernel (hashdb/hashing/_pdq_kernel.c) when the install
built it, else the numpy port (pdq_core); the "numpy port" column times the port either way.

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
each table, and on one core a stage-by-stage profile of our port on the first image, and the
first box pass done as one np.add.accumulate (checked bit-exact, timed) against our loop.

Default images: a few of ../shared/vectors/pdq (when present) and fixtures/media originals.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import PIL
try:  # the reference; a test extra, not a dependency of hashdb
    import pdqhash
except ImportError:
    sys.exit("bench_hashing.py needs pdqhash, the reference it checks hashdb against: "
             ".venv/bin/pip install -e '.[test]'")
from PIL import Image

from hashdb.hashing import kernel, pdq_core
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
    print(f"ours = {'the compiled kernel' if kernel.available() else 'the numpy port (no kernel built)'}\n")
    print("| long side | images | pdqhash ms | ours ms | speed-up | numpy port ms | ours dihedral ms | 8 x pdqhash ms | "
          "dihedral speed-up | 8 x ours on Pillow transposes ms | pHash ms | dHash ms |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for size, items in items_by_size.items():
        rounds = repeat if size <= 2048 else repeat_large
        single = [timed(rounds, {
            "pdqhash": lambda i=item: pdqhash.compute(i.rgb),
            "ours": lambda i=item: PDQ.compute_array(i.rgb),
            "port": lambda i=item: pdq_core.pdq_hex(i.rgb),
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
              f"{mean(single, 'port'):.1f} | "
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
    keep_cols, keep_rows = pdq_core.decimation_indices(cols), pdq_core.decimation_indices(rows)
    # Arrays laid out as pdq_core lays out its own (row strides an odd number of cache lines).
    lt = pdq_core._image("bench luma", cols, rows)
    pdq_core._luma_transposed_into(rgb, lt)
    pass1 = pdq_core._image("bench pass 1", rows, cols)
    pass2 = pdq_core._image("bench pass 2", cols, rows)
    pdq_core.box_into_transposed(lt, along_rows, pass1)
    pdq_core.box_into_transposed(pass1, along_cols, pass2)
    pass3_t = np.ascontiguousarray(pdq_core.box_sampled(pass2, along_rows, keep_cols).T)
    image = pdq_core.downsample(pdq_core.luma_transposed(rgb))
    best = timed(repeat, {
        "luma (to W x H), into a reused array": lambda: pdq_core._luma_transposed_into(rgb, lt),
        "box pass 1 (horizontal, all outputs), into a reused array":
            lambda: pdq_core.box_into_transposed(lt, along_rows, pass1),
        "box pass 2 (vertical, all outputs), into a reused array":
            lambda: pdq_core.box_into_transposed(pass1, along_cols, pass2),
        "box pass 3 (horizontal, 64 columns kept)": lambda: pdq_core.box_sampled(pass2, along_rows, keep_cols),
        "box pass 4 (vertical, 64 rows kept)": lambda: pdq_core.box_sampled(pass3_t, along_cols, keep_rows),
        "DCT, quality, bits": lambda: (pdq_core.dct_hex(pdq_core.dct16(image)), pdq_core.quality(image)),
        "whole compute_array": lambda: PDQ.compute_array(rgb),
    })
    pass3 = "64 np.add.reduce calls" if rows < pdq_core._STEPWISE_LANES else f"{cols} steps"
    print(f"\n{item.name} at {cols}x{rows}: passes 1 and 2 take {cols + rows} sequential steps (each one "
          f"numpy add and one subtract over every lane), pass 3 {pass3}, pass 4 64 np.add.reduce calls; "
          f"best of {repeat}\n\n| stage | ms |\n|---|---|")
    for name, (ms, _) in best.items():
        print(f"| {name} | {ms:.2f} |")


def box_by_accumulate(x: np.ndarray, window: int, axis: int) -> np.ndarray:
    """A full box pass along axis 0 of x as ONE np.add.accumulate over its (add, -subtract) values.

    Pair i of box1DFloat adds x[i] and subtracts x[i - window] (zeros outside x), so the running
    sum is a float32 accumulation of the interleaved sequence. axis=0 accumulates a C-contiguous
    (2 pairs, lanes) array down its rows; axis=1 a (lanes, 2 pairs) one along its rows. Returns
    the outputs as rows (n x lanes), divided as the C++ divides.
    """
    n, lanes = x.shape
    lead = (window + 2) // 2 - 1
    pairs = n + lead
    seq = np.zeros((pairs, 2, lanes), dtype=np.float32)
    seq[:n, 0] = x
    np.negative(x[: pairs - window], out=seq[window:, 1])
    flat = seq.reshape(2 * pairs, lanes)
    if axis == 0:
        sums = np.add.accumulate(flat, axis=0, dtype=np.float32)[1::2]
    else:
        sums = np.add.accumulate(np.ascontiguousarray(flat.T), axis=1, dtype=np.float32).T[1::2]
    counts = pdq_core._box_counts(n, window)
    return sums[lead:] / counts[:, None]


def accumulate_alternative(item: Sized, repeat: int) -> None:
    """The first box pass as one np.add.accumulate (exact?) against the per-step loop (timed)."""
    rows, cols = item.rgb.shape[:2]
    lt = pdq_core._image("bench luma", cols, rows)
    pdq_core._luma_transposed_into(item.rgb, lt)
    window = pdq_core.jarosz_window(cols)
    want = pdq_core._image("bench pass 1", rows, cols)
    pdq_core.box_into_transposed(lt, window, want)
    exact = {axis: np.array_equal(box_by_accumulate(lt, window, axis), want.T) for axis in (0, 1)}
    # Window sums as differences of float32 prefix sums (outputs lag.. with a full window):
    # the obvious vectorisation, which rounds differently from the C++'s running sum.
    lead = (window + 2) // 2 - 1
    prefix = np.cumsum(lt, axis=0, dtype=np.float32)
    by_cumsum = (prefix[window:] - prefix[:-window]) / np.float32(window)
    differs = not np.array_equal(by_cumsum, want.T[window - lead : cols - lead])
    best = timed(repeat, {
        "per-step loop (box_into_transposed, output transposed)":
            lambda: pdq_core.box_into_transposed(lt, window, want),
        "np.add.accumulate along axis 0 of (2 pairs, lanes), no transpose":
            lambda: box_by_accumulate(lt, window, 0),
        "np.add.accumulate along axis 1 of (lanes, 2 pairs), no transpose":
            lambda: box_by_accumulate(lt, window, 1),
    })
    print(f"\n{item.name} at {cols}x{rows}, box pass 1 ({cols} steps, {rows} lanes), best of {repeat}: "
          f"accumulate bit-exact with the C++ order: axis 0 {exact[0]}, axis 1 {exact[1]}; "
          f"cumsum differences differ from it: {differs}\n\n| box pass 1 as | ms |\n|---|---|")
    for name, (ms, _) in best.items():
        print(f"| {name} | {ms:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("images", nargs="*", type=Path, help="images to decode (default: see above)")
    parser.add_argument("--sizes", default="1024,4000", help="long sides to resize to, comma-separated")
    parser.add_argument("--repeat", type=int, default=9, help="rounds per image up to 2048 px")
    parser.add_argument("--repeat-large", type=int, default=5, help="rounds per image above 2048 px")
    parser.add_argument("--dihedral-images", type=int, default=2, help="images per size for the dihedral columns")
    parser.add_argument("--core", type=int, help="the core for the one-core table (default: the first allowed)")
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
                os.sched_setaffinity(0, {min(everything) if args.core is None else args.core})
        else:
            cv2.setNumThreads(default_threads)
            if everything:
                os.sched_setaffinity(0, everything)
        cores = sorted(os.sched_getaffinity(0)) if everything else list(range(os.cpu_count() or 1))
        print(f"\n## {label}: cv2.getNumThreads() = {cv2.getNumThreads()}, process on core(s) {cores}\n")
        table(items_by_size, args.repeat, args.repeat_large, args.dihedral_images)
        if label == "one core":
            for size, items in items_by_size.items():
                stages(items[0], args.repeat if size <= 2048 else args.repeat_large)
            for size, items in items_by_size.items():
                accumulate_alternative(items[0], args.repeat if size <= 2048 else args.repeat_large)


if __name__ == "__main__":
    main()
