"""Random sequences of add / replace / remove / compact / save+load / search: FaissIndex must
answer every search exactly as a dict of Python ints does."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from _index_data import as_int, flip_bits, oracle, random_codes, search_both
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from hashdb.index.base import load_index
from hashdb.index.faiss_index import FaissIndex


class IndexMachine(RuleBasedStateMachine):
    @initialize(
        seed=st.integers(0, 2**32 - 1),
        bits=st.sampled_from((64, 256)),
        forced_mih=st.booleans(),
        # Small limits so compactions and flat <-> multi-index switches happen within a run.
        large_min_size=st.sampled_from((1, 12, 30)),
        delta_limit=st.sampled_from((1, 16, 64)),
    )
    def start(self, seed: int, bits: int, forced_mih: bool, large_min_size: int, delta_limit: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.bits = bits
        self.index = FaissIndex(
            bits, large_min_size=large_min_size, delta_limit=delta_limit,
            mih_work_divisor=0 if forced_mih else 16,
        )
        self.truth: dict[int, int] = {}
        self.codes: dict[int, np.ndarray] = {}
        self.removed: set[int] = set()
        self.recent = random_codes(self.rng, 0, bits)

    def _near_existing(self, count: int) -> np.ndarray:
        out = random_codes(self.rng, count, self.bits)
        if self.codes:
            keys = list(self.codes)
            for i in range(count):
                base = self.codes[keys[int(self.rng.integers(len(keys)))]]
                k = int(self.rng.choice([0, 1, 10, 30, 31, 32, 33]))
                out[i] = flip_bits(self.rng, base, k)
        return out

    @rule(count=st.integers(1, 20), reuse=st.floats(0, 1), increasing=st.booleans())
    def add(self, count: int, reuse: float, increasing: bool) -> None:
        known = list(self.truth) + list(self.removed)
        ids: list[int] = []
        for _ in range(count):
            if increasing:  # new store records: ids above all before, the merge path
                ids.append(max(known + ids + [0]) + int(self.rng.integers(1, 5)))
            elif known and self.rng.random() < reuse:
                ids.append(known[int(self.rng.integers(len(known)))])  # replace, or revive
            else:
                ids.append(int(self.rng.integers(0, 2**40)))
        codes = self._near_existing(count)
        self.index.add(np.array(ids, dtype=np.int64), codes)
        self.recent = codes  # the rows most likely still outside the multi-index tables
        for key, code in zip(ids, codes):
            self.truth[key] = as_int(code)
            self.codes[key] = code
            self.removed.discard(key)

    @rule(count=st.integers(1, 10))
    def remove(self, count: int) -> None:
        pool = list(self.truth) + [2**50 + 1]  # plus an id never added
        chosen = [pool[int(i)] for i in self.rng.integers(len(pool), size=count)]
        self.index.remove(chosen)
        for key in chosen:
            if self.truth.pop(key, None) is not None:
                self.codes.pop(key)
                self.removed.add(key)

    @rule()
    def compact(self) -> None:
        self.index.compact()

    @rule(seq=st.integers(0, 2**40))
    def save_and_load(self, seq: int) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            self.index.save(Path(tmp) / "pdq.index", seq)
            loaded, covers = load_index(Path(tmp) / "pdq.index")
        assert covers == seq
        assert isinstance(loaded, FaissIndex)
        loaded.mih_work_divisor = self.index.mih_work_divisor
        loaded.delta_limit = self.index.delta_limit
        self.index = loaded

    @rule(radius=st.sampled_from((0, 10, 31, 32)), count=st.integers(1, 4))
    def search(self, radius: int, count: int) -> None:
        # Near copies of the last batch, within the radius: each must find its source row,
        # which may still sit outside the multi-index tables.
        recent = [flip_bits(self.rng, code, int(self.rng.integers(0, radius + 1))) for code in self.recent[-3:]]
        queries = np.concatenate([self._near_existing(count), np.array(recent, dtype=np.uint8).reshape(-1, self.bits // 8)])
        got = search_both(self.index, queries, radius)
        assert got == oracle(self.truth, queries, radius)
        assert not {k for hits in got for k, _ in hits} & self.removed

    @invariant()
    def size(self) -> None:
        if hasattr(self, "index"):
            assert len(self.index) == len(self.truth)


IndexMachine.TestCase.settings = settings(
    max_examples=60, stateful_step_count=25, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestIndexMachine = IndexMachine.TestCase
