"""A small mutation check: break one rule at a time in a copy of the tree and see a test fail.

Each mutant below is an edit a real regression could make (a threshold off by one, a role
check dropped, a quarantined record answered, an audit or index check skipped, a digest
swapped). For each, the tree is copied to a temporary directory beside this one (with
`../shared` linked in), the edit applied there (never here), and the tests named for
it run against the copy. A mutant is *killed* when those tests fail, *survived* when they
pass: a survivor is a rule no test holds. The unmutated copy must pass the same tests first.

Not part of CI's default run (it runs the named tests once per mutant, ~2-4 min in all):

    .venv/bin/python scripts/mutation_check.py             # every mutant, a table at the end
    .venv/bin/python scripts/mutation_check.py --list      # names, files and tests only
    .venv/bin/python scripts/mutation_check.py audit-anchor digest-sha256   # some of them

Exit status: 0 when every mutant was killed, 1 when one survived, 2 when a mutant no longer
applies (its text is gone from the file: update the mutant with the code).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str  # relative to the repository root
    old: str  # must occur exactly once in the file
    new: str
    tests: tuple[str, ...]
    why: str


MUTANTS: tuple[Mutant, ...] = (
    # Thresholds
    Mutant("threshold-pdq-default", "hashdb/config.py",
           "pdq_threshold: int = 31", "pdq_threshold: int = 32",
           ("tests/service", "tests/api/test_api_unit.py"), "PDQ matches one bit further than Meta's 31"),
    Mutant("threshold-imagehash-default", "hashdb/config.py",
           "imagehash_threshold: int = 10", "imagehash_threshold: int = 11",
           ("tests/service", "tests/hashing/test_conformance.py"), "pHash/dHash match one bit further"),
    Mutant("threshold-ceiling", "hashdb/trust/policy.py",
           "if value > ceiling:", "if value > ceiling + 1:",
           ("tests/service", "tests/api/test_api_unit.py"), "a caller may loosen a threshold past its ceiling"),
    Mutant("threshold-pdq-quality", "hashdb/trust/policy.py",
           "if value.quality is not None and value.quality < settings.pdq_min_quality:",
           "if value.quality is not None and value.quality < settings.pdq_min_quality - 1:",
           ("tests/service", "tests/api/test_api_unit.py"), "PDQ quality 49 accepted for sharing"),
    Mutant("threshold-vpdq-share", "hashdb/hashing/vpdq_rule.py",
           "and match.query_pct >= self.query_pct", "and match.query_pct >= self.query_pct - 1",
           ("tests/hashing/test_video.py", "tests/service"), "a video matching 79 % of frames counts"),
    # Role checks
    Mutant("role-require", "hashdb/trust/policy.py",
           "    if actor.role not in allowed:", "    if False:",
           ("tests/service", "tests/api/test_api_unit.py"), "no role check at all"),
    Mutant("role-consumer-submits", "hashdb/trust/policy.py",
           '"submit": frozenset({"contributor", "admin"}),', '"submit": frozenset({"consumer", "contributor", "admin"}),',
           ("tests/service", "tests/api/test_api_unit.py"), "consumer keys may share hashes"),
    Mutant("role-consumer-exports", "hashdb/trust/policy.py",
           '"export": frozenset({"partner", "admin"}),', '"export": frozenset({"consumer", "partner", "admin"}),',
           ("tests/service", "tests/api/test_api_unit.py", "tests/partners"), "consumer keys may take the feed"),
    Mutant("role-owner-anyone", "hashdb/service/sharing.py",
           "if not own and not actor.is_admin:", "if False:",
           ("tests/service",), "any organisation may retract or relabel another's record"),
    Mutant("role-owner-not-admin", "hashdb/service/sharing.py",
           "if not own and not actor.is_admin:", "if not own:",
           ("tests/service",), "an admin may not retract another organisation's record"),
    # The no-match answer
    Mutant("nomatch-quarantined-visible", "hashdb/trust/policy.py",
           "        return actor.is_admin\n", "        return True\n",
           ("tests/service", "tests/api/test_api_unit.py"), "members see quarantined records"),
    Mutant("nomatch-retracted-visible", "hashdb/trust/policy.py",
           'if record.status == "retracted":\n        return False', 'if record.status == "retracted":\n        return True',
           ("tests/service", "tests/api/test_api_unit.py"), "retracted records still answer"),
    # Audit verification
    Mutant("audit-anchor", "hashdb/trust/audit.py",
           "if anchor is not None and anchor.entry_hash != entry.entry_hash:", "if False:",
           ("tests/trust/test_audit.py",), "an anchor whose hash changed is not reported"),
    Mutant("audit-entry-hash", "hashdb/trust/audit.py",
           "if expected != entry.entry_hash:", "if False:",
           ("tests/trust/test_audit.py",), "an edited row is not reported"),
    Mutant("audit-link", "hashdb/trust/audit.py",
           "if entry.prev_hash != prev_hash:", "if False:",
           ("tests/trust/test_audit.py",), "a broken link (deleted row) is not reported"),
    # Index verification
    Mutant("index-exact-refilter", "hashdb/index/_scan.py",
           "    near, dist = near[dist <= radius], dist[dist <= radius]\n", "",
           ("tests/index",), "candidates past the radius after the modulo-256 sum are returned"),
    Mutant("index-filter-bound", "hashdb/index/_scan.py",
           "near = np.flatnonzero(wrapped_sums(counts) <= radius)", "near = np.flatnonzero(wrapped_sums(counts) < radius)",
           ("tests/index",), "multi-index misses hits exactly at the radius"),
    Mutant("index-flat-radius", "hashdb/index/_scan.py",
           "        radius + 1, codes.shape[1], result,", "        radius, codes.shape[1], result,",
           ("tests/index",), "flat scan misses hits exactly at the radius (FAISS's strict bound)"),
    # Operator-facing bounds
    Mutant("metrics-method-label", "hashdb/api/metrics.py",
           "method = method if method in METHODS else OTHER", "method = method",
           ("tests/api/test_metrics_unit.py",), "each made-up HTTP method becomes a new metric series"),
    # Matching precision (issue-10 gates)
    Mutant("gate-64-bit-beside-pdq", "hashdb/service/matching.py",
           "if _has_pdq(queries[key[0]]):", "if False:",
           ("tests/service",), "pHash/dHash match beside a PDQ, where PDQ should decide"),
    Mutant("derived-same-share-unproven", "hashdb/service/matching.py",
           "if gates.near(record.value, wholes.get(n, ()), bound):",
           "if True:",
           ("tests/service",), "same-share derived regions and masked copies match without close whole images"),
    Mutant("masked-radius-ignores-threshold", "hashdb/service/matching.py",
           "radius = min(gates.MASKED_RADIUS, pdq_radius)", "radius = gates.MASKED_RADIUS",
           ("tests/service/test_derived.py",), "a caller's tighter PDQ threshold does not apply to masked matches"),
    Mutant("deskewed-crop-matches-anything", "hashdb/service/matching.py",
           "if stored_via == CROPPED and gates.same_share(query_derived.share, stored_share):", "if True:",
           ("tests/service/test_derived.py",), "a turned copy's crop matches stored regions other than its share's crop"),
    Mutant("colour-gate-off", "hashdb/service/derived_gates.py",
           "return query is not None and stored is not None and colour_gap(query, stored) > COLOUR_GAP",
           "return False",
           ("tests/service/test_colour_gate.py",), "derived hashes of pictures differing in colour alone match"),
    Mutant("window-fits-any-crop", "hashdb/service/matching.py",
           "if stored_via != CROPPED or not gates.fits_window(window.share, stored_share):",
           "if stored_via != CROPPED:",
           ("tests/service/test_windows.py",), "a lookup's window matches a stored crop larger than itself"),
    Mutant("window-any-stored-hash", "hashdb/service/matching.py",
           "if stored_via != CROPPED or not gates.fits_window(window.share, stored_share):",
           "if not gates.fits_window(window.share, stored_share):",
           ("tests/service/test_windows.py",), "a lookup's window matches stored regions, not only centred crops"),
    Mutant("window-same-size-crop", "hashdb/service/derived_gates.py",
           "return math.log(stored / window) < -SAME_SHARE", "return math.log(stored / window) <= SAME_SHARE",
           ("tests/service/test_windows.py",), "a window matches a stored crop as large as itself (the look-alikes' route)"),
    Mutant("window-radius-ignores-threshold", "hashdb/service/matching.py",
           "radius = min(gates.WINDOW_RADIUS, radius)", "radius = gates.WINDOW_RADIUS",
           ("tests/service/test_windows.py",), "a caller's tighter PDQ threshold does not apply to window matches"),
    Mutant("derived-low-detail-shared", "hashdb/trust/policy.py",
           "return submission_problem(derived.hash, settings)",
           "return None",
           ("tests/service",), "a low-quality derived remnant is stored and matched"),
    Mutant("retract-again-anyone", "hashdb/service/sharing.py",
           'gone = retracted and (own or actor.is_admin) and record.status == "retracted"',
           'gone = retracted and record.status == "retracted"',
           ("tests/service",), "retrying a retraction shows another organisation's retracted record"),
    Mutant("balance-fewest", "hashdb/api/balance.py",
           "and words[2 + 2 * slot] < connections:", "and words[2 + 2 * slot] < connections - 1:",
           ("tests/api/test_serving_balance.py",), "a worker takes a connection while another holds fewer"),
    # Exact digests
    Mutant("digest-sha256", "hashdb/hashing/exact.py",
           "hashlib.sha256(data).hexdigest()", "hashlib.sha3_256(data).hexdigest()",
           ("tests/hashing",), "sha256 is some other 256-bit digest"),
    Mutant("digest-md5", "hashdb/hashing/exact.py",
           "hashlib.md5(data, usedforsecurity=False).hexdigest()",
           "hashlib.md5(data[:-1], usedforsecurity=False).hexdigest()",
           ("tests/hashing",), "md5 of the bytes but the last (a short read)"),
)


def copy_tree(dest: Path) -> None:
    """The repository's files as they are now (committed or not), without .venv or caches."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, check=True, capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def run_tests(tree: Path, tests: tuple[str, ...]) -> tuple[bool, float, str]:
    """(passed, seconds, last line) of pytest on `tests` in `tree`, importing the tree's code."""
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:randomly", *tests],
                          cwd=tree, env=env, capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    return proc.returncode == 0, time.monotonic() - started, lines[-1] if lines else proc.stderr[-200:]


