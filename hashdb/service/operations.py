"""Operations: load and rebuild the derived indexes, and the store's counts."""

from __future__ import annotations

from collections.abc import Callable

from hashdb.service.base import ServiceBase
from hashdb.trust import policy
from hashdb.types import IndexStatus, Principal


class OperationsMixin(ServiceBase):
    def load_index(self, progress: Callable[[str, int], None] | None = None) -> None:
        self.indexes.load(progress)

    def rebuild_index(self, progress: Callable[[str, int], None] | None = None) -> dict[str, int]:
        self.indexes.rebuild(progress)
        self.indexes.save()
        return self.indexes.sizes()

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
