"""What every part of HashDB shares: the attributes the constructor sets, and the few helpers
more than one concern needs. No behaviour of its own beyond those helpers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hashdb.errors import Conflict, InvalidInput, NotFound
from hashdb.trust import policy

if TYPE_CHECKING:  # annotations only: HashingService (hashing alone) imports this without them
    from hashdb.config import Settings
    from hashdb.index.indexset import IndexSet
    from hashdb.service.keypoint_matching import KeypointMatcher
    from hashdb.service.tmk_matching import TmkMatcher
    from hashdb.store.base import HashStore
    from hashdb.trust import spike
    from hashdb.trust.safelist import SafelistMatcher
    from hashdb.trust.taxonomy import Taxonomy
    from hashdb.types import HashRecord, Principal

MAX_EXPORT_PAGE = 10_000
# A page that carries keypoints holds up to 9.2 KB of base64 an image entry against about
# 0.4 KB without: 10,000 of them would be a 90 MB answer, built whole in a worker's memory and
# read whole by the mirror. At 1,000 (the default page) it stays under 10 MB.
MAX_KEYPOINT_EXPORT_PAGE = 1_000


class ServiceBase:
    """The state HashDB's constructor sets, annotated so each mixin type-checks on its own.

    These are the concerns' shared dependencies: a mixin reaches another concern only through
    one of them (the safelist, the spike rule, the indexes), never by calling another mixin."""

    settings: Settings
    server_secret: bytes | None
    store: HashStore
    indexes: IndexSet
    taxonomy: Taxonomy
    safelist: SafelistMatcher
    spike_rule: spike.SpikeRule
    tmk: TmkMatcher
    keypoints: KeypointMatcher

    def _visible_record(self, record_id: int, actor: Principal, held_from_owner: str | None = None) -> HashRecord:
        """The record if it takes part in this caller's lookups, else NotFound. With
        `held_from_owner`, its owner is told that instead (a Conflict): the owner sees the
        record (and may retract it), so "no such record" would be false; anyone else is told
        just that, so as not to learn it exists."""
        record = self.store.get_records([record_id]).get(record_id)
        if record is not None and not policy.visible(record, actor) and held_from_owner and policy.owns(record, actor):
            raise Conflict(f"hash record {record_id} is {record.status}: {held_from_owner}")
        if record is None or not policy.visible(record, actor):
            raise NotFound(f"no hash record with id {record_id}")
        return record

    def _copies_for_voter(self, record: HashRecord, actor: Principal) -> list[HashRecord]:
        """The records holding `record`'s hash, which policy.check_voter and check_judge read to
        tell whether the caller's organisation shared it too; none needed for its own record
        (refused anyway)."""
        if record.org_id == actor.org_id:
            return []
        return self.store.find_values(record.signal, [record.value])

    def _status_from_votes(self, record: HashRecord, actor: Principal, reason: str) -> HashRecord:
        """The record, active or disputed as its standing votes now say (policy.status_after_votes),
        after something changed them: a vote, a vote withdrawn, a release."""
        status = policy.status_after_votes(record.status, self.store.standing_votes(record.id), self.settings)
        return record if status == record.status else self.store.set_status(record.id, status, actor, reason)

    def _secret(self) -> bytes:
        if self.server_secret is None:
            raise InvalidInput("no server secret configured")
        return self.server_secret
