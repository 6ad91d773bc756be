"""Keypoint matching: a cropped re-upload found by where its keypoints say a stored image lies
in it, then confirmed by the PDQ of that stored image's box, the query aligned on it
(hashing/keypoints.py). Candidates come from an in-memory index of every stored keypoint,
loaded from the store and kept current by reading the rows added since, as TMK's is.

The index is add-only: a retracted or quarantined record stays in it and is dropped where every
match is, by the store's record status (MatchingMixin.lookup). Only a lookup that hashed the
file itself carries a probe (its keypoints need its pixels), so a server whose lookups arrive as
hashes never loads the index.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from hashdb.index.keypoints import KeypointIndex
from hashdb.service.appended_rows import AppendedRows, Rows
from hashdb.store.base import HashStore

if TYPE_CHECKING:  # imported when first used: OpenCV costs a server whose lookups are hashes
    from hashdb.hashing import keypoints

# A match's `via`: the stored image's box PDQ against the query aligned on it.
ALIGNED = "aligned"
_PAGE = 5_000


@dataclass(frozen=True, slots=True)
class KeypointHit:
    record_id: int
    alignment: keypoints.Alignment


class KeypointMatcher:
    def __init__(self, store: HashStore) -> None:
        self.store = store
        self._index = KeypointIndex()
        self._rows = AppendedRows(store.keypoint_rows, self._add, _PAGE)

    def __len__(self) -> int:
        return len(self._index)

    def refresh(self) -> None:
        """Add the keypoint rows stored since the last call."""
        self._rows.refresh()

    def _add(self, rows: Rows) -> None:
        from hashdb.hashing import keypoints

        self._index.add([record_id for _, record_id, _ in rows],
                        [keypoints.parse(data).descriptors for _, _, data in rows])

    def matches(self, probe: keypoints.Probe, skip: frozenset[int] = frozenset()) -> list[KeypointHit]:
        """Stored images the probe's file shows, verified and aligned; `skip`: records the
        lookup has matched already (not verified again)."""
        from hashdb.hashing import keypoints

        self.refresh()
        with self._rows.lock:
            found = self._index.candidates(probe.keypoints.descriptors, skip)
        if not found:
            return []
        stored = self.store.keypoints_of(found)
        hits: list[KeypointHit] = []
        for record_id in found:
            if record_id in stored:
                alignment = keypoints.align(probe, keypoints.parse(stored[record_id]))
                if alignment is not None:
                    hits.append(KeypointHit(record_id, alignment))
        return hits
