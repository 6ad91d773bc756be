"""Throughput and latency of the HTTP API under `hashdb serve`, measured with wrk, against a
reference server measured in the same run.

    apt-get install -y wrk                                      # Debian's package
    .venv/bin/python scripts/bench_api.py --reference-rev dd4056e   # checks the commit out itself
    .venv/bin/python scripts/bench_api.py --reference /tmp/hashdb-ref  # or any checkout
    .venv/bin/python scripts/bench_api.py --sizes 100000 --seconds 5 --concurrency 1,16

Per size: random PDQ hashes (seeded) are bulk-loaded through HashStore.add_records and the
index snapshot is built once, from the store, as `hashdb index rebuild` builds it (both timed;
with --db the seeded database is kept and reused by later runs of the same size, which skip
the load, the slow part at 10M, and rebuild the snapshot). Each server has its own copy of
the data, loaded by its own code (the same hashes: both load them from the same seeds), since
an older hashdb refuses a database a newer one migrated; with --db X.sqlite the reference's
is kept beside it as X-REV.sqlite. Then two servers run on loopback ports, `--workers 2` each
with their default worker settings and the rate limit off: this code's, and (with
--reference) the same command from another checkout.
wrk drives them in turn, the same request mix for the same time, one row per (request,
concurrency), so each ratio is paired within a minute of load. Half the looked-up hashes are
stored ones with 8 bits flipped (they match), half random (they do not). wrk runs on the same
machine, so it takes CPU from the servers: the numbers are a floor.

GET /healthz is measured in the same run as the HTTP stack's ceiling. Each row also gives the
CPU the server's processes used per request (from /proc): on a shared machine requests/s
follows whatever else runs, CPU per request much less so.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from serverproc import LiveServer, make_keys, start_server  # noqa: E402

from hashdb.service.local import open_database  # noqa: E402
from hashdb.types import HashValue, NewRecord, Principal  # noqa: E402

# Hashes per seed (the queries regenerate stored hashes from these seeds), and per
# add_records call: at 10M each call's random keys dirty pages all over the unique key's
# B-tree, so larger calls write far fewer pages per hash (BENCHMARKS.md, "Store").
LOAD_BATCH = 50_000
SEEDS_PER_CALL = 10

LUA = r"""
local hashes = {}
for line in io.lines(os.getenv("BENCH_HASHES")) do hashes[#hashes + 1] = line end
local mode = os.getenv("BENCH_MODE")
local batch = tonumber(os.getenv("BENCH_BATCH"))
local auth = {["Authorization"] = "Bearer " .. os.getenv("BENCH_KEY"), ["Content-Type"] = "application/json"}
local started = 0
local i = 0

setup = function(thread)
  thread:set("offset", started * 7919)
  started = started + 1
end

init = function(args) i = offset or 0 end

request = function()
  i = i + 1
  if mode == "health" then return wrk.format("GET", "/healthz") end
  if mode == "single" then
    return wrk.format("GET", "/v1/lookup?signal=pdq&hash=" .. hashes[(i % #hashes) + 1], auth)
  end
  local items = {}
  for k = 1, batch do
    items[k] = '{"signal":"pdq","hash":"' .. hashes[((i * batch + k) % #hashes) + 1] .. '"}'
  end
  return wrk.format("POST", "/v1/lookup", auth, '{"items":[' .. table.concat(items, ",") .. ']}')
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH %d %d %d %d %d\n", summary.requests, summary.duration,
    e.connect + e.read + e.write + e.timeout + e.status, latency:percentile(50), latency:percentile(99)))
end
"""


def random_codes(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 32), dtype=np.uint8)


def to_hex(codes: np.ndarray) -> list[str]:
    text = codes.tobytes().hex()
    return [text[i:i + 64] for i in range(0, len(text), 64)]


def near(codes: np.ndarray, bits: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = codes.copy()
    for row in out:
        for bit in rng.choice(256, size=bits, replace=False):
            row[bit // 8] ^= 1 << (bit % 8)
    return out


def load(db: Path, n: int, seed: int) -> tuple[float, float]:
    """Seconds to load `n` hashes (0 when `db` already holds them) and to rebuild the snapshot."""
    service = open_database(db)
    try:
        org = service.store.ensure_org("bench")
        actor = Principal(org.id, org.name, "contributor")
        have = service.store.counts()["signal"].get("pdq", 0)
        if have not in (0, n):
            raise SystemExit(f"{db} holds {have:,} PDQs, not {n:,}: give another --db")
        started = time.perf_counter()
        for first in range(0, n if have == 0 else 0, LOAD_BATCH * SEEDS_PER_CALL):
            records = []
            for start in range(first, min(n, first + LOAD_BATCH * SEEDS_PER_CALL), LOAD_BATCH):
                hexes = to_hex(random_codes(min(LOAD_BATCH, n - start), seed + start))
                records += [NewRecord(HashValue("pdq", h, 90), "image", ("glorification",)) for h in hexes]
            service.store.add_records(records, actor)
            print(f"  loaded {first + len(records):,}", end="\r", file=sys.stderr, flush=True)
        loaded = time.perf_counter() - started if have == 0 else 0.0
        started = time.perf_counter()
        service.rebuild_index()
        return loaded, time.perf_counter() - started
    finally:
        service.store.close()


# Run by `seeded` in the checkout being seeded, so that its own `load` and `make_keys` (and
# its own schema) write the database.
SEED = """
import json, sys
from pathlib import Path
sys.path.insert(0, "scripts")
from bench_api import load, make_keys
db, n = Path(sys.argv[1]), int(sys.argv[2])
loaded, rebuilt = load(db, n, 1)
key = make_keys(db, {"reader": ("reader", "consumer")})["reader"][0]
print(json.dumps({"key": key, "loaded": loaded, "rebuilt": rebuilt}))
"""


@dataclass(frozen=True)
class Seeded:
    key: str  # a consumer key of this database
    loaded: float  # seconds to load the hashes, 0 when the database already held them
    rebuilt: float  # seconds to rebuild the index snapshot


def seeded(source: Path | None, db: Path, n: int) -> Seeded:
    """`db` holding `n` PDQs, loaded by the code at `source` (else this checkout's) in a
    process of its own, and a new consumer key for it. Each server gets a database seeded by
    its own code: an older hashdb refuses a database a newer one has migrated."""
    root = source or ROOT
    out = subprocess.run([sys.executable, "-c", SEED, str(db.resolve()), str(n)], cwd=root,
                         env={**os.environ, "PYTHONPATH": str(root)}, stdout=subprocess.PIPE, text=True,
                         check=True).stdout
    answer = json.loads(out.strip().splitlines()[-1])
    return Seeded(answer["key"], answer["loaded"], answer["rebuilt"])


def beside(db: Path, label: str) -> Path:
    """Where the reference's copy of `db` is kept: X.sqlite -> X-LABEL.sqlite (a revision such
    as origin/main made a file name)."""
    return db.with_name(f"{db.stem}-{re.sub(r'[^A-Za-z0-9._-]', '_', label)}{db.suffix}")


def queries(n_stored: int, count: int, seed: int) -> list[str]:
    """Half near-duplicates of stored hashes (regenerated from the load seeds), half random."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, n_stored, size=count // 2)
    stored = []
    for pick in picks:
        start = int(pick) // LOAD_BATCH * LOAD_BATCH
        stored.append(random_codes(min(LOAD_BATCH, n_stored - start), 1 + start)[int(pick) - start])
    hits = near(np.array(stored), 8, seed + 1)
    misses = random_codes(count - len(hits), seed + 2)
    mixed = to_hex(np.concatenate([hits, misses]))
    order = rng.permutation(len(mixed))
    return [mixed[i] for i in order]


@dataclass(frozen=True)
class Run:
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float
    # CPU the server's processes (master and workers) used per request: on a shared machine
    # this moves far less with other load than requests/s does.
    cpu_us: float = 0.0

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


def server_cpu_seconds(pid: int) -> float:
    """User and system CPU of a process and its children now alive, from /proc."""
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    ticks = 0
    for one in pids:
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def wrk(port: int, mode: str, connections: int, seconds: float, env: dict[str, str], pid: int | None = None) -> Run:
    threads = min(connections, 2)
    command = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds:g}s", "--timeout", "10s",
               "-s", env["BENCH_SCRIPT"], f"http://127.0.0.1:{port}"]
    before = server_cpu_seconds(pid) if pid is not None else 0.0
    out = subprocess.run(command, env={**os.environ, **env, "BENCH_MODE": mode}, capture_output=True,
                         text=True, check=True).stdout
    used = server_cpu_seconds(pid) - before if pid is not None else 0.0
    line = next(x for x in out.splitlines() if x.startswith("BENCH "))
    requests, micros, errors, p50, p99 = (int(v) for v in line.split()[1:])
    return Run(requests, micros / 1e6, errors, p50 / 1000, p99 / 1000, used / max(requests, 1) * 1e6)


def wait_all_ready(server: LiveServer, timeout: float = 900.0) -> None:
    """/readyz answers from whichever worker accepts: ready means 20 ready answers in a row."""
    deadline, streak = time.monotonic() + timeout, 0
    while streak < 20:
        if time.monotonic() > deadline:
            raise SystemExit("the workers did not all become ready")
        streak = streak + 1 if server.request("GET", "/readyz").status == 200 else 0
        if streak == 0:
            time.sleep(0.2)


def bench(size: int, reference: tuple[Path, str] | None, seconds: float, levels: list[int], batch: int,
          workers: int, kept: Path | None) -> list[str]:
    """`reference`: the other checkout and the label its kept database is named by."""
    directory = Path(tempfile.mkdtemp(prefix="hashdb-bench-api-"))
    db = kept if kept is not None else directory / "db.sqlite"
    sides: dict[str, tuple[Path | None, Path]] = {"this": (None, db)}
    if reference is not None:
        sides["reference"] = (reference[0], beside(db, reference[1]))
    hashes = directory / "queries.txt"
    hashes.write_text("\n".join(queries(size, 20_000, 7)) + "\n")
    script = directory / "bench.lua"
    script.write_text(LUA)
    envs: dict[str, dict[str, str]] = {}
    for name, (source, served) in sides.items():
        seed = seeded(source, served, size)
        if seed.loaded:
            print(f"  {name}: {size:,} hashes loaded in {seed.loaded:.0f} s ({size / seed.loaded:,.0f}/s)",
                  file=sys.stderr)
        print(f"  {name}: index snapshot rebuilt from the store in {seed.rebuilt:.1f} s", file=sys.stderr)
        envs[name] = {"BENCH_HASHES": str(hashes), "BENCH_KEY": seed.key, "BENCH_BATCH": str(batch),
                      "BENCH_SCRIPT": str(script)}
    servers: dict[str, LiveServer] = {}
    lines = []
    try:
        for name, (source, served) in sides.items():
            servers[name] = start_server(served, workers=workers, env={"HASHDB_RATE_LIMIT": "0"}, source=source)
        for name, server in servers.items():
            wait_all_ready(server)
            wrk(server.port, "single", 4, 2, envs[name])  # warm up every worker
        plan = [("GET /healthz (ceiling)", "health", c, 0) for c in (16, 64)]
        plan += [("GET /v1/lookup, 1 hash", "single", c, 1) for c in levels]
        plan += [(f"POST /v1/lookup, {batch} hashes", "batch", c, batch) for c in (4, 16)]
        for what, mode, connections, per in plan:
            runs = {name: wrk(server.port, mode, connections, seconds, envs[name], server.process.pid)
                    for name, server in servers.items()}
            lines.append(row(size, what, connections, per, runs))
            print(lines[-1], flush=True)
    finally:
        for server in servers.values():
            server.stop()
        shutil.rmtree(directory, ignore_errors=True)
    return lines


def row(size: int, what: str, connections: int, per: int, runs: dict[str, Run]) -> str:
    this = runs["this"]
    cells = [f"{size:,}", what, str(connections), f"{this.rps:,.0f}",
             f"{this.rps * per:,.0f}" if per else "-", f"{this.p50_ms:.1f}", f"{this.p99_ms:.1f}", f"{this.cpu_us:,.0f}"]
    ref = runs.get("reference")
    if ref is not None:
        cells += [f"{ref.rps:,.0f}", f"{ref.p99_ms:.1f}", f"{ref.cpu_us:,.0f}", f"{this.rps / ref.rps:.2f}x",
                  f"{ref.cpu_us / this.cpu_us:.2f}x" if this.cpu_us else "-"]
    errors = sum(r.errors for r in runs.values())
    if errors:
        cells[1] += f" ({errors} errors)"
    return "| " + " | ".join(cells) + " |"


def reference_checkout(rev: str) -> Path:
    """A detached worktree of `rev` (the servers run it through PYTHONPATH with this venv's
    packages), made once per commit, its kernels built."""
    root = Path(__file__).resolve().parent.parent
    sha = subprocess.run(["git", "-C", str(root), "rev-parse", "--verify", f"{rev}^{{commit}}"],
                         check=True, capture_output=True, text=True).stdout.strip()
    target = Path(tempfile.gettempdir()) / f"hashdb-ref-{sha[:12]}"
    if not (target / "hashdb" / "__init__.py").exists():
        subprocess.run(["git", "-C", str(root), "worktree", "add", "--detach", str(target), sha], check=True)
    # Its compiled kernels, built in place: without them it would serve the numpy fallback.
    subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"], cwd=target, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    print(f"reference: {rev} ({sha[:12]}) in {target}")
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000000", help="Comma-separated stored-hash counts.")
    parser.add_argument("--reference", type=Path, help="Another checkout of hashdb to serve as the reference.")
    parser.add_argument("--reference-rev", help="A git revision of this repository to serve as the reference: "
                        "checked out (git worktree add --detach) into a temporary folder, reused if there.")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", default="1,4,16,64", help="Connections for single lookups.")
    parser.add_argument("--seconds", type=float, default=10.0, help="Per wrk run.")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--db", type=Path, help="Keep the seeded SQLite database here and reuse it when it "
                        "already holds the size's hashes (one size per --db); the reference's is kept "
                        "beside it, named with the reference's revision.")
    args = parser.parse_args()
    reference = None
    if args.reference_rev is not None:
        reference = (reference_checkout(args.reference_rev), args.reference_rev)
    elif args.reference is not None:
        reference = (args.reference, args.reference.resolve().name)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install -y wrk)")
    load_avg = os.getloadavg()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load average {load_avg[0]:.1f} at start; servers: hashdb serve --workers {args.workers} (defaults); "
          f"client: wrk on the same machine, kept-alive connections, {args.seconds:g} s per run")
    print()
    header = "| hashes | request | connections | requests/s | hashes/s | p50 ms | p99 ms | server CPU us/request |"
    rule = "|---:|---|---:|---:|---:|---:|---:|---:|"
    if reference is not None:
        header += (" reference requests/s | reference p99 ms | reference CPU us/request | ratio |"
                   " CPU ratio (reference / this) |")
        rule += "---:|---:|---:|---:|---:|"
    print(header)
    print(rule)
    levels = [int(c) for c in args.concurrency.split(",")]
    for size in (int(s) for s in args.sizes.split(",")):
        bench(size, reference, args.seconds, levels, args.batch, args.workers, args.db)
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
