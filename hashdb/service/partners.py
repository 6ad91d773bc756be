"""Partners: the ordered change feed an export pages through, and its opaque cursors."""

from __future__ import annotations

import base64
import hashlib
import re

from hashdb.errors import ForkedCursor, InvalidInput, NotShared
from hashdb.hashing import tmk
from hashdb.service.base import MAX_EXPORT_PAGE, MAX_KEYPOINT_EXPORT_PAGE, ServiceBase
from hashdb.store.rows import change_mark
from hashdb.trust import policy
from hashdb.types import ChangeDetails, FeedEntry, Principal, TmkHash, Votes


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

    def export(self, actor: Principal, since: str | None = None, limit: int = 1000,
               keypoints: bool = False) -> tuple[list[FeedEntry], str]:
        """The ordered change feed after `since`, and the cursor to pass next time. With
        `keypoints`, the entries of image PDQ records also carry their stored keypoints, when
        this database shares them (Settings.share_keypoints); NotShared otherwise."""
        policy.require(actor, "export")
        if keypoints and not self.settings.share_keypoints:
            # Refused, not answered without them: a mirror built from such a feed would look
            # complete and quietly find no crops.
            raise NotShared("this database does not share its stored keypoints: its operator turns that on with "
                            "HASHDB_SHARE_KEYPOINTS=1 (keypoints with their positions give away more of a "
                            "picture than a hash); ask for the feed without keypoints")
        if not 1 <= limit <= MAX_EXPORT_PAGE:
            raise InvalidInput(f"limit must be between 1 and {MAX_EXPORT_PAGE}")
        if keypoints and limit > MAX_KEYPOINT_EXPORT_PAGE:
            raise InvalidInput(f"limit must be between 1 and {MAX_KEYPOINT_EXPORT_PAGE} with keypoints (a page "
                               "of entries with keypoints is about 10 KB an image)")
        seq, check = decode_cursor(since)
        changes = self.store.changes_since(seq, limit)
        if not changes and seq and seq > self.store.last_seq():
            # Every cursor this server issued is at most its feed's head. One past it is another
            # server's, or older than a restore of this database: following it would skip changes.
            # Said of the database: a local `hashdb export --db` has no server.
            raise InvalidInput("cursor is not one this database issued (it is past the end of this feed: "
                               "from another database, or from before this one was restored?)")
        if check is not None and check != _check_of(self.store.change_mark(seq)):
            # Restored from an older backup and written to since, the feed reuses the sequence
            # numbers the restore took back: a mirror's cursor there names another change, and
            # going on from it would skip the changes made since the restore while the mirror
            # kept records the restore took out (matching on, under ids that now name others).
            raise ForkedCursor("cursor names a change this database no longer has at that place in its feed: it "
                               "was restored from an older backup after the cursor was issued. The records "
                               "fetched with it may be gone here and ids reused, so continuing would skip "
                               "changes and keep removed records; fetch the feed again from the start into a "
                               "new mirror (hashdb sync into another --db; threatexchange fetch --clear)")
        records = self.store.get_records([c.record_id for c in changes])
        video_ids = [r.id for r in records.values() if r.signal == "vpdq"]
        videos = self.store.timed_frames(video_ids)
        derived = self.store.derived_hashes([r.id for r in records.values() if r.signal == "pdq"])
        tmks = self.store.tmk_features([r.id for r in records.values() if r.signal == tmk.SIGNAL])
        # A retracted record's keypoints are not sent: a mirror adds no retracted record, and one
        # it holds already keeps what it was given. Nor a quarantined one's: held, perhaps because
        # its keypoints are a safelisted benign picture's, whose sketch should not leave (in trial).
        # Nor keypoints this database took from another's feed: that source's operator chose to
        # share them with its partners, not with theirs (a mirror could pass them on, in trial).
        shared = [r.id for r in records.values() if r.signal == "pdq" and r.media_type == "image"
                  and r.status not in ("retracted", "quarantined")] if keypoints else []
        mirrored = self.store.mirror_origins(shared) if shared else {}
        stored = self.store.keypoints_of([i for i in shared if i not in mirrored]) if shared else {}
        entries = []
        for change in changes:
            record = records[change.record_id]
            frames = tuple(videos.get(record.id, []))
            # As the change left the record: a hash shared again after its retraction may have
            # come back under another incident, and its earlier entries must not say that one.
            then = change.details or ChangeDetails(record.incident, record.quality, record.media_type)
            entries.append(FeedEntry(change.seq, change.kind, record.id, record.signal, record.value,
                                     then.quality, then.media_type, change.labels, change.status,
                                     then.incident, record.created_at, change.at, frames,
                                     tuple(d for _, d in derived.get(record.id, [])),
                                     _tmk_hash(tmks.get(record.id)),
                                     Votes(record.agree, record.disagree, record.false_positive),
                                     stored.get(record.id) if change.status != "retracted" else None))
        mark: str | None
        if changes:  # the page's last change carries what its mark is made of: no second read
            last, mark = changes[-1].seq, change_mark(changes[-1].at, changes[-1].record_id)
        else:
            last, mark = seq, self.store.change_mark(seq) if seq else None
        return entries, encode_cursor(last, mark)


def _tmk_hash(data: bytes | None) -> TmkHash | None:
    return None if data is None else tmk.stored(tmk.parse_tmk(data))


MAX_SEQ = 2**63 - 1


def encode_cursor(seq: int, mark: str | None = None) -> str:
    """An export's next cursor: the feed's sequence and, from servers that check it, a digest
    of the change at it (`mark`: the store's change_mark), so that a cursor from before a
    restore is told from one of the restored history. v1 cursors (before the check) still read."""
    if mark is None:
        return base64.urlsafe_b64encode(f"v1:{seq}".encode()).decode().rstrip("=")
    return base64.urlsafe_b64encode(f"v2:{seq}:{_check_of(mark)}".encode()).decode().rstrip("=")


def cursor_after(entry: FeedEntry) -> str:
    """The cursor the export that wrote `entry` would give next, had it ended there: what an
    imported export file leaves a mirror to sync on from. v2, not v1: the entry carries the
    change's time and record, all its check is made of, and with the check a restore of the
    source after the file was written is refused at the next sync (forked_cursor) instead of
    skipping the reissued changes, as a v1 cursor would."""
    return encode_cursor(entry.seq, change_mark(entry.at, entry.id))


def decode_cursor(cursor: str | None) -> tuple[int, str | None]:
    """The sequence a cursor names, and its check (None for the start and for v1 cursors)."""
    if cursor in (None, "", "0"):
        return 0, None
    try:
        text = base64.urlsafe_b64decode(str(cursor) + "=" * (-len(str(cursor)) % 4)).decode("ascii")
        version, _, rest = text.partition(":")
        seq, _, check = rest.partition(":")
        # Sequences are BIGINTs in both stores: a larger number would overflow SQLite's binding.
        if not seq.isascii() or not seq.isdigit() or len(seq) > 19 or int(seq) > MAX_SEQ:
            raise ValueError(text)
        if version == "v1" and not check:
            return int(seq), None
        if version == "v2" and _CHECK.fullmatch(check) and int(seq) > 0:
            return int(seq), check
        raise ValueError(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput("cursor is not one this database issued (an export's `next cursor`)") from exc


_CHECK = re.compile(r"[0-9a-f]{16}")


def _check_of(mark: str | None) -> str | None:
    return None if mark is None else hashlib.sha256(mark.encode()).hexdigest()[:16]
