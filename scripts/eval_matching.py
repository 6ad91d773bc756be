"""Matching quality: recall per edit family, false-positive and wrong-match rates, lookup time.

Everything goes through the service calls `hashdb submit` and `hashdb lookup` make (hash the
file's bytes, build the submission or query, submit, look up); this script and its modules
(eval_corpus: the images; eval_edits: the edit families; eval_report: the counts, table and
targets) hold the corpus and the edits, never a matching rule. See README "Error rates" and
BENCHMARKS.md.

    .venv/bin/python scripts/eval_matching.py                 # full: 800 known, 5,000 negatives
    .venv/bin/python scripts/eval_matching.py --medium        # 400 known, 2,500 negatives
    .venv/bin/python scripts/eval_matching.py --small         # 200 known, 1,000 negatives
    .venv/bin/python scripts/eval_matching.py --corpus synthetic --tiny --check   # what CI runs

The Debian corpus (scripts/eval_corpus.py) needs its packages: `scripts/system-packages.sh
--eval` installs them. Hashing (loading, editing, encoding and hashing each image) runs in
--jobs worker processes through the same service call `hashdb hash` uses; the parent submits
and looks up while the workers hash what comes next. Nothing is cached between runs.

Distinct negatives. Two images of the pool are near-duplicates when, in one of the 8
orientations (rotations and flips), the PDQ of one's whole image or of its content is within
31 bits of the PDQ of the other's whole image or content. "Content" is the image with its
uniform margins trimmed by this script's own trimming (eval_corpus.trim_uniform), so a drawing
on a white page and the same drawing on a black one are the same picture. 31 is PDQ's
published match threshold (Meta's): the fixed line at which the industry calls two images the
same, kept here as a constant, so the pool changes neither with hashdb's thresholds nor with
its detectors (hashdb's derived hashes are not used to build it). Only hashes of quality >= 50
(PDQ's own cut-off) speak: a near-blank image says nothing about sameness. Colour is not part of
it: the "colour" family requires a grey copy of an image to match the image, so two pictures
that differ in colour alone (a red and a green jigsaw piece, the flags of Peru and Nigeria) are
the same picture by the evaluation's own rules; such pairs are counted apart ("recoloured":
mean RGB of the content more than 32 levels apart in a channel). pHash is left out on purpose:
different flags and look-alike emoji collide in it at 0 to 2 bits, and those are false
positives the evaluation must count. The pool keeps an image unless it is a near-duplicate of
one kept before it; each pair left out is reported (count, examples, and all of them in
--json), never scored.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import pickle
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import eval_corpus  # noqa: E402
import eval_edits  # noqa: E402
from eval_report import Tally, check, print_table  # noqa: E402

from hashdb.cli.common import local_principal  # noqa: E402
from hashdb.config import Settings  # noqa: E402
from hashdb.hashing.pdq import PdqSignal  # noqa: E402
from hashdb.service.local import open_database  # noqa: E402
from hashdb.service import HashDB  # noqa: E402
from hashdb.types import HashValue, MediaHashes, Principal  # noqa: E402

LABEL = "glorification"
BATCH = 64
NEAR_DUPLICATE_BITS = 31  # PDQ's published threshold; deliberately not hashdb's setting
PDQ_QUALITY = 50  # PDQ's published quality cut-off
# Near-duplicates whose content's mean colour differs by more than this in a channel (an
# eighth of the range; JPEG and scaling move it by a level or two) are reported as recoloured.
RECOLOURED = 32
T = TypeVar("T")
R = TypeVar("R")


@dataclasses.dataclass(frozen=True)
class Size:
    known: int
    negatives: int
    per_family: int
    timing: int


SIZES = {
    "full": Size(known=800, negatives=5000, per_family=160, timing=30),
    "medium": Size(known=400, negatives=2500, per_family=80, timing=20),
    "small": Size(known=200, negatives=1000, per_family=60, timing=20),
    "tiny": Size(known=40, negatives=120, per_family=12, timing=6),
    # What the test suite runs (tests/test_eval_matching.py): seconds, not minutes.
    "ci": Size(known=30, negatives=100, per_family=8, timing=0),
}


def hashes_of(service: HashDB, data: bytes, name: str) -> MediaHashes:
    return service.hash_bytes(data, name, dihedral=True)


# ----------------------------------------------------------------------------- workers
# Each worker process holds a hashing-only HashDB (as `hashdb hash` uses) and loads the
# source images it needs itself, keeping the known ones it has loaded: every edited query
# starts from one of them.

_WORKER: HashDB | None = None


def _init_worker(settings: Settings) -> None:
    global _WORKER
    from hashdb.store.sqlite_store import SQLiteStore

    _WORKER = HashDB(settings, SQLiteStore(":memory:"))


def _service() -> HashDB:
    assert _WORKER is not None
    return _WORKER


@functools.lru_cache(maxsize=1200)
def _source(key: str) -> Any:
    return eval_corpus.load_source(key)


@dataclasses.dataclass(frozen=True)
class PoolItem:
    key: str
    hashed: MediaHashes  # of the JPEG upload, with all 8 orientations: the negative's query
    content: tuple[HashValue, ...]  # PDQs of trim_uniform(image) in 8 orientations, if it trims
    colour: tuple[float, float, float]  # mean RGB of trim_uniform(image)
    seconds: float


def pool_job(key: str) -> PoolItem | None:
    image = _source(key)
    if image is None:
        return None
    start = time.perf_counter()
    hashed = _service().hash_bytes(eval_edits.encode(image), key, dihedral=True)
    seconds = time.perf_counter() - start
    trimmed = eval_corpus.trim_uniform(image)
    pixels = np.asarray(trimmed)
    content = PdqSignal().dihedral_array(pixels) if trimmed.size != image.size else ()
    colour = tuple(float(c) for c in pixels.reshape(-1, 3).mean(axis=0))
    return PoolItem(key, hashed, content, colour, seconds)  # type: ignore[arg-type]


def submission_job(key: str) -> tuple[MediaHashes, float]:
    """Originals are submitted lossless."""
    start = time.perf_counter()
    hashed = _service().hash_bytes(eval_edits.encode_lossless(_source(key)), key)
    return hashed, time.perf_counter() - start


def query_job(job: tuple[str, str, int, str]) -> tuple[MediaHashes, float]:
    key, family_name, strength, seed = job
    family = eval_edits.FAMILY[family_name]
    edited = family.edit(_source(key), random.Random(seed), family.strengths[strength])
    data = eval_edits.encode(edited)
    start = time.perf_counter()
    hashed = _service().hash_bytes(data, f"{family_name}/{key}", dihedral=True)
    return hashed, time.perf_counter() - start


class Workers:
    """Results of `fn` over items, in order, from `jobs` processes (or this one), with a
    bounded number in flight so that a consumer may stop early and so that the parent's
    lookups overlap the workers' hashing."""

    def __init__(self, settings: Settings, jobs: int) -> None:
        self.pool = ProcessPoolExecutor(jobs, initializer=_init_worker, initargs=(settings,)) if jobs > 1 else None
        if self.pool is None:
            _init_worker(settings)
        self.window = 16 * jobs

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        if self.pool is None:
            yield from map(fn, items)
            return
        pending: list[Future[R]] = []
        source = iter(items)
        try:
            for item in source:
                pending.append(self.pool.submit(fn, item))
                if len(pending) >= self.window:
                    yield pending.pop(0).result()
            while pending:
                yield pending.pop(0).result()
        finally:
            for future in pending:
                future.cancel()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)


