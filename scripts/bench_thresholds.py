"""Distances of near pairs (an image and its edits) and far pairs (distinct images) per signal.

Answers: is the default threshold of the 64-bit image hashes (phash, dhash) right? PDQ at its
industry threshold is measured in the same run as the reference.

    .venv/bin/python scripts/bench_thresholds.py [--no-vectors]

Near pairs: each fixture original with its _resize and _jpeg30 variants, plus (when
../shared/vectors exists) Meta's bridge-mods edits of one photo. Far pairs: every pair of
distinct images (fixture originals, plus the distinct photos among the vectors). _hflip and
_rotation are listed apart: they are matched by hashing a query's rotations, not by distance.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
from dataclasses import dataclass
from pathlib import Path

from hashdb.hashing.base import ImageSignal
from hashdb.hashing.media import decode_image, read_file
from hashdb.hashing.registry import get_signal

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures" / "media"
VECTORS = ROOT.parent / "shared" / "vectors" / "pdq"
SIGNALS = ("phash", "dhash", "pdq")
SWEEP = (4, 6, 8, 10, 12, 14, 16, 18, 20)
# Distinct photos among the vectors; the others are edits or re-crops of these.
VECTOR_DISTINCT = (
    "bridge-mods/aaa-orig.jpg",
    "misc-images/c.png",
    "misc-images/wee.jpg",
    "misc-images/small.jpg",
    "pytx/rgb.jpeg",
    "reg-test-input/pen-and-coaster.png",
    "reg-test-input/exif-rotn/exif-rotn-1.jpg",
    *(f"reg-test-input/labelme-subset/q{n}.jpg" for n in ("0003", "0004", "0122", "0291", "0746", "1050", "2821")),
)


@dataclass(frozen=True)
class Pair:
    kind: str  # near | dihedral | far
    a: Path
    b: Path


def fixture_pairs() -> list[Pair]:
    originals = sorted(p for p in FIXTURES.iterdir() if p.suffix in {".jpg", ".png"} and "_" not in p.stem)
    pairs = []
    for original in originals:
        for edit, kind in (("resize", "near"), ("jpeg30", "near"), ("hflip", "dihedral"), ("rotation", "dihedral")):
            (other,) = FIXTURES.glob(f"{original.stem}_{edit}.*")
            pairs.append(Pair(kind, original, other))
    return pairs + far_pairs(originals)


def vector_pairs() -> tuple[list[Pair], list[Path]]:
    base = VECTORS / "bridge-mods" / "aaa-orig.jpg"
    near = [Pair("near", base, p) for p in sorted(base.parent.glob("*.jpg")) if p != base]
    return near, [VECTORS / name for name in VECTOR_DISTINCT]


def far_pairs(images: list[Path]) -> list[Pair]:
    return [Pair("far", a, b) for a, b in itertools.combinations(images, 2)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-vectors", action="store_true", help="fixtures only")
    args = parser.parse_args()

    pairs = fixture_pairs()
    if not args.no_vectors and VECTORS.is_dir():
        edits, distinct = vector_pairs()
        originals = sorted({p.a for p in pairs if p.kind == "near"})
        pairs = [p for p in pairs if p.kind != "far"] + edits + far_pairs(originals + distinct)
    signals = [get_signal(name) for name in SIGNALS]
    hashes: dict[Path, dict[str, str]] = {}
    for path in sorted({p.a for p in pairs} | {p.b for p in pairs}):
        rgb = decode_image(read_file(path)).rgb
        hashes[path] = {
            s.name: s.compute(rgb).hex for s in signals if isinstance(s, ImageSignal)
        }

    def distances(kind: str, name: str) -> list[int]:
        signal = get_signal(name)
        return [signal.distance(hashes[p.a][name], hashes[p.b][name]) for p in pairs if p.kind == kind]

    counts = {kind: sum(p.kind == kind for p in pairs) for kind in ("near", "dihedral", "far")}
    print(f"pairs: {counts['near']} near, {counts['far']} far, {counts['dihedral']} dihedral (informational)")
    print()
    print("| signal | bits | default | near max | far min | far mean (sd) | dihedral min | clean range |")
    print("|---|---|---|---|---|---|---|---|")
    for signal in signals:
        near, far, dihedral = (distances(k, signal.name) for k in ("near", "far", "dihedral"))
        clean = f"{max(near)}..{min(far) - 1}" if max(near) < min(far) else "none (overlap)"
        print(
            f"| {signal.name} | {signal.bits} | {signal.default_threshold} | {max(near)} | {min(far)} | "
            f"{statistics.mean(far):.1f} ({statistics.pstdev(far):.1f}) | {min(dihedral)} | {clean} |"
        )
    print()
    print("Threshold sweep for the 64-bit signals: near pairs matched / far pairs wrongly matched")
    print()
    print("| signal | " + " | ".join(f"<= {t}" for t in SWEEP) + " |")
    print("|---|" + "---|" * len(SWEEP))
    for name in ("phash", "dhash"):
        near, far = distances("near", name), distances("far", name)
        cells = [f"{sum(d <= t for d in near)}/{len(near)}, {sum(d <= t for d in far)}" for t in SWEEP]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print()
    for name in ("phash", "dhash"):
        signal = get_signal(name)
        closest = sorted((signal.distance(hashes[p.a][name], hashes[p.b][name]), p.a.name, p.b.name)
                         for p in pairs if p.kind == "far")[:3]
        print(f"{name} closest far pairs: " + "; ".join(f"{a} / {b}: {d}" for d, a, b in closest))
    print()
    for name in ("phash", "dhash"):
        signal = get_signal(name)
        near, far = distances("near", name), distances("far", name)
        t = signal.default_threshold
        if max(near) <= t < min(far):
            verdict = (f"keep {t}: every near pair is within it (max {max(near)}) and every far pair beyond it "
                       f"(min {min(far)}), leaving {t - max(near)} bits of slack for edits and "
                       f"{min(far) - 1 - t} before the closest distinct pair")
        else:
            middle = (max(near) + min(far)) // 2
            verdict = f"change {t}: near max {max(near)}, far min {min(far)}; the midpoint is {middle}"
        print(f"{name}: {verdict}")


if __name__ == "__main__":
    main()
