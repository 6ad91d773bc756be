"""Image hashing end to end: `hashdb hash` and `hashdb lookup` of a folder against a plain script.

    .venv/bin/python scripts/bench_e2e_hashing.py
    .venv/bin/python scripts/bench_e2e_hashing.py --images 1000 --rounds 5 --core 1

The reference, measured in the same run on the same files, is what a platform would write
first: decode each file with Pillow (`Image.open(p).convert("RGB")`) and hash it with pdqhash
and its 8 dihedral variants (`pdqhash.compute_dihedral`). The commands run as subprocesses
(interpreter start and imports included, as a user pays them: from compiled modules, written
first for each checkout timed) with the default signals
(md5, sha256, pdq, phash; lookup adds the 7 rotated and mirrored PDQs), alternating with the
reference round by round; the table gives medians and the median of the per-round ratios.
One core: every process pinned with `taskset -c CORE`. Every core: the same commands on all
the cores this process may use, against themselves on one core, and beside them the ceiling
the machine allows: the files dealt into a share a core, each share's own one-process command
(`--jobs 1`) pinned to its core, all at once.

Then a profile, in this process on one core: where one image's time goes, stage by stage,
averaged over the corpus. Last, whether Pillow's reduced JPEG decoding (draft mode) would
leave the hashes unchanged on the fixtures and reference vectors.

The corpus: --images files made from fixtures/media (and ../shared/vectors/pdq when present),
long sides from 400 to 1,600 pixels, three in four JPEG (quality 85-95), one in four a
32-colour PNG (clip art), written once to --corpus (default: a temporary folder).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import PIL

try:  # the reference; a test extra, not a dependency of hashdb
    import pdqhash
except ImportError:
    sys.exit("bench_e2e_hashing.py needs pdqhash, the reference it times hashdb against: "
             ".venv/bin/pip install -e '.[test]'")
from PIL import Image

from hashdb.config import Settings
from hashdb.hashing import derived, deskew, kernel, media, regions
from hashdb.hashing.crops import crop_pdqs
from hashdb.hashing.derived import derived_pdqs
from hashdb.hashing.imagehashes import PHashSignal
from hashdb.hashing.masked import masked_pdqs
from hashdb.hashing.pdq import PdqSignal
from hashdb.hashing.pdq_dihedral import pdq_dihedral_hex
from hashdb.service.media_hashing import hash_media_file

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures" / "media"
VECTORS = ROOT.parent / "shared" / "vectors" / "pdq"
SOURCES = [FIXTURES / n for n in ("astronaut.jpg", "chelsea.jpg", "coffee.jpg", "rocket.jpg", "camera.png")] + [
    VECTORS / "bridge-mods" / "aaa-orig.jpg", VECTORS / "misc-images" / "c.png",
    VECTORS / "reg-test-input" / "exif-rotn" / "exif-rotn-1.jpg", VECTORS / "reg-test-input" / "pen-and-coaster.png",
]
HASHDB = Path(sys.executable).with_name("hashdb")


def make_corpus(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    existing = sorted(folder.iterdir())
    if len(existing) == count:
        return existing
    sources = []
    for path in SOURCES:
        if path.exists():
            with Image.open(path) as image:
                sources.append(image.convert("RGB"))
    for index in range(count):
        image = sources[index % len(sources)]
        side = 400 + (index * 137) % 1201
        scale = side / max(image.size)
        resized = image.resize((max(8, round(image.width * scale)), max(8, round(image.height * scale))),
                               Image.Resampling.LANCZOS)
        if index % 4 == 3:
            resized.quantize(colors=32).save(folder / f"img{index:04d}.png")
        else:
            resized.save(folder / f"img{index:04d}.jpg", quality=85 + index % 11)
    return sorted(folder.iterdir())


# The plain script, run with `python -c` so that it imports only what it uses.
REFERENCE = """
import sys
from pathlib import Path
import numpy as np, pdqhash
from PIL import Image
out = []
for path in sorted(Path(sys.argv[1]).iterdir()):
    with Image.open(path) as image:
        rgb = np.asarray(image.convert("RGB"))
    hashes, quality = pdqhash.compute_dihedral(rgb)
    out.append(f"{path.name} {quality} " + " ".join(np.packbits(h).tobytes().hex() for h in hashes))
