"""What scripts/eval_matching.py counts and prints: per family and strength, per signal,
derived hash and distance, and the targets --check holds the results to."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import eval_edits

from hashdb.types import LookupResult

BITS_64 = ("phash", "dhash")
# What --check requires (the targets); a family may set a lower target.
MEAN_RECALL = 0.92
MAX_FP_RATE = 0.001
MAX_WRONG_RATE = 0.002


class Tally:
    """Counts what the lookups answered: per family and strength, and per signal, derived
    hash and distance (right = the query's own image, wrong = another known image,
    false_positive = a negative matching anything)."""

    def __init__(self, owner: dict[int, str]) -> None:
        self.owner = owner
        self.per_family: dict[str, dict[str, Any]] = {}
        self.by_signal: dict[tuple[str, str, str], Counter[int]] = defaultdict(Counter)
        self.wrong_queries = 0
        self.false_positives = 0
        self.fp_examples: list[str] = []
        # Each query's own and other matches, for --json: which queries missed, and through what
        # the others matched.
        self.per_query: list[dict[str, Any]] = []

    def _count(self, kind: str, matches: Iterable[Any]) -> None:
        # Once per query and (signal, via, distance): a rate per signal and distance is then
        # a share of queries.
        for signal, via, distance in {(m.signal, getattr(m, "via", None) or "", m.distance) for m in matches}:
            self.by_signal[(signal, via, kind)][distance] += 1

    def query(self, job: tuple[str, str, int, str], result: LookupResult) -> None:
        key, family, strength, _ = job
        own = [m for m in result.matches if self.owner.get(m.id) == key]
        other = [m for m in result.matches if self.owner.get(m.id) not in (None, key)]
        row = self.per_family.setdefault(family, {"queries": 0, "hits": 0, "wrong": 0, "hits_256": 0,
                                                   "by_strength": defaultdict(lambda: [0, 0])})
        row["queries"] += 1
        row["hits"] += bool(own)
        row["wrong"] += bool(other)
        row["hits_256"] += any(m.signal not in BITS_64 for m in own)
        row["by_strength"][strength][0] += bool(own)
        row["by_strength"][strength][1] += 1
        self.wrong_queries += bool(other)
        self.per_query.append({"key": key, "family": family, "strength": strength, "hit": bool(own),
                               "own": [_brief(m) for m in own],
                               "other": [[self.owner.get(m.id), _brief(m)] for m in other]})
        self._count("right", own)
        self._count("wrong", other)

    def negative(self, key: str, result: LookupResult) -> None:
        if not result.matched:
            return
        self.false_positives += 1
        self._count("false_positive", result.matches)
        if len(self.fp_examples) < 12:
            m = result.matches[0]
            via = getattr(m, "via", None) or ""
            self.fp_examples.append(f"{key} -> {self.owner.get(m.id)} ({m.signal}{'/' + via if via else ''} at {m.distance})")

    def rows(self, families: Sequence[eval_edits.Family]) -> list[dict[str, Any]]:
        rows = []
        for family in families:
            row = self.per_family.get(family.name)
            if row is None:
                continue
            n = row["queries"]
            rows.append({"family": family.name, "queries": n, "recall": row["hits"] / n, "wrong": row["wrong"] / n,
                         "recall_256": row["hits_256"] / n, "target": family.target,
                         "by_strength": {str(family.strengths[k]): v[0] / v[1]
                                         for k, v in sorted(row["by_strength"].items())}})
        return rows


def _brief(match: Any) -> str:
    via = getattr(match, "via", None)
    return f"{match.signal}{'/' + via if via else ''}:{match.distance}"


def print_table(s: dict[str, Any]) -> None:
    sources = ", ".join(f"{k} {v}" for k, v in sorted(s["sources"].items()))
    known = ", ".join(f"{k} {v}" for k, v in sorted(s["known_sources"].items()))
    print(f"{s['path']} matching; corpus {s['corpus']} ({s['size']}, seed {s['seed']}): {s['known']} known images "
          f"({known}), {s['negatives']} distinct negatives; all: {sources}")
    views = Counter(str(p["views"]) for p in s["near_duplicates"])
    print(f"pool: {s['candidates']} candidates; {s['near_duplicate_pairs']} near-duplicate pairs left out, "
          f"never scored (PDQ within {s['near_duplicate_bits']} bits in some orientation; by view: "
          + ", ".join(f"{k} {v}" for k, v in sorted(views.items()))
          + f"; {s['recoloured_pairs']} of them recoloured, mean colour more than {s['recoloured_gap']} apart)")
    print(f"{'family':<24} {'queries':>7} {'recall':>7} {'wrong':>7} {'target':>7} {'no64':>6}  by strength")
    for r in s["families"]:
        strengths = ", ".join(f"{k} {v:.2f}" for k, v in r["by_strength"].items())
        mark = "" if r["recall"] >= r["target"] else "  <"
        print(f"{r['family']:<24} {r['queries']:>7} {r['recall']:>7.3f} {r['wrong']:>7.3f} {r['target']:>7.2f}"
              f" {r['recall_256']:>6.3f}  {strengths}{mark}")
    print(f"mean recall {s['mean_recall']:.3f}; false positives {s['false_positives']}/{s['negatives']} "
          f"({100 * s['fp_rate']:.2f} %); wrong-match rate {100 * s['wrong_match_rate']:.2f} %; "
          f"{s['ms_per_lookup']:.1f} ms wall per edited or negative image ({s['jobs']} hashing processes); "
          f"hashing {s['ms_hashing_per_image']:.1f} ms CPU per image")
    t = s["timing_1mp"]
    print(f"1-megapixel lookup (one process, best of 3): {t['current_ms']:.1f} ms, reference path "
          f"{t['reference_ms']:.1f} ms, ratio {t['ratio']:.2f}")
    print("no64: recall counting only matches through 256-bit PDQ (whole or derived)")
    queries = sum(r["queries"] for r in s["families"])
    print(f"by signal/derived hash: queries (of {queries} edited, {s['negatives']} negatives) with a match of each kind; "
          "right = own image, wrong = another known image, fp = a negative matched")
    print(f"  {'signal/via':<14} {'right':>6} {'wrong':>6} {'wrong %':>8} {'fp':>5} {'fp %':>6}  by distance: right/wrong/fp")
    signals = sorted({k.rsplit("/", 1)[0] for k in s["by_signal"]})
    for signal in signals:
        hist = {kind: s["by_signal"].get(f"{signal}/{kind}", {}) for kind in ("right", "wrong", "false_positive")}
        total = {kind: sum(h.values()) for kind, h in hist.items()}
        distances = sorted({int(d) for h in hist.values() for d in h})
        spread = " ".join(f"{d}:{hist['right'].get(d, 0)}/{hist['wrong'].get(d, 0)}/{hist['false_positive'].get(d, 0)}"
                          for d in distances)
        print(f"  {signal.rstrip('/') or signal:<14} {total['right']:>6} {total['wrong']:>6} "
              f"{100 * total['wrong'] / max(1, queries):>7.2f}% {total['false_positive']:>5} "
              f"{100 * total['false_positive'] / max(1, s['negatives']):>5.2f}%  {spread}")
    pairs = s["near_duplicates"]
    step = max(1, len(pairs) // 12)
    for pair in pairs[::step][:12]:
        print(f"  near-duplicate: {pair['left_out']} ~ {pair['kept']} ({pair['views']} at {pair['distance']}, "
              f"colour {pair['colour']})")
    recoloured = [p for p in pairs if p["colour"] > s["recoloured_gap"]]
    for pair in recoloured[::max(1, len(recoloured) // 4)][:4]:
        print(f"  near-duplicate, recoloured: {pair['left_out']} ~ {pair['kept']} ({pair['views']} at "
              f"{pair['distance']}, colour {pair['colour']})")
    for example in s["fp_examples"]:
        print(f"  false positive: {example}")
    secs = s["seconds"]
    print(f"time: pool {secs['pool']:.0f} s, submit {secs['submit']:.0f} s, total {secs['total']:.0f} s")


def check(s: dict[str, Any]) -> list[str]:
    failures = [f"{r['family']} recall {r['recall']:.3f} < {r['target']}" for r in s["families"]
                if r["recall"] < r["target"]]
    if s["mean_recall"] < MEAN_RECALL:
        failures.append(f"mean recall {s['mean_recall']:.3f} < {MEAN_RECALL}")
    if s["fp_rate"] > MAX_FP_RATE:
        failures.append(f"false-positive rate {s['fp_rate']:.4f} > {MAX_FP_RATE}")
    if s["wrong_match_rate"] > MAX_WRONG_RATE:
        failures.append(f"wrong-match rate {s['wrong_match_rate']:.4f} > {MAX_WRONG_RATE}")
    return failures
