"""How long an index takes to catch up with the change log (what every lookup does first, and
what start-up does after a snapshot), against rebuilding the same index from the store.

Example:
    .venv/bin/python scripts/bench_replay.py --records 20000
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from hashdb.index.indexset import IndexSet
from hashdb.store.sqlite_store import SQLiteStore
from hashdb.types import HashValue, NewRecord, Principal


def random_pdq(rng: random.Random) -> str:
    bits = [1] * 128 + [0] * 128  # half the bits set, like a real PDQ
    rng.shuffle(bits)
    return f"{int(''.join(map(str, bits)), 2):064x}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=20_000, help="PDQ records added after the snapshot")
    args = parser.parse_args()
    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(Path(tmp) / "db.sqlite")
        indexes = IndexSet(store, Path(tmp) / "index")
        indexes.load()  # empty snapshot: every record below is a change to replay
        org = store.ensure_org("bench")
        actor = Principal(org.id, org.name, "admin")
        store.add_records([NewRecord(HashValue("pdq", random_pdq(rng), 90), "image", ("glorification",))
                           for _ in range(args.records)], actor)
        start, cpu = time.perf_counter(), time.process_time()
        applied = indexes.catch_up()
        replay, replay_cpu = time.perf_counter() - start, time.process_time() - cpu
        start, cpu = time.perf_counter(), time.process_time()
        indexes.rebuild()
        rebuild, rebuild_cpu = time.perf_counter() - start, time.process_time() - cpu
        store.close()
    # CPU time beside wall time: on a shared machine the wall time includes waiting for a core.
    print(f"| what | changes | ms | CPU ms |\n|---|---:|---:|---:|\n| catch_up (replay the change log) | {applied:,} | "
          f"{replay * 1000:.0f} | {replay_cpu * 1000:.0f} |\n| reference: rebuild from the store | {args.records:,} "
          f"| {rebuild * 1000:.0f} | {rebuild_cpu * 1000:.0f} |")


if __name__ == "__main__":
    main()
