"""What every part of HashDB shares: the attributes the constructor sets, and the few helpers
more than one concern needs. No behaviour of its own beyond those helpers."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from hashdb.config import Settings
from hashdb.errors import InvalidInput, NotFound
from hashdb.index.indexset import IndexSet
from hashdb.store.base import HashStore
from hashdb.trust import policy, spike
from hashdb.trust.safelist import SafelistHit, SafelistMatcher
from hashdb.trust.taxonomy import Taxonomy
from hashdb.types import HashRecord, Incident, Match, NewRecord, Principal, SubmitOutcome

MAX_EXPORT_PAGE = 10_000


class ServiceBase:
    """The state HashDB's constructor sets, annotated so each mixin type-checks on its own."""

    settings: Settings
    server_secret: bytes | None
    store: HashStore
    indexes: IndexSet
    taxonomy: Taxonomy
    safelist: SafelistMatcher
    spikes: spike.SpikeCounter

    if TYPE_CHECKING:
        # One concern calling into another: defined by OperationsMixin, TrustMixin, CrisisMixin.
        def load_index(self, progress: Callable[[str, int], None] | None = None) -> None: ...

        def _count_matches(self, per_query: Sequence[Sequence[Match]], actor: Principal) -> None: ...

        def _note_safelist_holds(self, records: Sequence[NewRecord], outcomes: Sequence[SubmitOutcome],
                                 held: Mapping[int, SafelistHit], actor: Principal) -> None: ...

        def _announce(self, records: Sequence[NewRecord], outcomes: Sequence[SubmitOutcome],
                      by_name: Mapping[str, Incident]) -> None: ...

    def _visible_record(self, record_id: int, actor: Principal) -> HashRecord:
        record = self.store.get_records([record_id]).get(record_id)
        if record is None or not policy.visible(record, actor):
            raise NotFound(f"no hash record with id {record_id}")
        return record

    def _secret(self) -> bytes:
        if self.server_secret is None:
            raise InvalidInput("no server secret configured")
        return self.server_secret
