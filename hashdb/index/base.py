"""The HashIndex Protocol the service relies on, and loading a saved index (hex <-> codes: hashdb.bits).

An index is derived data: the store is the truth and an index is rebuilt from it. No store access here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from hashdb.index._files import Manifest


@runtime_checkable
class HashIndex(Protocol):
    """Exact Hamming range search over fixed-width binary hashes keyed by store record ids."""

    bits: int

    def __len__(self) -> int:
        """Number of live (added and not removed) ids."""
        ...

    def add(self, ids: Sequence[int] | np.ndarray, codes: np.ndarray) -> None:
        """Add codes (uint8, shape (n, bits // 8)); re-adding an existing id replaces its code."""
        ...

    def remove(self, ids: Iterable[int]) -> None:
        """Remove ids; unknown ids are ignored."""
        ...

    def search(self, codes: np.ndarray, max_distance: int) -> list[list[tuple[int, int]]]:
        """Per query, every (id, distance) with distance <= max_distance, sorted by (distance, id)."""
        ...

    def save(self, path: Path, covers_seq: int, owner: str = "") -> None:
        """Write atomically; `covers_seq` is the store change-log sequence this index reflects,
        `owner` names whose change log that is (kept in the manifest, read back by load_saved)."""
        ...


def load_index(path: Path) -> tuple[HashIndex, int]:
    """Load what `HashIndex.save` wrote: the index and the change-log sequence it covers.

    Raises `IndexStale` when there is no readable index at `path` (the remedy is a rebuild).
    """
    index, manifest = load_saved(path)
    return index, manifest.covers_seq


def load_saved(path: Path) -> tuple[HashIndex, Manifest]:
    """`load_index`, with the manifest the index was read under (its sequence and owner come
    from the same read as the data, even while another process saves over it)."""
    from hashdb.index._files import read_manifest

    manifest = read_manifest(Path(path))
    if manifest.kind == "linear":
        from hashdb.index.linear import LinearIndex

        return LinearIndex.load(Path(path), manifest), manifest
    from hashdb.index.faiss_index import FaissIndex

    return FaissIndex.load(Path(path), manifest), manifest
