"""A local lookup of one file against a database holding N images' keypoints: wall time and peak
memory when the keypoint index loads its snapshot, against building it from the store (the
reference), measured in the same run.

    .venv/bin/python scripts/bench_keypoint_index.py --images 2000,10000
    .venv/bin/python scripts/bench_keypoint_index.py --images 2000 --reference-rev 7b918b3 --db-dir /tmp/kpbench

The images: half are crops (50 to 100 % of each side) of the fixtures' originals with their
colours shifted, half are drawn (a random background and 5 to 30 random shapes), each with some
shapes drawn over it; their keypoints are the real ones (hashing/keypoints.stored_keypoints, the
ORB pass a submission makes) and each is stored as a PDQ record (its whole box's PDQ) with them,
straight into the store. The query is a crop of one stored image (80 % of each side, found by
its keypoints alone). Each run is `hashdb lookup --json --db DB QUERY` in a process of its own;
wall time by the clock, peak RSS from wait4. Per round, in order: with the snapshot; without it
(removed first: this code builds the index from the store and saves it, as a first lookup does);
and, with --reference-rev, that commit's code (which builds it on every lookup and saves none).
The table gives the median of the rounds.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
MEDIA = ROOT / "fixtures" / "media"
SNAPSHOT = "keypoints.faiss"


def originals() -> list[Path]:
    """The fixtures' originals (a variant's name is `<stem>_<variant>`)."""
    return sorted(p for p in MEDIA.iterdir() if p.suffix in (".jpg", ".png") and "_" not in p.stem)


def picture(n: int) -> Image.Image:
    rng = np.random.default_rng(n)
    if n % 2:
        bases = originals()
        base = Image.open(bases[(n // 2) % len(bases)]).convert("RGB")
        width, height = base.size
        cw, ch = int(width * rng.uniform(0.5, 1.0)), int(height * rng.uniform(0.5, 1.0))
        x, y = int(rng.integers(0, width - cw + 1)), int(rng.integers(0, height - ch + 1))
        pixels = np.asarray(base.crop((x, y, x + cw, y + ch)), np.float32)
        shifted = pixels * rng.uniform(0.7, 1.3, 3) + rng.uniform(-30, 30, 3)
        image = Image.fromarray(np.clip(shifted, 0, 255).astype(np.uint8))
        shapes = int(rng.integers(2, 8))
    else:
        size = (int(rng.integers(300, 640)), int(rng.integers(300, 640)))
        image = Image.new("RGB", size, tuple(int(c) for c in rng.integers(0, 256, 3)))
        shapes = int(rng.integers(5, 30))
    draw = ImageDraw.Draw(image)
    width, height = image.size
    for _ in range(shapes):
        box = sorted(rng.integers(0, width, 2).tolist()) + sorted(rng.integers(0, height, 2).tolist())
        left, right, top, bottom = box
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        kind = int(rng.integers(0, 3))
        if kind == 0:
            draw.rectangle((left, top, right, bottom), fill=colour)
        elif kind == 1:
            draw.ellipse((left, top, right, bottom), fill=colour)
        else:
            draw.line((left, top, right, bottom), fill=colour, width=int(rng.integers(1, 8)))
    return image


def stored(n: int) -> tuple[str, int, bytes] | None:
    """(whole box's PDQ, its quality, stored keypoints) of picture `n`, or None if it has none."""
    from hashdb.hashing import derived, keypoints

    blob = keypoints.stored_keypoints(derived.work_copy(picture(n)), 50)
    if blob is None:
        return None
    pdq, quality = keypoints.parse(blob).boxes[keypoints.WHOLE]
    return pdq, quality, blob


def build(path: Path, count: int) -> int:
    """A database of `count` images' keypoints at `path` (reused when it holds them); which
    picture the query is cropped from (kept beside it)."""
    from hashdb.store.sqlite_store import SQLiteStore
    from hashdb.types import HashValue, NewRecord, Principal

    source = path.with_name(path.name + ".query")
    if path.exists() and source.exists():
        store = SQLiteStore(path)
        held = [row[0] for row in store.keypoint_rows(count - 1, 2)] == [count]
        store.close()
        if held:
            return int(source.read_text())
    for name in (path.name, path.name + "-wal", path.name + "-shm", source.name):
        (path.parent / name).unlink(missing_ok=True)
    shutil.rmtree(path.with_name(path.name + ".index"), ignore_errors=True)
    started = time.perf_counter()
    store = SQLiteStore(path)
    org = store.ensure_org("bench")
    actor = Principal(org.id, org.name, "admin")
    seen: set[str] = set()
    records: list[NewRecord] = []
    pictures: list[int] = []
    with multiprocessing.get_context("fork").Pool() as pool:
        for n, found in enumerate(pool.imap(stored, range(count * 2), chunksize=16)):
            if found is None or found[0] in seen:
                continue
            seen.add(found[0])
            pdq, quality, blob = found
            records.append(NewRecord(HashValue("pdq", pdq, quality), "image", ("glorification",), keypoints=blob))
            pictures.append(n)
            if len(records) == count:
                break
    if len(records) < count:
        raise SystemExit(f"only {len(records)} of {count} pictures had keypoints")
    for start in range(0, count, 1_000):
        store.add_records(records[start:start + 1_000], actor)
    store.close()
    print(f"built {path}: {count:,} images' keypoints in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    source.write_text(str(pictures[count // 2]))
    return pictures[count // 2]


def query(folder: Path, n: int) -> Path:
    image = picture(n)
    width, height = image.size
    path = folder / "query.jpg"
    image.crop((0, round(0.2 * height), round(0.8 * width), height)).save(path, quality=90)
    return path


def run(checkout: Path, db: Path, file: Path) -> tuple[float, int, str]:
    """One `hashdb lookup` in its own process: wall seconds, peak RSS in MB, its output."""
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    # -P: the checkout named by PYTHONPATH, not the working directory's, is the one imported.
    command = [sys.executable, "-P", "-c", "import hashdb.cli as c; getattr(c, 'main', c.cli)()",
               "lookup", "--json", "--db", str(db), str(file)]
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        # Not communicate(): it reaps the process, and wait4 is what reports its peak memory.
        proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=err)
        out = proc.stdout.read()  # type: ignore[union-attr]
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            err.seek(0)
            raise SystemExit(f"lookup failed ({proc.returncode}): {err.read().decode()}")
    return wall, usage.ru_maxrss // 1024, out.decode()


def remove_snapshot(db: Path) -> None:
    for leftover in db.with_name(db.name + ".index").glob(f"*{SNAPSHOT}*"):
        leftover.unlink()


def snapshot_mb(db: Path) -> float:
    return sum(p.stat().st_size for p in db.with_name(db.name + ".index").glob(f"{SNAPSHOT}.*")) / 1e6


def matched(output: str) -> str:
    doc = json.loads(output)
    return ",".join(f"{m['id']}:{m.get('via')}" for m in doc["matches"]) or "none"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", default="2000,10000", help="Comma-separated stored image counts.")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--db-dir", type=Path,
                        help="Keep the databases here and reuse them (default: a temporary folder).")
    parser.add_argument("--reference-rev",
                        help="Also time this commit's code (checked out as scripts/bench_api.py does).")
    args = parser.parse_args()
    reference = None
    if args.reference_rev is not None:
        sys.path.insert(0, str(ROOT / "scripts"))
        from bench_api import reference_checkout

        reference = reference_checkout(args.reference_rev)
    folder = args.db_dir or Path(os.environ.get("TMPDIR", "/tmp")) / f"hashdb-kpbench-{os.getpid()}"
    folder.mkdir(parents=True, exist_ok=True)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.1f} at start; {args.rounds} rounds, medians")
    print()
    print("| images | keypoints index | wall s | peak RSS MB | snapshot MB | match |")
    print("|---:|---|---:|---:|---:|---|")
    try:
        for count in (int(n) for n in args.images.split(",")):
            db = folder / f"kp-{count}.sqlite"
            source = build(db, count)
            file = query(folder, source)
            run(ROOT, db, file)  # warm: the hash indexes' snapshot and the keypoint snapshot saved
            sides: dict[str, list[tuple[float, int, str]]] = {"loaded from its snapshot": [],
                                                              "built from the store, then saved": []}
            if reference is not None:
                sides[f"reference: built from the store ({args.reference_rev})"] = []
            for _ in range(args.rounds):
                sides["loaded from its snapshot"].append(run(ROOT, db, file))
                remove_snapshot(db)
                sides["built from the store, then saved"].append(run(ROOT, db, file))
                if reference is not None:
                    sides[f"reference: built from the store ({args.reference_rev})"].append(run(reference, db, file))
            size = f"{snapshot_mb(db):.0f}"
            for name, runs in sides.items():
                answers = " / ".join(sorted({matched(out) for _, _, out in runs}))
                print(f"| {count:,} | {name} | {statistics.median(w for w, _, _ in runs):.2f} | "
                      f"{statistics.median(r for _, r, _ in runs):.0f} | {size} | {answers} |", flush=True)
                size = ""
    finally:
        if args.db_dir is None:
            shutil.rmtree(folder, ignore_errors=True)
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