sys.stdout.write("\\n".join(out) + "\\n")
"""


def run(command: list[str], cores: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one command: user + system time of the child, which a
    busy machine inflates far less than the wall time of a process pinned to one core."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(["taskset", "-c", cores, *command], check=False, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


# --before / --before-rev: another checkout of hashdb (e.g. the commit before a change), its
# `hashdb` run with this interpreter and its packages, in the same rounds as this one's.
BEFORE: Path | None = None


def before_command(checkout: Path) -> list[str]:
    # -P: without it `python -c` puts the working directory first on sys.path, so run from
    # this checkout's root it imported this hashdb, not the other one. The console script's
    # entry point: `main`, or `cli` in checkouts from before `main`.
    return ["env", f"PYTHONPATH={checkout}", sys.executable, "-P", "-c",
            "import hashdb.cli as c; getattr(c, 'main', c.cli)()"]


def before_checkout(rev: str) -> Path:
    """A worktree of `rev` with its compiled kernel built in place (without it the checkout
    would time the numpy fallback, not the code as installed)."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from bench_api import reference_checkout

    checkout = reference_checkout(rev)
    subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"], cwd=checkout, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return checkout


def compile_modules(checkout: Path) -> None:
    """Write hashdb's compiled modules (__pycache__) into `checkout`, as a user's first run (or a
    regular install) does once. Where PYTHONDONTWRITEBYTECODE is set (this machine's shells set
    it) nothing writes them, and every timed command compiled hashdb's hundred-odd modules from
    source again, about 0.1-0.2 s a command that no user pays, while the reference imports only
    installed packages, compiled when pip installed them."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(checkout / "hashdb")], check=True,
                   stdout=subprocess.DEVNULL)


def commands(folder: Path, db: Path) -> dict[str, list[str]]:
    runs = {
        "reference: Pillow + pdqhash.compute_dihedral": [sys.executable, "-c", REFERENCE, str(folder)],
        "hashdb hash --json": [str(HASHDB), "hash", "--json", str(folder)],
        "hashdb lookup --json (local db)": [str(HASHDB), "lookup", "--json", "--db", str(db), str(folder)],
    }
    if BEFORE is not None:
        runs["before: hashdb hash --json"] = [*before_command(BEFORE), "hash", "--json", str(folder)]
        runs["before: hashdb lookup --json (local db)"] = [*before_command(BEFORE), "lookup", "--json", "--db",
                                                           str(before_db(db)), str(folder)]
    return runs


def one_core_table(folder: Path, db: Path, count: int, rounds: int, core: int) -> None:
    runs = commands(folder, db)
    times: dict[str, list[float]] = {name: [] for name in runs}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, command in runs.items():
            wall, used = run(command, str(core))
            times[name].append(wall)
            cpu[name].append(used)
    ref, ref_cpu = times["reference: Pillow + pdqhash.compute_dihedral"], cpu["reference: Pillow + pdqhash.compute_dihedral"]
    print(f"\n## One core (taskset -c {core}), {count} images, {rounds} alternated rounds\n")
    print("| command | median s | ms per image | reference / this (median of rounds) "
          "| CPU s (median) | reference / this, CPU |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, values in times.items():
        ratio = statistics.median(r / v for r, v in zip(ref, values))
        cpu_ratio = statistics.median(r / v for r, v in zip(ref_cpu, cpu[name]))
        print(f"| {name} | {statistics.median(values):.2f} | {1000 * statistics.median(values) / count:.1f} | "
              f"{ratio:.2f}x | {statistics.median(cpu[name]):.2f} | {cpu_ratio:.2f}x |")
    print("\nper round (s): " + "; ".join(f"{n.split(':')[0]}: " + ", ".join(f"{v:.2f}" for v in vs)
                                          for n, vs in times.items()))


def shares(folder: Path, parts: int, into: Path) -> list[Path]:
    """`folder`'s files dealt in turn into `parts` folders of links under `into`."""
    out = [into / f"share{n}" for n in range(parts)]
    for share in out:
        shutil.rmtree(share, ignore_errors=True)
        share.mkdir(parents=True)
    for n, path in enumerate(sorted(folder.iterdir())):
        (out[n % parts] / path.name).symlink_to(path.resolve())
    return out