def apply(tree: Path, mutant: Mutant) -> bool:
    path = tree / mutant.path
    text = path.read_text()
    if text.count(mutant.old) != 1:
        return False
    path.write_text(text.replace(mutant.old, mutant.new))
    return True


def check_imports_from(tree: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run([sys.executable, "-c", "import hashdb.api; print(hashdb.__file__); print(hashdb.api.__file__)"],
                         cwd=tree, env=env, check=True, capture_output=True, text=True).stdout.split()
    if not all(Path(p).resolve().is_relative_to(tree.resolve()) for p in out):
        raise SystemExit(f"the copy imports hashdb from {out}, not from {tree}: mutants would not be seen")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="mutants to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    args = parser.parse_args()
    unknown = set(args.names) - {m.name for m in MUTANTS}
    if unknown:
        parser.error(f"unknown mutants: {', '.join(sorted(unknown))}")
    chosen = [m for m in MUTANTS if not args.names or m.name in args.names]
    if args.list:
        for m in chosen:
            print(f"{m.name:30} {m.path:32} {' '.join(m.tests)}\n{'':30} {m.why}")
        return 0

    results: list[tuple[Mutant, str, float, str]] = []
    with tempfile.TemporaryDirectory(prefix=".mutation-", dir=ROOT.parent) as tmp:
        shared = ROOT.parent / "shared"
        if shared.is_dir():  # the copies sit one level deeper: keep `../shared` (Meta's vectors) in reach
            (Path(tmp) / "shared").symlink_to(shared)
        pristine = Path(tmp) / "pristine"
        copy_tree(pristine)
        check_imports_from(pristine)
        baseline = sorted({t for m in chosen for t in m.tests})
        ok, seconds, last = run_tests(pristine, tuple(baseline))
        print(f"baseline (unmutated copy): {'pass' if ok else 'FAIL'} in {seconds:.0f} s: {last}", flush=True)
        if not ok:
            print("the unmutated tests must pass first", file=sys.stderr)
            return 2
        for n, mutant in enumerate(chosen):
            tree = Path(tmp) / f"m{n}"
            shutil.copytree(pristine, tree)
            if not apply(tree, mutant):
                results.append((mutant, "STALE", 0.0, "text not found exactly once"))
            else:
                passed, seconds, last = run_tests(tree, mutant.tests)
                results.append((mutant, "SURVIVED" if passed else "killed", seconds, last))
            shutil.rmtree(tree)
            print(f"{mutant.name:30} {results[-1][1]:8} {results[-1][2]:5.0f} s  {results[-1][3]}", flush=True)

    killed = sum(r[1] == "killed" for r in results)
    print(f"\n| mutant | file | what it breaks | result |\n|---|---|---|---|")
    for mutant, result, _, _ in results:
        print(f"| `{mutant.name}` | `{mutant.path}` | {mutant.why} | {result} |")
    print(f"\n{killed} of {len(results)} mutants killed")
    if any(r[1] == "STALE" for r in results):
        return 2
    return 0 if killed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
