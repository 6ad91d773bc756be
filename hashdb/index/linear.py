"""LinearIndex: numpy brute force. For small deployments, and the oracle the FAISS index is tested against.

Kept deliberately plain (one XOR + popcount over every stored code per query) so that it is
easy to trust. It shares only the popcount helper with FaissIndex; the tests check both
against pure-Python ints as well.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from hashdb.errors import IndexStale
from hashdb.bits import check_bits
from hashdb.index._bits import check_codes, check_ids, check_radius, hamming_to_all
from hashdb.index._files import Manifest, write_saved


class LinearIndex:
    """Every search scans every code: O(n) per query, no build cost, exact by construction."""

    def __init__(self, bits: int) -> None:
        self.bits = check_bits(bits)
        self._codes = np.zeros((0, bits // 8), dtype=np.uint8)
        self._ids = np.zeros(0, dtype=np.int64)
        self._count = 0
        self._row_of: dict[int, int] = {}

    def __len__(self) -> int:
        return self._count

    def _reserve(self, extra: int) -> None:
        need = self._count + extra
        if need <= len(self._ids):
            return
        capacity = max(need, 2 * len(self._ids), 16)
        codes = np.zeros((capacity, self.bits // 8), dtype=np.uint8)
        codes[: self._count] = self._codes[: self._count]
        ids = np.zeros(capacity, dtype=np.int64)
        ids[: self._count] = self._ids[: self._count]
        self._codes, self._ids = codes, ids

    def add(self, ids: Sequence[int] | np.ndarray, codes: np.ndarray) -> None:
        codes = check_codes(codes, self.bits)
        id_arr = check_ids(ids, count=codes.shape[0])
        self._reserve(len(id_arr))
        for key, code in zip(id_arr.tolist(), codes):
            row = self._row_of.get(key)
            if row is None:
                row = self._count
                self._count += 1
                self._row_of[key] = row
                self._ids[row] = key
            self._codes[row] = code

    def remove(self, ids: Iterable[int]) -> None:
        for key in check_ids(ids).tolist():
            row = self._row_of.pop(key, None)
            if row is None:
                continue
            last = self._count - 1
            if row != last:
                moved = int(self._ids[last])
                self._codes[row] = self._codes[last]
                self._ids[row] = moved
                self._row_of[moved] = row
            self._count = last

    def search(self, codes: np.ndarray, max_distance: int) -> list[list[tuple[int, int]]]:
        queries = check_codes(codes, self.bits)
        radius = check_radius(max_distance, self.bits)
        stored = self._codes[: self._count]
        ids = self._ids[: self._count]
        results: list[list[tuple[int, int]]] = []
        for query in queries:
            dist = hamming_to_all(query, stored)
            hit = np.flatnonzero(dist <= radius)
            hit_ids, hit_dist = ids[hit], dist[hit]
            order = np.lexsort((hit_ids, hit_dist))
            results.append(list(zip(hit_ids[order].tolist(), hit_dist[order].tolist())))
        return results

    def save(self, path: Path, covers_seq: int, owner: str = "") -> None:
        codes = self._codes[: self._count]
        ids = self._ids[: self._count]

        def write(target: Path) -> None:
            with open(target, "wb") as fh:
                np.savez(fh, codes=codes, ids=ids)

        write_saved(
            Path(path), kind="linear", bits=self.bits, covers_seq=covers_seq,
            count=self._count, writers={"npz": write}, owner=owner,
        )

    @classmethod
    def load(cls, path: Path, manifest: Manifest) -> LinearIndex:
        data_path = manifest.file(path, "npz")
        try:
            with np.load(data_path, allow_pickle=False) as data:
                codes, ids = data["codes"], data["ids"]
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise IndexStale(f"saved index data {data_path} is unreadable ({exc}); rebuild it") from None
        if codes.shape != (manifest.count, manifest.bits // 8) or ids.shape != (manifest.count,):
            raise IndexStale(f"saved index data {data_path} does not match its manifest; rebuild it")
        index = cls(manifest.bits)
        index.add(ids, codes)
        return index
