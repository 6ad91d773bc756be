"""Partners: the ordered change feed an export pages through, and its opaque cursors."""

from __future__ import annotations

import base64
import hashlib

from hashdb.errors import InvalidInput
from hashdb.hashing import tmk
from hashdb.service.base import MAX_EXPORT_PAGE, ServiceBase
from hashdb.trust import policy
from hashdb.types import FeedEntry, Principal, TmkHash, Votes


class PartnersMixin(ServiceBase):
    def feed_identity(self) -> str:
        """The same name for this database's change feed whatever URL it is reached by
        (localhost or 127.0.0.1, an address or its DNS name), so a mirror can tell one server
        under two names from two servers, and a database replaced behind the same URL from
        the one it followed. Made from the database's random identity (migration m015): fixed
        for the database, a restored backup of it and PostgreSQL replicas sharing it, and new
        with a new database, whether or not the server secret is kept."""
        digest = hashlib.sha256(b"hashdb change feed identity\0" + self.store.database_id().encode())
        return digest.hexdigest()[:32]

    def export(self, actor: Principal, since: str | None = None, limit: int = 1000) -> tuple[list[FeedEntry], str]:
        """The ordered change feed after `since`, and the cursor to pass next time."""
        policy.require(actor, "export")
        if not 1 <= limit <= MAX_EXPORT_PAGE:
            raise InvalidInput(f"limit must be between 1 and {MAX_EXPORT_PAGE}")
        seq = decode_cursor(since)
        changes = self.store.changes_since(seq, limit)
        if not changes and seq and seq > self.store.last_seq():
            # Every cursor this server issued is at most its feed's head. One past it is another
            # server's, or older than a restore of this database: following it would skip changes.
            # Said of the database: a local `hashdb export --db` has no server.
            raise InvalidInput("cursor is not one this database issued (it is past the end of this feed: "
                               "from another database, or from before this one was restored?)")
        records = self.store.get_records([c.record_id for c in changes])
        video_ids = [r.id for r in records.values() if r.signal == "vpdq"]
        videos = self.store.timed_frames(video_ids)
        derived = self.store.derived_hashes([r.id for r in records.values() if r.signal == "pdq"])
        tmks = self.store.tmk_features([r.id for r in records.values() if r.signal == tmk.SIGNAL])
        entries = []
        for change in changes:
            record = records[change.record_id]
            frames = tuple(videos.get(record.id, []))
            entries.append(FeedEntry(change.seq, change.kind, record.id, record.signal, record.value,
                                     record.quality, record.media_type, change.labels, change.status,
                                     record.incident, record.created_at, change.at, frames,
                                     tuple(d for _, d in derived.get(record.id, [])),
                                     _tmk_hash(tmks.get(record.id)),
                                     Votes(record.agree, record.disagree, record.false_positive)))
        return entries, encode_cursor(changes[-1].seq if changes else seq)


def _tmk_hash(data: bytes | None) -> TmkHash | None:
    return None if data is None else tmk.stored(tmk.parse_tmk(data))


MAX_SEQ = 2**63 - 1


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"v1:{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    if cursor in (None, "", "0"):
        return 0
    try:
        text = base64.urlsafe_b64decode(str(cursor) + "=" * (-len(str(cursor)) % 4)).decode("ascii")
        version, _, seq = text.partition(":")
        # Sequences are BIGINTs in both stores: a larger number would overflow SQLite's binding.
        if version != "v1" or not seq.isascii() or not seq.isdigit() or len(seq) > 19 or int(seq) > MAX_SEQ:
            raise ValueError(text)
        return int(seq)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput("cursor is not one this database issued (an export's `next cursor`)") from exc
