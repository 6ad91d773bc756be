"""How far a lookup's rotated and mirrored PDQs are from the PDQ of each turned image, and
what that does to finding a turned copy: three ways of making the 8 variants.

    .venv/bin/python scripts/eval_dihedral.py                # 300 drawings of the eval corpus
    .venv/bin/python scripts/eval_dihedral.py --images 100 --fixtures

- exact: PdqSignal.dihedral_array, the PDQ of each Pillow transpose (equal to pdqhash on it);
- one filter: PdqSignal.dihedral_one_filter_array, what lookups query;
- DCT signs: pdqhash.compute_dihedral, sign flips and transposes of the upright 16x16 DCT.

First table: Hamming distance of each variant to the exact one, per orientation. Second:
a JPEG (quality 90) of the image turned each way is the query, the upright image's PDQ the
stored hash; a find is any of the query's 8 variants within 31 bits (PDQ's threshold).
Images are the evaluation's own drawings (scripts/eval_corpus.py, at most 512 px, transparent
areas on white), in a seeded order; only those of PDQ quality >= 50 are counted.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
try:  # the reference; a test extra, not a dependency of hashdb
    import pdqhash
except ImportError:
    sys.exit("eval_dihedral.py needs pdqhash, the reference it checks hashdb against: "
             ".venv/bin/pip install -e '.[test]'")
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import eval_corpus  # noqa: E402

from hashdb.hashing.pdq import DIHEDRAL_NAMES, PdqSignal, bits_to_hex  # noqa: E402

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "media"
TURNS = {"flip h": Image.Transpose.FLIP_LEFT_RIGHT, "flip v": Image.Transpose.FLIP_TOP_BOTTOM,
         "rotate 90": Image.Transpose.ROTATE_90, "rotate 180": Image.Transpose.ROTATE_180,
         "rotate 270": Image.Transpose.ROTATE_270}
PDQ = PdqSignal()


def drawings(count: int, seed: int) -> Iterator[tuple[str, Image.Image]]:
    keys = eval_corpus.candidates("debian", seed, 100_000)
    keys = [k for k in keys if k.startswith("openclipart:")]
    for key in keys:
        image = eval_corpus.load_source(key)
        if image is not None and PDQ.compute(image).quality >= 50:
            yield key, image
            count -= 1
            if count == 0:
                return


def fixtures() -> Iterator[tuple[str, Image.Image]]:
    for path in sorted(FIXTURES.glob("*.jpg")):
        try:
            with Image.open(path) as image:
                yield path.name, image.convert("RGB")
        except OSError:
            continue


def ways(rgb: np.ndarray) -> dict[str, list[str]]:
    bits, _ = pdqhash.compute_dihedral(np.ascontiguousarray(rgb))
    return {"exact": [v.hex for v in PDQ.dihedral_array(rgb)],
            "one filter": [v.hex for v in PDQ.dihedral_one_filter_array(rgb)],
            "DCT signs": [bits_to_hex(np.asarray(b)) for b in bits]}


def distance_table(images: list[tuple[str, Image.Image]]) -> None:
    spread: dict[tuple[str, str], list[int]] = {}
    for _, image in images:
        made = ways(np.asarray(image))
        for way in ("one filter", "DCT signs"):
            for name, ours, exact in zip(DIHEDRAL_NAMES, made[way], made["exact"]):
                spread.setdefault((way, name), []).append(PDQ.distance(ours, exact))
    print(f"\n## Distance to the exact variant, {len(images)} images: median / 90th percentile / max (> 31)\n")
    print("| variant | one filter | DCT signs |\n|---|---|---|")
    for name in DIHEDRAL_NAMES:
        cells = []
        for way in ("one filter", "DCT signs"):
            values = sorted(spread[(way, name)])
            cells.append(f"{statistics.median(values):g} / {values[int(0.9 * len(values))]} / {values[-1]} "
                         f"({sum(v > 31 for v in values)})")
        print(f"| {name} | {' | '.join(cells)} |")


def find_table(images: list[tuple[str, Image.Image]]) -> None:
    found: dict[tuple[str, str], int] = {}
    for _, image in images:
        stored = PDQ.compute(image).hex
        for turn, op in TURNS.items():
            buffer = io.BytesIO()
            image.transpose(op).save(buffer, "JPEG", quality=90)
            with Image.open(io.BytesIO(buffer.getvalue())) as query:
                made = ways(np.asarray(query.convert("RGB")))
            for way, variants in made.items():
                hit = min(PDQ.distance(v, stored) for v in variants) <= 31
                found[(way, turn)] = found.get((way, turn), 0) + hit
    print(f"\n## Turned copy found (JPEG 90 of it against the upright PDQ), {len(images)} images\n")
    print("| turn | exact | one filter | DCT signs |\n|---|---:|---:|---:|")
    for turn in TURNS:
        row = " | ".join(f"{found[(way, turn)] / len(images):.3f}" for way in ("exact", "one filter", "DCT signs"))
        print(f"| {turn} | {row} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=300, help="drawings from the eval corpus")
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--fixtures", action="store_true", help="also the fixture photos (distances only)")
    args = parser.parse_args()
    images = list(drawings(args.images, args.seed))
    distance_table(images)
    find_table(images)
    if args.fixtures:
        distance_table(list(fixtures()))


if __name__ == "__main__":
    main()
