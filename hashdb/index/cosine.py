"""An exact cosine-similarity index over unit float32 vectors (TMK's level-1 averages), keyed by
int ids. Add-only: whoever holds it filters out what is no longer live."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt


class CosineIndex:
    # A flat scan is exact and needs no training. Shared TMK hashes number in the thousands to
    # tens of thousands (one per removed video, not per frame): 256 floats each, 10 MB at
    # 10,000, scanned by one matrix-vector product. FAISS's IndexFlatIP is the same scan
    # (measured on par at 10,000 by scripts/bench_tmk.py) plus an id map and an OpenMP pool
    # that server workers would share; an approximate index (IVF, HNSW) would trade recall for
    # speed nobody needs at this size.
    def __init__(self, dimension: int) -> None:
        self.dimension = dimension
        self._vectors = np.empty((0, dimension), dtype=np.float32)
        self._ids = np.empty(0, dtype=np.int64)
        self._pending: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]] = []

    def __len__(self) -> int:
        return len(self._ids) + sum(len(ids) for ids, _ in self._pending)

    def add(self, ids: Sequence[int], vectors: npt.NDArray[np.float32]) -> None:
        """Vectors must already be at length 1: the inner product is then the cosine."""
        if len(ids) == 0:
            return
        data = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(ids), self.dimension)
        self._pending.append((np.asarray(ids, dtype=np.int64), data))

    def search(self, vectors: npt.NDArray[np.float32], min_similarity: float) -> list[list[tuple[int, float]]]:
        """Per query vector (at length 1), every (id, cosine) with cosine >= min_similarity,
        most similar first."""
        queries = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dimension)
        if self._pending:  # appended in blocks, joined once at the next search
            self._ids = np.concatenate([self._ids, *(ids for ids, _ in self._pending)])
            self._vectors = np.concatenate([self._vectors, *(data for _, data in self._pending)])
            self._pending = []
        out: list[list[tuple[int, float]]] = []
        for query in queries:
            similarities = self._vectors @ query
            hits = np.nonzero(similarities >= min_similarity)[0]
            order = hits[np.lexsort((self._ids[hits], -similarities[hits]))]
            out.append([(int(self._ids[i]), float(similarities[i])) for i in order])
        return out
