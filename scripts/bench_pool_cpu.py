"""Every core on a shared machine: what of a folder's `hashdb hash`/`lookup` CPU runs alone.

    .venv/bin/python scripts/bench_pool_cpu.py --corpus /tmp/corpus200 --db /tmp/bench-e2e.sqlite
    .venv/bin/python scripts/bench_pool_cpu.py --corpus ... --db ... --before /tmp/main-checkout

bench_e2e_hashing.py's every-core table is a wall-time ratio, which other people's work on
the same cores decides as much as ours. This one counts CPU time instead: each command runs
once on one core (its CPU time, interpreter start and exit included, is the one-core cost)
and once on every core, where the parent records its own CPU time when the worker pool
starts and when it ends, and the workers' CPU time is read at exit. What the parent spends
before the pool starts (start-up, imports, opening things) and after it ends (lookup's last
queries, the interpreter's exit) runs on one core while the others wait; the rest is shared out. So on idle cores the wall
time would be about

    before + (parent and workers during the pool) / cores + after

plus the time one worker hashes alone at the end, which this leaves out (with tasks of two
files, about 0.2 % of the one-core time on bench_e2e_hashing's corpus). Rounds alternate the
checkouts; the medians are printed. The corpus and the database are bench_e2e_hashing.py's
(`--corpus`; its database is the 20 files it submits, `make_db`).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Runs `hashdb` in the child with ProcessPoolExecutor's start and shutdown timed in CPU.
WRAPPER = """
import atexit, json, os, resource, sys, time
import concurrent.futures.process as cfp
marks = {}
start, stop = cfp.ProcessPoolExecutor.__init__, cfp.ProcessPoolExecutor.shutdown
def started(self, *a, **k):
    marks.setdefault("pool_start", time.process_time())
    start(self, *a, **k)
def stopped(self, *a, **k):
    stop(self, *a, **k)
    marks["pool_end"] = time.process_time()
cfp.ProcessPoolExecutor.__init__, cfp.ProcessPoolExecutor.shutdown = started, stopped
def report():
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    marks["exit"] = time.process_time()
    marks["children"] = children.ru_utime + children.ru_stime
    with open(os.environ["POOL_CPU_OUT"], "a") as out:
        out.write(json.dumps(marks) + "\\n")
atexit.register(report)
import hashdb.cli
sys.argv[0] = "hashdb"
getattr(hashdb.cli, "main", hashdb.cli.cli)()  # the console script's entry point (`cli` before `main`)
"""


def run(checkout: Path, args: list[str], cores: str, out: Path) -> dict[str, float]:
    out.unlink(missing_ok=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    # -P: the working directory is not put first on sys.path, so PYTHONPATH picks the checkout.
    subprocess.run(["taskset", "-c", cores, "env", f"PYTHONPATH={checkout}", f"POOL_CPU_OUT={out}",
                    sys.executable, "-P", "-c", WRAPPER, *args],
                   check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    marks: dict[str, float] = json.loads(out.read_text())
    # The whole command's CPU, the interpreter's exit after the atexit marks included (taskset
    # and env exec the interpreter, so this is it and its workers).
    marks["total"] = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return marks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, required=True, help="a folder of images")
    parser.add_argument("--db", type=Path, required=True, help="a database for lookup")
    parser.add_argument("--before", type=Path, help="another checkout (kernel built), in the same rounds")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--core", type=int, help="the core for one-core runs (default: the last allowed)")
    args = parser.parse_args()
    allowed = sorted(os.sched_getaffinity(0))
    core = str(allowed[-1] if args.core is None else args.core)
    every = ",".join(map(str, allowed))
    checkouts = {"this": ROOT, **({"before": args.before} if args.before else {})}
    commands = {"hash": ["hash", "--json", str(args.corpus)],
                "lookup": ["lookup", "--json", "--db", str(args.db), str(args.corpus)]}
    load = os.getloadavg()
    print(f"# {len(allowed)} cores allowed; load average at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    results: dict[tuple[str, str, str], list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as temp:
        out = Path(temp) / "marks.json"
        for _ in range(args.rounds):
            for command, argv in commands.items():
                for name, checkout in checkouts.items():
                    for cores in (core, every):
                        results.setdefault((command, name, cores), []).append(run(checkout, argv, cores, out))
    print(f"\n| command | checkout | one core, CPU s | every core ({len(allowed)}): before the pool | "
          f"during it (parent + workers) | after it | estimated wall s | one core / estimate |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for command in commands:
        for name in checkouts:
            one = statistics.median(m["total"] for m in results[(command, name, core)])
            many = results[(command, name, every)]
            before = statistics.median(m["pool_start"] for m in many)
            # A pool left to the interpreter's exit to end is timed as ending at the exit.
            during = statistics.median(m.get("pool_end", m["exit"]) - m["pool_start"] + m["children"] for m in many)
            # The parent's own CPU after the pool, to the end of the interpreter's exit.
            after = statistics.median(m["total"] - m["children"] - m.get("pool_end", m["exit"]) for m in many)
            estimate = before + during / len(allowed) + after
            print(f"| hashdb {command} | {name} | {one:.2f} | {before:.3f} | {during:.2f} | {after:.3f} | "
                  f"{estimate:.2f} | {one / estimate:.2f}x |")
    load = os.getloadavg()
    print(f"\n# load average at end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
