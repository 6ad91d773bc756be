"""CPU time of FaissIndex's multi-index search: the compiled kernel against the numpy path.

    taskset -c 1 .venv/bin/python scripts/bench_index_paths.py --sizes 1000000,10000000 --rounds 4

One index per size over N random 256-bit PDQ codes, searched at radius 31 by 2,000 queries
(1,000 stored codes with 8 bits flipped, 1,000 random), one at a time and in batches of 100.
Both paths search the same index in the same process, in alternating order round by round;
numbers are CPU time (time.process_time) per query, so a busy machine inflates them less than
wall time (cache and memory contention still count). Both paths' answers are checked equal.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

from hashdb.index.faiss_index import FaissIndex

RADIUS = 31
QUERIES = 2000


def cpu_per_query(index: FaissIndex, queries: np.ndarray, batch: int) -> float:
    start = time.process_time()
    for lo in range(0, len(queries), batch):
        index.search(queries[lo : lo + batch], RADIUS)
    return (time.process_time() - start) / len(queries) * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000000", help="comma-separated index sizes")
    parser.add_argument("--rounds", type=int, default=4, help="alternated rounds per size")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    print("| size | tables | path | single, us CPU a query (rounds) | batch 100, us CPU a query (rounds) | load |")
    print("|---:|---|---|---|---|---|")
    for n in (int(s) for s in args.sizes.split(",")):
        rng = np.random.default_rng(args.seed + n)
        codes = np.empty((n, 32), dtype=np.uint8)
        for lo in range(0, n, 1 << 20):
            codes[lo : lo + (1 << 20)] = rng.integers(0, 256, size=(min(1 << 20, n - lo), 32), dtype=np.uint8)
        index = FaissIndex(256)
        start = time.perf_counter()
        index.add(np.arange(1, n + 1), codes)
        print(f"# {n:,} codes: built in {time.perf_counter() - start:.1f} s, {index.structure}", file=sys.stderr, flush=True)
        if not index.compiled or index.structure != "mih":
            print("the compiled multi-index search is not in use: nothing to compare", file=sys.stderr)
            return 1
        plan = index._mih.plan(RADIUS) if index._mih else None
        tables = f"{index._mih.chunks} x {index._mih.chunk_bits} bits, {plan.probes if plan else 0} probes" if index._mih else ""
        queries = codes[rng.integers(0, n, QUERIES)].copy()
        for i, bits in enumerate(rng.integers(0, 256, size=(QUERIES // 2, 8))):
            for bit in bits.tolist():
                queries[i, bit // 8] ^= np.uint8(1 << (bit % 8))
        queries[QUERIES // 2 :] = rng.integers(0, 256, size=(QUERIES - QUERIES // 2, 32), dtype=np.uint8)
        del codes
        index.compiled = False
        expected = index.search(queries, RADIUS)
        index.compiled = True
        if index.search(queries, RADIUS) != expected:
            print("the two paths disagree", file=sys.stderr)
            return 1
        found = sum(map(len, expected))
        results: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
        loads = []
        for r in range(args.rounds):
            for compiled in (False, True) if r % 2 == 0 else (True, False):
                index.compiled = compiled
                results[compiled].append((cpu_per_query(index, queries, 1), cpu_per_query(index, queries, 100)))
                loads.append(os.getloadavg()[0])
        for compiled in (False, True):
            single = [s for s, _ in results[compiled]]
            batch = [b for _, b in results[compiled]]
            print(
                f"| {n:,} | {tables}, {found} hits | {'compiled' if compiled else 'numpy'} "
                f"| **{statistics.median(single):.0f}** ({', '.join(f'{s:.0f}' for s in single)}) "
                f"| **{statistics.median(batch):.0f}** ({', '.join(f'{b:.0f}' for b in batch)}) "
                f"| {min(loads):.1f}-{max(loads):.1f} |",
                flush=True,
            )
        del index
    return 0


if __name__ == "__main__":
    sys.exit(main())
