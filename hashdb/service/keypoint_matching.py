"""Keypoint matching: a cropped re-upload found by where its keypoints say a stored image lies
in it, then confirmed by the PDQ of that stored image's box, the query aligned on it
(hashing/keypoints.py). Candidates come from an in-memory index of every stored keypoint,
loaded from its snapshot beside the hash indexes' when there is one of this database
(keypoint_snapshot.py), else built from the store, and kept current by reading the rows added
since, as TMK's is.

The index is add-only: a retracted or quarantined record stays in it and is dropped where every
match is, by the store's record status (MatchingMixin.lookup). Only a lookup that hashed the
file itself carries a probe (its keypoints need its pixels), so a server whose lookups arrive as
hashes never loads the index.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hashdb.errors import IndexStale
from hashdb.index.keypoints import KeypointIndex
from hashdb.service import keypoint_snapshot
from hashdb.service.appended_rows import AppendedRows, Rows
from hashdb.service.keypoint_snapshot import Covered
from hashdb.store.base import HashStore

if TYPE_CHECKING:  # imported when first used: OpenCV costs a server whose lookups are hashes
    from hashdb.hashing import keypoints

log = logging.getLogger(__name__)

# A match's `via`: the stored image's box PDQ against the query aligned on it.
ALIGNED = "aligned"
_PAGE = 5_000
# A load that had to add more rows than this past its snapshot (or had none) saves a fresh one.
# Adding 1,000 rows cost 0.4 to 0.7 s of CPU beyond loading the snapshot (0.1 to 0.2 s, at 2,000
# to 10,000 images), paid again by every later lookup; saving cost about 0.1 s a 1,000 images
# held (0.9 s and 156 MB at 10,000), paid once (scripts/bench_keypoint_index.py's databases).
# Only the first refresh saves: a long-running server's lookups would wait on the write.
SAVE_AFTER_ADDING = 1_000


@dataclass(frozen=True, slots=True)
class KeypointHit:
    record_id: int
    alignment: keypoints.Alignment


class KeypointMatcher:
    def __init__(self, store: HashStore, directory: Path | None = None) -> None:
        """`directory`: where the snapshot is kept (the hash indexes' folder); None keeps none."""
        self.store = store
        self.directory = directory
        self._index = KeypointIndex()
        self._rows = AppendedRows(store.keypoint_rows, self._add, _PAGE)
        self._covered: Covered | None = None  # the last row the index holds
        self._added = 0  # rows added since the snapshot (or since none)
        self._loading = threading.Lock()
        self._loaded = False

    def __len__(self) -> int:
        return len(self._index)

    def refresh(self) -> None:
        """Add the keypoint rows stored since the last call (the first loads the snapshot)."""
        if not self._loaded:
            self._load()
        self._rows.refresh()

    def _load(self) -> None:
        with self._loading:
            if self._loaded:
                return
            snapshot = None if self.directory is None else keypoint_snapshot.load(self.store, self.directory)
            if snapshot is not None:
                with self._rows.lock:
                    self._index, self._covered = snapshot.index, snapshot.covered
                    self._rows.start_after(snapshot.covered.row_id)
            self._rows.refresh()
            if snapshot is None or self._added > SAVE_AFTER_ADDING:
                self._save()
            self._loaded = True

    def rebuild(self) -> int:
        """A fresh index of every stored keypoint row, saved (`hashdb index rebuild`); how many
        descriptors it holds."""
        with self._loading:
            with self._rows.lock:
                self._index, self._covered, self._added = KeypointIndex(), None, 0
                self._rows.start_after(0)
            self._rows.refresh()
            self._save()
            self._loaded = True
            return len(self._index)

    def _save(self) -> None:
        """Save the index unless there is no folder; with nothing to save (a database without
        keypoints, or whose last were retracted) there is no snapshot, nor one left from before."""
        with self._rows.lock:
            if self.directory is None:
                return
            if self._covered is None:
                keypoint_snapshot.remove(self.directory)
                return
            keypoint_snapshot.save(self.store, self.directory, self._index, self._covered)
            self._added = 0

    def _add(self, rows: Rows) -> None:
        from hashdb.hashing import keypoints

        self._index.add([record_id for _, record_id, _ in rows],
                        [keypoints.parse(data).descriptors for _, _, data in rows])
        self._covered = Covered.of(rows[-1])
        self._added += len(rows)

    def _candidates(self, probe: keypoints.Probe, skip: frozenset[int]) -> list[int]:
        with self._rows.lock:
            return self._index.candidates(probe.keypoints.descriptors, skip)

    def matches(self, probe: keypoints.Probe, skip: frozenset[int] = frozenset()) -> list[KeypointHit]:
        """Stored images the probe's file shows, verified and aligned; `skip`: records the
        lookup has matched already (not verified again)."""
        from hashdb.hashing import keypoints

        self.refresh()
        try:
            found = self._candidates(probe, skip)
        except IndexStale as exc:
            log.warning("%s; rebuilding the keypoint index from the store", exc)
            self.rebuild()
            found = self._candidates(probe, skip)
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
