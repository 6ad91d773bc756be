"""Matching quality: recall per edit family, false-positive and wrong-match rates, lookup time.

Everything goes through the service calls `hashdb submit` and `hashdb lookup` make (hash the
file's bytes, build the submission or query, submit, look up); this script holds the corpus
and the edits, never a matching rule. See README "Error rates" and BENCHMARKS.md.

    .venv/bin/python scripts/eval_matching.py                 # full: 800 known, up to 5,000 negatives
    .venv/bin/python scripts/eval_matching.py --small         # a few minutes
    .venv/bin/python scripts/eval_matching.py --corpus synthetic --tiny --check   # what CI runs

The Debian corpus needs `apt-get install openclipart-png fonts-noto-color-emoji`.

Distinct: the pool keeps an image only if none of its PDQs (whole image and derived, in all 8
orientations) is within the PDQ threshold (31) of a PDQ stored for an image kept before it.
The near-duplicate pairs found are counted and reported, never scored as false positives.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from collections.abc import Sequence
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import eval_corpus  # noqa: E402

from hashdb.cli.common import local_principal  # noqa: E402
from hashdb.config import Settings  # noqa: E402
from hashdb.service.local import open_database  # noqa: E402
from hashdb.service import HashDB  # noqa: E402
from hashdb.types import LookupResult, MediaHashes, Principal  # noqa: E402

LABEL = "glorification"
BITS_64 = ("phash", "dhash")
BATCH = 64


@dataclasses.dataclass(frozen=True)
class Size:
    known: int
    negatives: int
    per_family: int
    timing: int


SIZES = {
    "full": Size(known=800, negatives=5000, per_family=160, timing=30),
    "small": Size(known=200, negatives=1000, per_family=60, timing=20),
    "tiny": Size(known=40, negatives=120, per_family=12, timing=6),
    # What the test suite runs (tests/test_eval_matching.py): seconds, not minutes.
    "ci": Size(known=30, negatives=100, per_family=8, timing=0),
}
# What --check requires (the targets); a family may set a lower target.
MEAN_RECALL = 0.92
MAX_FP_RATE = 0.001
MAX_WRONG_RATE = 0.002


def hashes_of(service: HashDB, data: bytes, name: str) -> MediaHashes:
    return service.hash_bytes(data, name, dihedral=True)


# Hashing is most of the work and needs no database: worker processes do it with the same
# service call (a hashing-only HashDB, as `hashdb hash` uses), the parent submits and looks up.
_WORKER: HashDB | None = None


def _init_worker(settings: Settings) -> None:
    global _WORKER
    from hashdb.store.sqlite_store import SQLiteStore

    _WORKER = HashDB(settings, SQLiteStore(":memory:"))


def _hash_job(job: tuple[bytes, str, bool, tuple[str, ...] | None]) -> tuple[MediaHashes, float]:
    data, name, dihedral, signals = job
    assert _WORKER is not None
    start = time.perf_counter()
    hashed = _WORKER.hash_bytes(data, name, signals, dihedral=dihedral)
    return hashed, time.perf_counter() - start


class Hasher:
    def __init__(self, settings: Settings, jobs: int) -> None:
        self.pool = ProcessPoolExecutor(jobs, initializer=_init_worker, initargs=(settings,)) if jobs > 1 else None
        if self.pool is None:
            _init_worker(settings)
        self.seconds = 0.0

    def hash(self, items: Sequence[tuple[bytes, str]], dihedral: bool,
             signals: tuple[str, ...] | None = None) -> list[MediaHashes]:
        jobs = [(data, name, dihedral, signals) for data, name in items]
        results = list(self.pool.map(_hash_job, jobs, chunksize=8)) if self.pool else [_hash_job(j) for j in jobs]
        self.seconds += sum(t for _, t in results)
        return [h for h, _ in results]

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()


def pdqs(values: Sequence[object]) -> list[str]:
    return [v.hex for v in values if getattr(v, "signal", None) == "pdq"]  # type: ignore[attr-defined]


def select_distinct(service: HashDB, hasher: Hasher, images: list[tuple[str, object]], want: int,
                    progress: bool) -> tuple[list[int], list[MediaHashes], int]:
    """Greedy: keep an image unless a query-side PDQ of it is within 31 of a stored-side PDQ
    of an image already kept (or the other way round). Returns kept indexes, all hashes, and
    how many near-duplicate pairs were dropped."""
    # One direction suffices: the query side holds all 8 orientations, so T(a) near b is
    # T^-1(b) near a.
    hashed: list[MediaHashes] = []
    for start in range(0, len(images), 500):
        chunk = [(eval_corpus.encode_lossless(image), name) for name, image in images[start:start + 500]]  # type: ignore[arg-type]
        hashed += hasher.hash(chunk, dihedral=True, signals=("pdq",))
        if progress:
            print(f"  hashed {len(hashed)}/{len(images)} pool images", file=sys.stderr)
    stored = faiss.IndexBinaryFlat(256)
    owners: list[int] = []
    kept: list[int] = []
    pairs = 0
    for n, h in enumerate(hashed):
        query = pdqs(service.query_for(h).hashes)
        mine = pdqs(service.submission_for(h, [LABEL]).hashes)
        if not query or not mine:
            continue
        near = False
        if owners:
            codes = np.frombuffer(bytes.fromhex("".join(query)), dtype=np.uint8).reshape(len(query), 32)
            lims, _, _ = stored.range_search(codes, 32)
            near = lims[-1] > 0
        if near:
            pairs += 1
            continue
        kept.append(n)
        stored.add(np.frombuffer(bytes.fromhex("".join(mine)), dtype=np.uint8).reshape(len(mine), 32))
        owners.extend([n] * len(mine))
        if len(kept) >= want:
            break
    return kept, hashed, pairs


def lookup_batch(service: HashDB, hasher: Hasher, actor: Principal,
                 items: list[tuple[str, bytes]]) -> list[LookupResult]:
    hashed = hasher.hash([(data, name) for name, data in items], dihedral=True)
    return service.lookup([service.query_for(h) for h in hashed], actor)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--corpus", choices=("debian", "synthetic"), default="debian")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--small", action="store_const", dest="size", const="small")
    size.add_argument("--tiny", action="store_const", dest="size", const="tiny")
    size.add_argument("--ci", action="store_const", dest="size", const="ci", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--families", help="comma-separated family names (default: all)")
    parser.add_argument("--json", dest="json_out", help="also write the results as JSON to this file")
    parser.add_argument("--check", action="store_true", help="exit 1 unless the targets are met")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    parser.add_argument("--jobs", type=int, default=2, help="hashing processes (default 2)")
    parser.add_argument("--reference", action="store_true",
                        help="evaluate the reference path (whole-file hashes only, ungated pHash): the 'before'")
    args = parser.parse_args(argv)
    size_name = args.size or "full"
    size_spec = SIZES[size_name]
    progress = not args.quiet
    wall = time.perf_counter()

    families = eval_corpus.FAMILIES
    if args.families:
        wanted = set(args.families.split(","))
        unknown = wanted - {f.name for f in families}
        if unknown:
            parser.error(f"unknown families: {', '.join(sorted(unknown))}")
        families = tuple(f for f in families if f.name in wanted)

    with tempfile.TemporaryDirectory(prefix="hashdb-eval-") as tmp:
        service = open_database(Path(tmp) / "eval.sqlite")
        actor = local_principal(service, "eval")
        reference = HashDB(dataclasses.replace(service.settings, **reference_settings()), service.store,
                           service.indexes, service.taxonomy, service.server_secret)
        if args.reference:
            service = reference

        hasher = Hasher(service.settings, args.jobs)
        # 1. corpus and the distinct pool
        need = size_spec.known + size_spec.negatives
        t0 = time.perf_counter()
        images = eval_corpus.load(args.corpus, int(need * 1.35) + 50, args.seed)
        kept, hashed, near_pairs = select_distinct(service, hasher, images, need, progress)
        pool_seconds = time.perf_counter() - t0
        # Known images: those a member could share (PDQ quality >= 50), the first in pool order.
        shareable = [n for n in kept if any(v.signal == "pdq" and (v.quality or 0) >= service.settings.pdq_min_quality
                                            for v in hashed[n].hashes)]
        known = shareable[:size_spec.known]
        negatives = [n for n in kept if n not in set(known)][:size_spec.negatives]
        if progress:
            print(f"pool: {len(images)} loaded, {len(kept)} distinct ({near_pairs} near-duplicates dropped), "
                  f"{len(known)} known, {len(negatives)} negatives, {pool_seconds:.0f} s", file=sys.stderr)

        # 2. submit the known images as a member would
        t0 = time.perf_counter()
        owner: dict[int, int] = {}  # record id -> image index
        for start in range(0, len(known), BATCH):
            chunk = known[start:start + BATCH]
            files = hasher.hash([(eval_corpus.encode_lossless(images[n][1]), images[n][0]) for n in chunk],  # type: ignore[arg-type]
                                dihedral=False)
            subs = [service.submission_for(h, [LABEL]) for h in files]
            for n, result in zip(chunk, service.submit(subs, actor)):
                for record_id in result.ids:
                    owner[record_id] = n
        service.load_index()
        submit_seconds = time.perf_counter() - t0

        # 3. edited queries per family
        rng = random.Random(args.seed)
        rows = []
        by_signal: dict[tuple[str, str, str], Counter[int]] = defaultdict(Counter)  # (signal, via, right|wrong)
        hasher.seconds = 0.0
        lookup_start = time.perf_counter()
        lookups = 0
        for family in families:
            cases: list[tuple[int, bytes, object]] = []
            for q in range(size_spec.per_family):
                n = known[rng.randrange(len(known))]
                strength = family.strengths[q % len(family.strengths)]
                edited = family.edit(images[n][1], rng, strength)  # type: ignore[arg-type]
                cases.append((n, eval_corpus.encode(edited), strength))
            hits = wrong = hits_256 = 0
            per_strength: dict[str, list[int]] = defaultdict(lambda: [0, 0])
            for start in range(0, len(cases), BATCH):
                chunk = cases[start:start + BATCH]
                results = lookup_batch(service, hasher, actor, [(f"{family.name}/{n}", d) for n, d, _ in chunk])
                lookups += len(chunk)
                for (n, _, strength), result in zip(chunk, results):
                    own = [m for m in result.matches if owner.get(m.id) == n]
                    other = [m for m in result.matches if owner.get(m.id) not in (None, n)]
                    hits += bool(own)
                    hits_256 += any(m.signal not in BITS_64 for m in own)
                    wrong += bool(other)
                    per_strength[str(strength)][0] += bool(own)
                    per_strength[str(strength)][1] += 1
                    for m in own:
                        by_signal[(m.signal, getattr(m, "via", None) or "", "right")][m.distance] += 1
                    for m in other:
                        by_signal[(m.signal, getattr(m, "via", None) or "", "wrong")][m.distance] += 1
            rows.append({"family": family.name, "queries": len(cases), "recall": hits / len(cases),
                         "wrong": wrong / len(cases),
                         "recall_256": hits_256 / len(cases), "target": family.target,
                         "by_strength": {k: v[0] / v[1] for k, v in per_strength.items()}})
            if progress:
                print(f"  {family.name}: recall {hits / len(cases):.3f}, wrong {wrong}", file=sys.stderr)

        # 4. negatives: distinct images never submitted
        fp = 0
        fp_examples: list[str] = []
        for start in range(0, len(negatives), BATCH):
            chunk = negatives[start:start + BATCH]
            results = lookup_batch(service, hasher, actor, [(images[n][0], eval_corpus.encode(images[n][1]))
                                                             for n in chunk])
            lookups += len(chunk)
            for n, result in zip(chunk, results):
                if result.matched:
                    fp += 1
                    m = result.matches[0]
                    via = getattr(m, "via", None) or ""
                    by_signal[(m.signal, via, "false_positive")][m.distance] += 1
                    if len(fp_examples) < 10:
                        fp_examples.append(f"{images[n][0]} -> {images[owner[m.id]][0]} "
                                           f"({m.signal}{'/' + via if via else ''} at {m.distance})")

        lookup_seconds = time.perf_counter() - lookup_start
        hash_seconds = hasher.seconds
        hasher.close()
        # 5. time per 1-megapixel image, this lookup against the reference path, interleaved
        timing = (time_megapixel(service, reference, actor, [images[n][1] for n in known[:size_spec.timing]])
                  if size_spec.timing else {"reference_ms": 0.0, "current_ms": 0.0, "ratio": 0.0})

    total_queries = sum(r["queries"] for r in rows)
    mean_recall = statistics.mean(r["recall"] for r in rows) if rows else 0.0
    wrong_rate = sum(r["wrong"] * r["queries"] for r in rows) / max(1, total_queries)
    fp_rate = fp / max(1, len(negatives))
    summary = {
        "corpus": args.corpus, "size": size_name, "jobs": args.jobs, "path": "reference" if args.reference else "current", "seed": args.seed, "known": len(known),
        "negatives": len(negatives), "near_duplicate_pairs": near_pairs, "families": rows,
        "mean_recall": mean_recall, "false_positives": fp, "fp_rate": fp_rate,
        "wrong_match_rate": wrong_rate, "ms_per_lookup": 1000 * lookup_seconds / max(1, lookups),
        "ms_hashing_per_lookup": 1000 * hash_seconds / max(1, lookups),
        "timing_1mp": timing, "fp_examples": fp_examples,
        "by_signal": {"/".join(k): dict(sorted(v.items())) for k, v in sorted(by_signal.items())},
        "seconds": {"pool": pool_seconds, "submit": submit_seconds, "total": time.perf_counter() - wall},
    }
    print_table(summary)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(summary, indent=1))
    if args.check:
        failures = check(summary)
        for failure in failures:
            print(f"FAIL {failure}")
        return 1 if failures else 0
    return 0


def reference_settings() -> dict[str, object]:
    """Settings for the reference path: matching as it was before derived hashes and the gate
    on 64-bit matches (whole-file hashes only, pHash/dHash at their full threshold)."""
    return {"derived_hashes": False, "imagehash_threshold_with_pdq": Settings().imagehash_threshold}


def time_megapixel(service: HashDB, reference: HashDB, actor: Principal, images: list[object]) -> dict[str, float]:
    from PIL import Image

    payloads = []
    for image in images:
        assert isinstance(image, Image.Image)
        scale = (1_000_000 / (image.width * image.height)) ** 0.5
        big = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.BICUBIC)
        payloads.append(eval_corpus.encode(eval_corpus.border(big, random.Random(0), (0.05, "black"))))
    spent = {"reference": [], "current": []}  # type: dict[str, list[float]]
    for _ in range(3):
        for name, svc in (("reference", reference), ("current", service)):
            start = time.perf_counter()
            for data in payloads:
                svc.lookup([svc.query_for(hashes_of(svc, data, "timing"))], actor)
            spent[name].append((time.perf_counter() - start) / max(1, len(payloads)))
    ref, cur = min(spent["reference"]), min(spent["current"])
    return {"reference_ms": 1000 * ref, "current_ms": 1000 * cur, "ratio": cur / ref if ref else 0.0}


def print_table(s: dict) -> None:  # type: ignore[type-arg]
    print(f"{s['path']} matching; corpus {s['corpus']} ({s['size']}): {s['known']} known images, {s['negatives']} distinct negatives, "
          f"{s['near_duplicate_pairs']} near-duplicate pairs left out of the pool")
    print(f"{'family':<24} {'queries':>7} {'recall':>7} {'wrong':>7} {'target':>7} {'no64':>6}  by strength")
    for r in s["families"]:
        strengths = ", ".join(f"{k} {v:.2f}" for k, v in r["by_strength"].items())
        mark = "" if r["recall"] >= r["target"] else "  <"
        print(f"{r['family']:<24} {r['queries']:>7} {r['recall']:>7.3f} {r['wrong']:>7.3f} {r['target']:>7.2f}"
              f" {r['recall_256']:>6.3f}  {strengths}{mark}")
    print(f"mean recall {s['mean_recall']:.3f}; false positives {s['false_positives']}/{s['negatives']} "
          f"({100 * s['fp_rate']:.2f} %); wrong-match rate {100 * s['wrong_match_rate']:.2f} %; "
          f"{s['ms_per_lookup']:.1f} ms wall per edited or negative image ({args_jobs(s)}), of which hashing "
          f"{s['ms_hashing_per_lookup']:.1f} ms CPU")
    t = s["timing_1mp"]
    print(f"1-megapixel lookup: {t['current_ms']:.1f} ms, reference path {t['reference_ms']:.1f} ms, "
          f"ratio {t['ratio']:.2f}")
    print("no64: recall counting only matches through 256-bit PDQ (whole or derived)")
    print("matches by signal/via and distance (right = own image, wrong = another known image):")
    for key, hist in s["by_signal"].items():
        print(f"  {key:<28} " + " ".join(f"{d}:{c}" for d, c in hist.items()))
    for example in s["fp_examples"]:
        print(f"  false positive: {example}")
    secs = s["seconds"]
    print(f"time: pool {secs['pool']:.0f} s, submit {secs['submit']:.0f} s, total {secs['total']:.0f} s")


def args_jobs(s: dict) -> str:  # type: ignore[type-arg]
    return f"{s['jobs']} hashing processes"


def check(s: dict) -> list[str]:  # type: ignore[type-arg]
    failures = [f"{r['family']} recall {r['recall']:.3f} < {r['target']}" for r in s["families"]
                if r["recall"] < r["target"]]
    if s["mean_recall"] < MEAN_RECALL:
        failures.append(f"mean recall {s['mean_recall']:.3f} < {MEAN_RECALL}")
    if s["fp_rate"] > MAX_FP_RATE:
        failures.append(f"false-positive rate {s['fp_rate']:.4f} > {MAX_FP_RATE}")
    if s["wrong_match_rate"] > MAX_WRONG_RATE:
        failures.append(f"wrong-match rate {s['wrong_match_rate']:.4f} > {MAX_WRONG_RATE}")
    return failures


if __name__ == "__main__":
    sys.exit(main())