def batches(items: Iterable[T], size: int = BATCH) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


# ----------------------------------------------------------------------------- the pool

@dataclasses.dataclass
class Pool:
    items: list[PoolItem]  # kept, in pool order
    pairs: list[dict[str, object]]  # near-duplicates left out
    offered: int  # candidates looked at
    seconds: float  # hashing CPU


def _codes(values: Sequence[HashValue]) -> np.ndarray:
    return np.frombuffer(bytes.fromhex("".join(v.hex for v in values)), dtype=np.uint8).reshape(len(values), 32)


def _colour_gap(a: PoolItem, b: PoolItem) -> float:
    return max(abs(x - y) for x, y in zip(a.colour, b.colour))


def build_pool(workers: Workers, keys: Sequence[str], enough: Callable[[list[PoolItem]], bool],
               progress: bool) -> Pool:
    """Greedy, in pool order: keep an image unless it is a near-duplicate (see the module's
    docstring) of one kept before it. The candidate's side holds all 8 orientations and the
    kept side only the upright one, which suffices: T(a) near b is a near T^-1(b)."""
    stored = faiss.IndexBinaryFlat(256)
    owners: list[tuple[int, str]] = []  # per stored PDQ: (kept index, "whole" | "content")
    pool = Pool([], [], 0, 0.0)
    for item in workers.map(pool_job, keys):
        pool.offered += 1
        if progress and pool.offered % 1000 == 0:
            print(f"  pool: {pool.offered} candidates, {len(pool.items)} kept", file=sys.stderr)
        if item is None:
            continue
        pool.seconds += item.seconds
        whole = [v for v in (*item.hashed.hashes, *item.hashed.dihedral) if v.signal == "pdq"]
        probes = [(v, "whole") for v in whole] + [(v, "content") for v in item.content]
        probes = [(v, view) for v, view in probes if (v.quality or 0) >= PDQ_QUALITY]
        if probes and owners:
            lims, distances, ids = stored.range_search(_codes([v for v, _ in probes]), NEAR_DUPLICATE_BITS + 1)
            if lims[-1] > 0:
                best = int(np.argmin(distances))
                probe = int(np.searchsorted(lims, best, side="right")) - 1
                kept, view = owners[int(ids[best])]
                pool.pairs.append({"left_out": item.key, "kept": pool.items[kept].key,
                                   "views": f"{probes[probe][1]}/{view}", "distance": int(distances[best]),
                                   "colour": round(_colour_gap(item, pool.items[kept]))})
                continue
        upright = [(p, view) for p, view in probes if p in (whole[0], *item.content[:1])]
        if upright:
            stored.add(_codes([v for v, _ in upright]))
            owners.extend((len(pool.items), view) for _, view in upright)
        pool.items.append(item)
        if enough(pool.items):
            break
    return pool


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--corpus", choices=("debian", "synthetic"), default="debian")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--medium", action="store_const", dest="size", const="medium")
    size.add_argument("--small", action="store_const", dest="size", const="small")
    size.add_argument("--tiny", action="store_const", dest="size", const="tiny")
    size.add_argument("--ci", action="store_const", dest="size", const="ci", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--families", help="comma-separated family names (default: all)")
    parser.add_argument("--json", dest="json_out", help="also write the results as JSON to this file")
    parser.add_argument("--dump", help="also pickle every submission's and query's hashes to this file "
                        "(replay lookups offline: scripts/eval_replay.py)")
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

    families = eval_edits.FAMILIES
    if args.families:
        wanted = set(args.families.split(","))
        unknown = wanted - set(eval_edits.FAMILY)
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
        workers = Workers(service.settings, args.jobs)
        hash_seconds = 0.0

        # 1. the distinct pool: the first shareable images are the known ones, the rest negatives
        t0 = time.perf_counter()
        need = size_spec.known + size_spec.negatives

        def shareable(item: PoolItem) -> bool:
            return any(v.signal == "pdq" and (v.quality or 0) >= service.settings.pdq_min_quality
                       for v in item.hashed.hashes)

        def enough(items: list[PoolItem]) -> bool:
            return len(items) >= need and sum(map(shareable, items)) >= size_spec.known

        keys = eval_corpus.candidates(args.corpus, args.seed, int(need * 1.35) + 50)
        pool = build_pool(workers, keys, enough, progress)
        hash_seconds += pool.seconds
        pool_seconds = time.perf_counter() - t0

        # 2. submit the known images as a member would: the first shareable ones, judged on
        # the lossless file they are submitted as (its PDQ quality can fall under the JPEG's)
        t0 = time.perf_counter()
        owner: dict[int, str] = {}  # record id -> source key
        known: list[PoolItem] = []
        submitted: list[tuple[str, MediaHashes]] = []  # what each known image was submitted as
        offered = [item for item in pool.items if shareable(item)]
        for chunk in batches(zip(offered, workers.map(submission_job, [item.key for item in offered]))):
            hash_seconds += sum(seconds for _, (_, seconds) in chunk)
            chosen = [(item, hashed) for item, (hashed, _) in chunk
                      if any(v.signal == "pdq" and (v.quality or 0) >= service.settings.pdq_min_quality
                             for v in hashed.hashes)][:size_spec.known - len(known)]
            subs = [service.submission_for(hashed, [LABEL]) for _, hashed in chosen]
            for (item, hashed), result in zip(chosen, service.submit(subs, actor) if subs else []):
                known.append(item)
                submitted.append((item.key, hashed))
                for record_id in result.ids:
                    owner[record_id] = item.key
            if len(known) >= size_spec.known:
                break
        known_keys = {item.key for item in known}
        negatives = [item for item in pool.items if item.key not in known_keys][:size_spec.negatives]
        if progress:
            print(f"pool: {pool.offered} candidates, {len(pool.items)} distinct ({len(pool.pairs)} near-duplicates "
                  f"left out), {len(known)} known, {len(negatives)} negatives, {pool_seconds:.0f} s", file=sys.stderr)
        service.load_index()
        submit_seconds = time.perf_counter() - t0

        # 3. edited queries of every family, hashed by the workers while this process looks up
        rng = random.Random(args.seed)
        jobs = []
        for family in families:
            for q in range(size_spec.per_family):
                key = known[rng.randrange(len(known))].key
                jobs.append((key, family.name, q % len(family.strengths), f"{args.seed}/{family.name}/{q}"))
        tally = Tally(owner)
        lookup_start = time.perf_counter()
        queried: list[tuple[tuple[str, str, int, str], MediaHashes]] = []
        for chunk in batches(zip(jobs, workers.map(query_job, jobs))):
            hash_seconds += sum(seconds for _, (_, seconds) in chunk)
            results = service.lookup([service.query_for(hashed) for _, (hashed, _) in chunk], actor)
            for (job, (hashed, _)), result in zip(chunk, results):
                tally.query(job, result)
                if args.dump:
                    queried.append((job, hashed))

        # 4. negatives: distinct images never submitted, hashed once when the pool was built
        for chunk in batches(negatives):
            results = service.lookup([service.query_for(item.hashed) for item in chunk], actor)
            for item, result in zip(chunk, results):
                tally.negative(item.key, result)
        lookup_seconds = time.perf_counter() - lookup_start
        workers.close()
        if args.dump:
            with open(args.dump, "wb") as out:
                pickle.dump({"seed": args.seed, "size": size_name, "submitted": submitted, "queries": queried,
                             "negatives": [(item.key, item.hashed) for item in negatives]}, out)
        # 5. time per 1-megapixel image, this lookup against the reference path, interleaved
        timing = (time_megapixel(service, reference, actor, [eval_corpus.load_source(item.key)
                                                             for item in known[:size_spec.timing]])
                  if size_spec.timing else {"reference_ms": 0.0, "current_ms": 0.0, "ratio": 0.0})

    rows = tally.rows(families)
    total_queries = sum(r["queries"] for r in rows)
    lookups = total_queries + len(negatives)
    mean_recall = statistics.mean(r["recall"] for r in rows) if rows else 0.0
    summary = {
        "corpus": args.corpus, "size": size_name, "jobs": args.jobs, "path": "reference" if args.reference else "current",
        "seed": args.seed, "known": len(known), "negatives": len(negatives),
        "sources": dict(Counter(item.key.partition(":")[0] for item in known + negatives)),
        "known_sources": dict(Counter(item.key.partition(":")[0] for item in known)),
        "candidates": pool.offered, "near_duplicate_pairs": len(pool.pairs), "near_duplicates": pool.pairs,
        "near_duplicate_bits": NEAR_DUPLICATE_BITS, "recoloured_gap": RECOLOURED,
        "recoloured_pairs": sum(p["colour"] > RECOLOURED for p in pool.pairs),  # type: ignore[operator]
        "families": rows, "mean_recall": mean_recall, "false_positives": tally.false_positives,
        "fp_rate": tally.false_positives / max(1, len(negatives)),
        "wrong_match_rate": tally.wrong_queries / max(1, total_queries),
        "ms_per_lookup": 1000 * lookup_seconds / max(1, lookups),
        "ms_hashing_per_image": 1000 * hash_seconds / max(1, pool.offered + len(known) + total_queries),
        "timing_1mp": timing, "fp_examples": tally.fp_examples, "per_query": tally.per_query,
        "by_signal": {"/".join(k): dict(sorted(v.items())) for k, v in sorted(tally.by_signal.items())},
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
        payloads.append(eval_edits.encode(eval_edits.border(big, random.Random(0), (0.05, "black"))))
    spent = {"reference": [], "current": []}  # type: dict[str, list[float]]
    for _ in range(3):
        for name, svc in (("reference", reference), ("current", service)):
            start = time.perf_counter()
            for data in payloads:
                svc.lookup([svc.query_for(hashes_of(svc, data, "timing"))], actor)
            spent[name].append((time.perf_counter() - start) / max(1, len(payloads)))
    ref, cur = min(spent["reference"]), min(spent["current"])
    return {"reference_ms": 1000 * ref, "current_ms": 1000 * cur, "ratio": cur / ref if ref else 0.0}


if __name__ == "__main__":
    sys.exit(main())
