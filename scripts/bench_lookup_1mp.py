"""Lookup time per 1-megapixel image (hash it as `hashdb lookup` does, then look it up), this
code against another commit, measured in the same run.

    .venv/bin/python scripts/bench_lookup_1mp.py --reference-rev c4fff37^   # before derived hashes
    .venv/bin/python scripts/bench_lookup_1mp.py --reference-rev HEAD~3 --rounds 5 --core 1

The images: the fixtures and (when present) ../shared/vectors/pdq pictures, each scaled to one
megapixel inside a black border of 5 % (so the border detector and every derived hash have work
to do), JPEG at quality 90. Each side runs in its own process pinned to one core (`taskset`),
with these images submitted first so that lookups find them; it reports CPU time per image,
best of 3 passes. The two sides alternate round by round; the table gives each round and the
median ratio. The reference's compiled kernel is built in its checkout (bench_e2e_hashing's
before_checkout).
"""

from __future__ import annotations

import argparse
import io
import os
import pickle
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from bench_e2e_hashing import SOURCES, before_checkout  # noqa: E402

# Runs inside each side's process: argv = [payloads pickle]; prints ms of CPU per image.
TIMER = r"""
import pickle, sys, tempfile, time
from pathlib import Path
from hashdb.cli.common import local_principal
from hashdb.service.local import open_database
payloads = pickle.loads(Path(sys.argv[1]).read_bytes())
service = open_database(Path(tempfile.mkdtemp()) / "bench.sqlite")
actor = local_principal(service, "bench")
service.submit([service.submission_for(service.hash_bytes(p, "stored"), ["glorification"]) for p in payloads], actor)
service.load_index()
def lookup(data):
    service.lookup([service.query_for(service.hash_bytes(data, "query", dihedral=True))], actor)
for data in payloads[:3]:
    lookup(data)
passes = []
for _ in range(3):
    start = time.process_time()
    for data in payloads:
        lookup(data)
    passes.append((time.process_time() - start) / len(payloads))
print(1000 * min(passes))
"""


def payloads() -> list[bytes]:
    out = []
    for source in SOURCES:
        if not source.exists():
            continue
        with Image.open(source) as image:
            rgb = image.convert("RGB")
        scale = (1_000_000 / (rgb.width * rgb.height)) ** 0.5
        big = rgb.resize((round(rgb.width * scale), round(rgb.height * scale)), Image.Resampling.BICUBIC)
        framed = ImageOps.expand(big, border=(round(0.05 * big.width), round(0.05 * big.height)), fill=(0, 0, 0))
        buffer = io.BytesIO()
        framed.save(buffer, "JPEG", quality=90)
        out.append(buffer.getvalue())
    return out


def run(checkout: Path, data: Path, core: int) -> float:
    command = ["taskset", "-c", str(core), "env", f"PYTHONPATH={checkout}", sys.executable, "-P", "-c", TIMER, str(data)]
    return float(subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference-rev", required=True, help="the git revision to compare with (checked out once)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--core", type=int, default=max(0, len(os.sched_getaffinity(0)) - 1))
    args = parser.parse_args()
    if shutil.which("taskset") is None:
        parser.error("taskset (util-linux) is needed to pin each side to one core")
    reference = before_checkout(args.reference_rev)
    with tempfile.TemporaryDirectory(prefix="hashdb-1mp-") as tmp:
        data = Path(tmp) / "payloads.pickle"
        images = payloads()
        data.write_bytes(pickle.dumps(images))
        print(f"{len(images)} images of 1 megapixel with a 5 % black border; core {args.core}; CPU ms per image")
        print("| round | this code | reference | ratio |")
        print("|---|---|---|---|")
        ratios = []
        for n in range(1, args.rounds + 1):
            reference_ms = run(reference, data, args.core)
            this_ms = run(ROOT, data, args.core)
            ratios.append(this_ms / reference_ms)
            print(f"| {n} | {this_ms:.1f} | {reference_ms:.1f} | {ratios[-1]:.2f}x |")
        print(f"median ratio {statistics.median(ratios):.2f}x (reference: {args.reference_rev})")


if __name__ == "__main__":
    main()
