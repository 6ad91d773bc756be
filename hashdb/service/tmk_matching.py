"""TMK matching, Meta's two levels: candidates by the cosine of the pure-average features (an
in-memory index loaded from the store and kept current by reading the rows added since), then
the temporal match kernel with time shifts on those candidates only.

The index is add-only: a retracted or quarantined record stays in it and is dropped where every
match is, by the store's record status (MatchingMixin.lookup), so a retraction counts at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hashdb.config import Settings
from hashdb.hashing import tmk
from hashdb.index.cosine import CosineIndex
from hashdb.service.appended_rows import AppendedRows, Rows
from hashdb.store.base import HashStore

_PAGE = 10_000


@dataclass(frozen=True, slots=True)
class TmkHit:
    record_id: int
    level1: float
    level2: float


class TmkMatcher:
    def __init__(self, store: HashStore, settings: Settings) -> None:
        self.store = store
        self.rule = tmk.TmkRule(settings.tmk_level1, settings.tmk_level2)
        self._index = CosineIndex(tmk.DIMENSION)
        self._rows = AppendedRows(store.tmk_averages, self._add, _PAGE)

    def __len__(self) -> int:
        return len(self._index)

    def refresh(self) -> None:
        """Add the tmk rows stored since the last call."""
        self._rows.refresh()

    def _add(self, rows: Rows) -> None:
        vectors = np.frombuffer(b"".join(average for _, _, average in rows), dtype="<f4")
        self._index.add([record_id for _, record_id, _ in rows], vectors.reshape(len(rows), tmk.DIMENSION))

    def matches(self, data: bytes) -> list[TmkHit]:
        """Stored tmk records at or above both levels' thresholds against the `.tmk` bytes."""
        query = tmk.parse_tmk(data)
        self.refresh()
        vector = np.frombuffer(tmk.unit_average(query), dtype="<f4").reshape(1, tmk.DIMENSION)
        with self._rows.lock:
            (found,) = self._index.search(vector, self.rule.level1)
        if not found:
            return []
        stored = self.store.tmk_features([record_id for record_id, _ in found])
        hits: list[TmkHit] = []
        for record_id, _ in found:
            if record_id not in stored:
                continue
            other = tmk.parse_tmk(stored[record_id])
            level1 = tmk.level1(query, other)
            level2 = tmk.level2(query, other)
            if level1 >= self.rule.level1 and level2 >= self.rule.level2:
                hits.append(TmkHit(record_id, level1, level2))
        return hits
