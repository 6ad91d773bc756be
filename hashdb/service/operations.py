"""Operations: load and rebuild the derived indexes, and the store's counts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hashdb.errors import InvalidInput
from hashdb.service.base import ServiceBase
from hashdb.trust import policy
from hashdb.types import IndexStatus, Principal


@dataclass(frozen=True, slots=True)
class SavedIndex:
    """What `hashdb index rebuild` did: entries per signal, and the folder the snapshot is in."""

    indexed: dict[str, int]
    folder: Path


class OperationsMixin(ServiceBase):
    def load_index(self, progress: Callable[[str, int], None] | None = None) -> None:
        self.indexes.load(progress)

    def rebuild_index(self, progress: Callable[[str, int], None] | None = None) -> dict[str, int]:
        self.indexes.rebuild(progress)
        self.indexes.save()
        return self.indexes.sizes()

    def rebuild_saved_index(self, progress: Callable[[str, int], None] | None = None) -> SavedIndex:
        """Rebuild and save the snapshot the server's workers load at start, and the keypoint
        index's that a lookup of a file loads (unless keypoints are off). A PostgreSQL database
        has no folder beside it: without HASHDB_INDEX_DIR nothing could be saved, so it is
        refused before the rebuild (which would then have been for nothing)."""
        folder = self.indexes.directory
        if folder is None:
            raise InvalidInput("nowhere to save the index: set HASHDB_INDEX_DIR to a folder (the same the "
                               "server's workers are given, so they load it instead of each rebuilding)")
        indexed = self.rebuild_index(progress)
        if self.settings.keypoints:
            indexed["keypoints"] = self.keypoints.rebuild()
        return SavedIndex(indexed, folder.resolve())

    def stats(self, actor: Principal) -> dict[str, dict[str, int]]:
        policy.require(actor, "lookup")
        return self.store.counts()

    def record_counts(self) -> dict[str, dict[str, int]]:
        """The stats counts for the operator's metrics (served without a key; no names in them)."""
        return self.store.counts()

    def index_status(self) -> IndexStatus:
        """This process's indexes: entries per signal, and change-log rows not yet applied."""
        indexes = self.indexes
        seq, ready = indexes.seq, indexes.ready
        return IndexStatus(ready, indexes.sizes() if ready else {}, max(0, self.store.last_seq() - seq))