def run_apart(commands_by_core: list[tuple[list[str], int]]) -> float:
    """Wall seconds of commands started together, each pinned to its own core, until the last ends."""
    start = time.perf_counter()
    running = [subprocess.Popen(["taskset", "-c", str(core), *command], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL) for command, core in commands_by_core]
    for process in running:
        process.wait()
    return time.perf_counter() - start


def all_cores_table(folder: Path, db: Path, count: int, rounds: int, core: int) -> None:
    """Each command on every core against itself on one; and, as the ceiling this machine allows,
    the same files split into one share a core, each share hashed by its own one-process command
    at the same time (`--jobs 1`: no pool, every process starting on its own): what a perfect
    division of the work gets when the cores slow each other down (a shared L3, memory, clocks)."""
    cores = sorted(os.sched_getaffinity(0))
    every = ",".join(map(str, cores))
    runs = {k: v for k, v in commands(folder, db).items() if k.startswith("hashdb")}
    parts = shares(folder, len(cores), db.parent / "shares")
    print(f"\n## Every core ({len(cores)}: taskset -c {every}) against one (taskset -c {core}), "
          f"{count} images, {rounds} alternated rounds\n")
    print("| command | one core median s | every core median s | speed-up (median of rounds) "
          f"| {len(cores)} one-process commands on a share each, median s | their speed-up |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, command in runs.items():
        one, many, apart = [], [], []
        for _ in range(rounds):
            one.append(run(command, str(core))[0])
            many.append(run(command, every)[0])
            apart.append(run_apart([([*command[:-1], "--jobs", "1", str(share)], c) for share, c in zip(parts, cores)]))
        speedup = statistics.median(a / b for a, b in zip(one, many))
        ceiling = statistics.median(a / b for a, b in zip(one, apart))
        print(f"| {name} | {statistics.median(one):.2f} | {statistics.median(many):.2f} | {speedup:.2f}x | "
              f"{statistics.median(apart):.2f} | {ceiling:.2f}x |")


def profile(paths: list[Path]) -> None:
    """CPU ms per image of each stage, in this process (pinned by the caller), summed over the
    corpus. CPU time, not wall time: on a shared machine the wall time is mostly waiting."""
    stages: dict[str, float] = {}

    def timed(name: str, call: Callable[[], object]) -> object:
        start = time.process_time()
        result = call()
        stages[name] = stages.get(name, 0.0) + time.process_time() - start
        return result

    pdq, phash, settings = PdqSignal(), PHashSignal(), Settings()
    underived = dataclasses.replace(settings, derived_hashes=False)
    for path in paths:
        data = timed("read the file", lambda: media.read_file(path))
        assert isinstance(data, bytes)
        timed("md5 + sha256", lambda: (hashlib.md5(data).digest(), hashlib.sha256(data).digest()))
        decoded = timed("decode (sniff, header checks, Pillow decode, RGB, variants)", lambda: media.decode_image(data))
        assert isinstance(decoded, media.DecodedImage)
        rgb = timed("np.asarray(rgb)", lambda: np.asarray(decoded.rgb))
        assert isinstance(rgb, np.ndarray)
        timed("PDQ (kernel)", lambda: pdq.compute_array(rgb))
        timed("PDQ + 7 dihedral variants (kernel, one filter; what lookup queries)",
              lambda: pdq.dihedral_one_filter_array(rgb))
        timed("PDQ + 7 dihedral variants (kernel, each turned image filtered)", lambda: pdq.dihedral_array(rgb))
        timed("pHash (kernel thumbnail + imagehash's DCT)", lambda: phash.compute_rgb(decoded.rgb, rgb))
        timed("PDQ of transparency/EXIF variants", lambda: [pdq.compute(i) for _, i in decoded.variants()])
        shown = decoded.shown
        work = timed("derived, of which: work copy", lambda: derived.work_copy(shown))
        assert isinstance(work, np.ndarray)
        timed("derived, of which: region detectors (content_boxes)", lambda: regions.content_boxes(work))
        timed("derived, of which: small-rotation angle", lambda: deskew.rotation(work))
        timed("derived PDQs of the content region (Settings.derived_hashes, on by default)",
              lambda: derived_pdqs(shown, settings.pdq_min_quality))
        timed("derived PDQs, a lookup's (each region trimmed again inside)",
              lambda: derived_pdqs(work, settings.pdq_min_quality, lookup=True))
        timed("corner-masked PDQs (stored and queried)", lambda: masked_pdqs(work, settings.pdq_min_quality))
        timed("centred crops' PDQs (stored only)", lambda: crop_pdqs(work, settings.pdq_min_quality))
        timed("hash_media_file, default signals (all of the above, once)", lambda: hash_media_file(settings, path))
        timed("hash_media_file, default signals, derived hashes off", lambda: hash_media_file(underived, path))
        timed("hash_media_file with dihedral, derived hashes off",
              lambda: hash_media_file(underived, path, dihedral=True))
        timed("hash_media_file with dihedral (what lookup hashes)",
              lambda: hash_media_file(settings, path, dihedral=True))
        timed("before: pHash by imagehash.phash (Pillow thumbnail)", lambda: phash.compute(decoded.rgb))
        timed("before: PDQ + 7 dihedral variants (numpy port)", lambda: pdq_dihedral_hex(rgb))
        timed("reference: Pillow open + convert('RGB') + np.asarray",
              lambda: np.asarray(Image.open(path).convert("RGB")))
        timed("reference: pdqhash.compute_dihedral", lambda: pdqhash.compute_dihedral(rgb))
        timed("reference: pdqhash.compute", lambda: pdqhash.compute(rgb))
    print(f"\n## Profile: CPU ms per image, one core, in process, {len(paths)} images\n")
    print("| stage | CPU ms per image |\n|---|---:|")
    for name, seconds in stages.items():
        print(f"| {name} | {1000 * seconds / len(paths):.2f} |")


def draft_check() -> None:
    """Would a reduced JPEG decode (Pillow draft, DCT scaling) leave the hashes unchanged?"""
    paths = sorted(p for p in [*FIXTURES.glob("*.jpg"), *VECTORS.rglob("*.jpg")] if "corrupt" not in p.name)
    pdq, phash = PdqSignal(), PHashSignal()
    tried = same_pdq = same_phash = 0
    distances = []
    for path in paths:
        with Image.open(path) as full:
            if min(full.size) < 128:
                continue
            full_rgb = full.convert("RGB")
        with Image.open(path) as small:
            small.draft("RGB", (full_rgb.width // 2, full_rgb.height // 2))
            small_rgb = small.convert("RGB")
        if small_rgb.size == full_rgb.size:
            continue
        tried += 1
        a, b = pdq.compute(full_rgb), pdq.compute(small_rgb)
        same_pdq += a.hex == b.hex and a.quality == b.quality
        distances.append(pdq.distance(a.hex, b.hex))
        same_phash += phash.compute(full_rgb).hex == phash.compute(small_rgb).hex
    print(f"\n## Reduced JPEG decoding (draft at 1/2 scale) on {tried} fixture and vector JPEGs\n")
    print(f"PDQ unchanged (hash and quality): {same_pdq}/{tried}; pHash unchanged: {same_phash}/{tried}; "
          f"PDQ distance to the full decode: median {statistics.median(distances) if distances else 0}, "
          f"max {max(distances, default=0)}")
    print("\nA hash must be the same whoever decodes the file, so hashdb decodes JPEGs in full unless "
          "every PDQ here stays unchanged" + (": it may decode reduced." if tried and same_pdq == tried
                                               else ": it does not (decoding stays full)."))


def before_db(db: Path) -> Path:
    return db.with_name(f"{db.stem}-before{db.suffix}")


def make_db(folder: Path, paths: list[Path]) -> Path:
    """The lookups' database, and with --before one made by that checkout too: a database this
    code has upgraded is refused by an older hashdb (which made its lookups fail at once)."""
    db = folder.parent / "bench-e2e.sqlite"
    sample = [str(p) for p in paths[:: max(1, len(paths) // 20)]]
    makers: list[tuple[list[str], Path]] = [([str(HASHDB)], db)]
    if BEFORE is not None:
        makers.append((before_command(BEFORE), before_db(db)))
    for command, target in makers:
        target.unlink(missing_ok=True)
        subprocess.run([*command, "submit", "--db", str(target), "--label", "glorification", *sample], check=True,
                       stdout=subprocess.DEVNULL)
    return db


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=300, help="files in the corpus")
    parser.add_argument("--rounds", type=int, default=5, help="alternated rounds per table")
    parser.add_argument("--core", type=int, help="the core for one-core rows (default: the last allowed)")
    parser.add_argument("--corpus", type=Path, help="folder to write the corpus to (kept); default a temp folder")
    parser.add_argument("--skip-profile", action="store_true")
    parser.add_argument("--skip-all-cores", action="store_true", help="only the one-core table (a busy machine)")
    parser.add_argument("--before", type=Path, help="another checkout of hashdb, timed in the same rounds")
    parser.add_argument("--before-rev", help="a git revision to check out (kernel built) and time as --before")
    args = parser.parse_args()
    global BEFORE
    BEFORE = before_checkout(args.before_rev) if args.before_rev else args.before
    for checkout in (ROOT, BEFORE):
        if checkout is not None:
            compile_modules(checkout)
    allowed = sorted(os.sched_getaffinity(0))
    core = allowed[-1] if args.core is None else args.core
    temp = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    try:
        folder = args.corpus or temp / "corpus"
        paths = make_corpus(folder, args.images)
        db = make_db(temp / "corpus", paths)
        load = os.getloadavg()
        print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores (allowed {allowed}); "
              f"Python {platform.python_version()}, Pillow {PIL.__version__}, numpy {np.__version__}, "
              f"pdqhash {pdqhash.__version__}; kernel {'built' if kernel.available() else 'NOT built'}; "
              f"load average at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        print(f"# corpus: {len(paths)} files, {sum(p.stat().st_size for p in paths) / 1e6:.1f} MB in {folder}")
        if load[0] > len(allowed) / 2:
            print(f"# warning: the machine is busy (load {load[0]:.1f} on {len(allowed)} cores): wall times and "
                  "the every-core table are not comparable with a quiet run's; the CPU columns hold up better")
        one_core_table(folder, db, len(paths), args.rounds, core)
        if len(allowed) > 1 and not args.skip_all_cores:
            all_cores_table(folder, db, len(paths), args.rounds, core)
        if not args.skip_profile:
            os.sched_setaffinity(0, {core})
            profile(paths)
            os.sched_setaffinity(0, set(allowed))
        draft_check()
        end = os.getloadavg()
        print(f"\n# load average at end {end[0]:.2f} {end[1]:.2f} {end[2]:.2f}")
    finally:
        shutil.rmtree(temp, ignore_errors=True)


if __name__ == "__main__":
    main()
