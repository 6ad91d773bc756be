"""A local mirror of another hashdb: its change feed applied to the local store. The one path
`hashdb import FEED.jsonl` and `hashdb sync` share. Entries are checked here (hashes, labels
against the local taxonomy) before the store applies them; no HTTP or click in this module."""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from hashdb.errors import Forbidden, HashDBError, InvalidHash, InvalidInput, NotShared, RateLimited, Unauthorized
from hashdb.hashing import keypoints_text, tmk
from hashdb.hashing.derived import derived_from_json
from hashdb.hashing.registry import VIDEO_SIGNAL, parse_hash
from hashdb.service import MAX_EXPORT_PAGE, MAX_KEYPOINT_EXPORT_PAGE, HashDB
from hashdb.service.partners import cursor_after, decode_cursor
from hashdb.trust import policy
from hashdb.trust.taxonomy import Taxonomy
from hashdb.types import (
    FEED_KINDS, STATUSES, DerivedHash, FeedEntry, FrameHash, HashValue, MirrorOutcome, Principal, Votes,
)

# Entries per transaction when importing a file.
FILE_PAGE = 5_000
# What an imported file is called when nobody names its source.
FILE_SOURCE = "file"
MAX_TIMESTAMP = 64


@dataclass(frozen=True, slots=True)
class Source:
    """Where a feed comes from: `key` names it in the mapping and cursor tables, `org` is the
    organisation its records are held under here."""

    key: str
    org: str

    @classmethod
    def from_url(cls, url: str) -> Source:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidInput(f"source URL must be http(s)://host[:port], got {url!r}")
        # Credentials, query and case of the host do not make another source.
        host = parts.hostname + (f":{parts.port}" if parts.port else "")
        return cls(urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", "")), f"{policy.MIRROR_ORG_PREFIX}{host}")

    @classmethod
    def named(cls, name: str) -> Source:
        """A server URL, or a name for feed files (the same name again continues the same mirror)."""
        if "://" in name:
            return cls.from_url(name)
        policy.check_text("source", name, 100)
        if not name.strip():
            raise InvalidInput("source name is empty")
        return cls(name, f"{policy.MIRROR_ORG_PREFIX}{name}")


def add(a: MirrorOutcome, b: MirrorOutcome) -> MirrorOutcome:
    return MirrorOutcome(*(getattr(a, f.name) + getattr(b, f.name) for f in fields(MirrorOutcome)))


# checking entries ----------------------------------------------------------------------------


def parse_entry(doc: object, taxonomy: Taxonomy, keypoints: bool = True) -> FeedEntry:
    """One line of `hashdb export` (output.feed_json) as a FeedEntry, checked as a submission
    would be: known signal, valid hex, labels from the local taxonomy, keypoints read strictly.
    `keypoints` False: an entry's keypoints are not read (a sync that did not ask for them)."""
    if not isinstance(doc, dict):
        raise InvalidInput("a feed entry must be a JSON object")
    seq, record_id = _positive(doc, "seq"), _positive(doc, "id")
    kind, status, media_type = doc.get("kind"), doc.get("status"), doc.get("media_type")
    if kind not in FEED_KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(FEED_KINDS)}, got {kind!r}")
    if status not in STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
    if media_type not in ("image", "video"):
        raise InvalidInput(f"media_type must be image or video, got {media_type!r}")
    quality = doc.get("quality")  # parse_hash checks it is None or an integer 0..100
    raw_frames = doc.get("frames") or []
    stored_tmk = None
    if doc.get("tmk") is not None and doc.get("signal") != tmk.SIGNAL:
        raise InvalidInput("only a tmk entry has a tmk hash")
    if not isinstance(raw_frames, list) or not all(isinstance(f, dict) for f in raw_frames):
        raise InvalidInput("frames must be a list of objects")
    if doc.get("signal") == VIDEO_SIGNAL:
        if not raw_frames:
            raise InvalidInput("a vpdq entry must list its frames")
        try:  # a video's id is the SHA-256 of its frame hashes
            digest = parse_hash("sha256", doc.get("hash"), quality)
        except InvalidHash as exc:
            raise InvalidHash(f"vpdq hash must be 64 hex characters, the video's digest ({exc.message})") from exc
        value = HashValue(VIDEO_SIGNAL, digest.hex, digest.quality)
    elif doc.get("signal") == tmk.SIGNAL:
        if raw_frames:
            raise InvalidInput("only a vpdq entry has frames")
        features = tmk.parse_text(doc.get("tmk"))
        if doc.get("hash") != features.digest:  # the record's id is the sha256 of its .tmk file
            raise InvalidHash("tmk entry's hash must be the sha256 of its tmk file")
        value = HashValue(tmk.SIGNAL, features.digest, None)
        stored_tmk = tmk.stored(features)
    else:
        if raw_frames:
            raise InvalidInput("only a vpdq entry has frames")
        value = parse_hash(doc.get("signal"), doc.get("hash"), quality)
    frames = tuple(FrameHash(n, _frame_time(f.get("t", 0.0)), parse_hash("pdq", f.get("pdq"), f.get("quality")))
                   for n, f in enumerate(raw_frames))
    labels = doc.get("labels")
    if not isinstance(labels, list):
        raise InvalidInput("labels must be a list")
    incident = doc.get("incident")
    policy.check_text("incident", incident)
    derived = derived_from_json(doc.get("derived"), feed=True)
    if derived and value.signal != "pdq":
        raise InvalidInput("only a pdq entry has derived hashes")
    stored_keypoints = None
    if keypoints and doc.get("keypoints") is not None:
        if value.signal != "pdq" or media_type != "image":
            raise InvalidInput("only an image's pdq entry has keypoints")
        stored_keypoints = keypoints_text.decode_text(doc["keypoints"])
        _check_tie(stored_keypoints, value.hex, derived)
    return FeedEntry(seq, str(kind), record_id, value.signal, value.hex, value.quality, str(media_type),
                     taxonomy.validate(labels), str(status), incident, _timestamp(doc, "created_at"),
                     _timestamp(doc, "at"), frames, derived, stored_tmk, _votes(doc), stored_keypoints)


def _check_tie(data: bytes, pdq: str, derived: Sequence[DerivedHash]) -> None:
    """An entry's keypoints must be its own picture's, as a submission's must (service/sharing.py):
    another picture's would make the record match that picture (a feed file passed around and
    edited, in trial)."""
    from hashdb.hashing import keypoints

    apart = keypoints.distance_to_record(keypoints.parse(data), [pdq], derived)
    if apart > keypoints.TIE_RADIUS:
        raise InvalidInput(f"keypoints are of another picture: their whole-picture PDQ is {apart} bits from the "
                           f"entry's pdq and derived hashes (at most {keypoints.TIE_RADIUS})")


VOTE_FIELDS = ("agree", "disagree", "false_positive")


def _votes(doc: Mapping[str, Any]) -> Votes | None:
    """The record's vote counts; None from a feed written before it carried them (their counts
    stay what the mirror last heard)."""
    given = [key for key in VOTE_FIELDS if doc.get(key) is not None]
    if not given:
        return None
    if len(given) < len(VOTE_FIELDS):
        raise InvalidInput(f"give all of {', '.join(VOTE_FIELDS)} or none, got only {', '.join(given)}")
    counts = []
    for key in VOTE_FIELDS:
        value = doc[key]
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_INTEGER:
            raise InvalidInput(f"{key} must be a count (an integer >= 0), got {str(value)[:40]!r}")
        counts.append(value)
    return Votes(*counts)


def _frame_time(value: object) -> float:
    """A frame's time in seconds; feeds written before frames carried one give 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise InvalidInput(f"a frame's t must be a number of seconds >= 0, got {value!r}")
    return float(value)


# Sequence numbers and ids are SQLite (and PostgreSQL bigint) integers: a source sending a
# larger one is refused here, in one line, not by the database's OverflowError.
MAX_INTEGER = 2**63 - 1


def _positive(doc: Mapping[str, Any], key: str) -> int:
    value = doc.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_INTEGER:
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:40] + "..."
        raise InvalidInput(f"{key} must be a positive integer up to {MAX_INTEGER}, got {shown}")
    return value


def _timestamp(doc: Mapping[str, Any], key: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{key} must be a timestamp string")
    policy.check_text(key, value, MAX_TIMESTAMP)
    return value


def check_entries(docs: Sequence[object], taxonomy: Taxonomy, where: Callable[[int], str],
                  keypoints: bool = True) -> list[FeedEntry]:
    """Parse every entry; the first bad one is refused with `where(n)` and its seq and id."""
    out: list[FeedEntry] = []
    for n, doc in enumerate(docs):
        try:
            out.append(parse_entry(doc, taxonomy, keypoints))
        except HashDBError as exc:
            raise _named(exc, f"{where(n)}{_describe(doc)}") from exc
    return out


def _describe(doc: object) -> str:
    if not isinstance(doc, dict):
        return ""
    seq, record_id = doc.get("seq"), doc.get("id")
    return f" (seq {seq}, record {record_id})" if isinstance(seq, int) and isinstance(record_id, int) else ""


def _named(exc: HashDBError, where: str) -> HashDBError:
    # Same class (the API and CLI map it as before), message led by where it happened.
    if isinstance(exc, RateLimited):
        return RateLimited(f"{where}: {exc.message}", exc.retry_after)
    return type(exc)(f"{where}: {exc.message}")


# applying ------------------------------------------------------------------------------------


def apply(service: HashDB, source: Source, entries: Sequence[FeedEntry], cursor: str | None,
          actor: Principal) -> MirrorOutcome:
    """Apply checked entries in one transaction (with `cursor`, when given)."""
    # A mirror rewrites records wholesale, statuses included: the operator's call.
    policy.require(actor, "admin", "apply a feed to a mirror")
    return service.store.apply_feed(source.key, source.org, entries, cursor, actor)


# A file's feed entries as (where, entry document): where names the line, for errors.
FeedLines = Callable[[], Iterator[tuple[str, object]]]


def import_feed(service: HashDB, source: Source, path: Path, actor: Principal,
                lines: FeedLines | None = None, notes: list[str] | None = None) -> MirrorOutcome:
    """Apply a file `hashdb export` wrote (JSONL, or what `lines` reads of another format).
    Every line is checked before anything is written, so a bad line refuses the whole file;
    then it is applied a page per transaction. `notes` gets what the caller should be told: the
    keypoints the file's records go without that this mirror's history says are wanted, or
    that this database keeps none of those the file carries."""
    read = lines or (lambda: jsonl_lines(path))
    identities: set[str] = set()
    # Keypoints on any line, seen in the document: where this database keeps none, entries are
    # read without them, and the file's would go unstored without a word.
    carried = False

    def noting() -> Iterator[tuple[str, object]]:
        nonlocal carried
        for where, doc in read():
            feed = doc.get("feed") if isinstance(doc, dict) else None
            if feed is not None:
                if not isinstance(feed, str) or not _FEED_IDENTITY.fullmatch(feed):
                    raise InvalidInput(f"{where}: feed must be the short token `hashdb export` writes")
                identities.add(feed)
            carried = carried or isinstance(doc, dict) and doc.get("keypoints") is not None
            yield where, doc

    first: FeedEntry | None = None
    last: FeedEntry | None = None
    for page in _file_pages(noting, service.taxonomy, service.settings.keypoints):
        for entry in page:
            first = entry if first is None or entry.seq < first.seq else first
            last = entry if last is None or entry.seq > last.seq else last
    if len(identities) > 1:
        raise InvalidInput(f"{path} holds the feeds of {len(identities)} databases: import each database's "
                           "export on its own, each with its own --source")
    identity = next(iter(identities), None)  # None: an export from before feeds were named
    if identity is not None:
        _check_feed(service, source, identity, imported=path)
    if carried and not service.settings.keypoints:
        # Not in keypoints_note, which a sync shares: a sync asking for them is refused here.
        note: str | None = ("this database keeps no keypoints (HASHDB_KEYPOINTS=0), so the file's were not "
                            "stored")
    else:
        note = keypoints_note(service, source, carried)
    if note and notes is not None:
        notes.append(note)
    total = MirrorOutcome()
    for entries in _file_pages(read, service.taxonomy, service.settings.keypoints):
        total = add(total, apply(service, source, entries, None, actor))
    if identity is not None:
        service.store.set_mirror_feed(source.key, identity)
    cursor = _cursor_after_file(service, source, first, last)
    if cursor is not None:
        apply(service, source, [], cursor, actor)
    return total


def _cursor_after_file(service: HashDB, source: Source, first: FeedEntry | None,
                       last: FeedEntry | None) -> str | None:
    """Where the next `hashdb sync` from `source` goes on after importing its export: after the
    file's last entry, so it does not fetch the whole feed again. Only when the file continues
    from where the mirror stands (an export from the start, or from this mirror's cursor):
    a file that begins later (`export --since`) would otherwise leave the changes before it
    unfetched for good. Not for files of no named source, which no sync reads."""
    if source.key == FILE_SOURCE or first is None or last is None:
        return None
    stood, _ = decode_cursor(service.store.mirror_cursor(source.key))
    if first.seq > stood + 1 or last.seq <= stood:
        return None
    return cursor_after(last)


def jsonl_lines(path: Path) -> Iterator[tuple[str, object]]:
    try:
        # utf-8-sig: a byte-order mark (a Windows editor's save) is dropped, as for hash files.
        with path.open("r", encoding="utf-8-sig") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    doc = json.loads(line)
                except ValueError as exc:
                    raise InvalidInput(f"{path}:{number}: not a hashdb export line ({exc})") from exc
                yield f"{path}:{number}", doc
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path}: not UTF-8 text") from exc


def _file_pages(lines: FeedLines, taxonomy: Taxonomy, keypoints: bool = True) -> Iterator[list[FeedEntry]]:
    page: list[FeedEntry] = []
    for where, doc in lines():
        page += check_entries([doc], taxonomy, lambda _: where, keypoints)
        if len(page) >= FILE_PAGE:
            yield page
            page = []
    if page:
        yield page


# syncing from a server -----------------------------------------------------------------------


class FeedPages(Protocol):
    """GET /v1/export, as hashdb.partners.client.Client offers it: a page, its cursor, and the
    identity of the server's feed (None from a server before it)."""

    def export_page(self, since: str | None = None, limit: int = 1000,
                    keypoints: bool = False) -> tuple[list[dict[str, Any]], str, str | None]: ...


@dataclass(frozen=True, slots=True)
class PageReport:
    number: int
    changes: int
    outcome: MirrorOutcome
    cursor: str


def sync(service: HashDB, feed: FeedPages, source: Source, actor: Principal, batch: int,
         report: Callable[[PageReport], None], keypoints: bool = False) -> MirrorOutcome:
    """Pull pages from the stored cursor until the source has no more; each page commits with
    the cursor after it, so a sync stopped at any moment resumes exactly where it stopped.
    `keypoints`: ask for image entries' stored keypoints, and store them with the records added
    (a malformed one refuses its page, of which nothing is applied)."""
    if not 1 <= batch <= MAX_EXPORT_PAGE:
        raise InvalidInput(f"batch must be between 1 and {MAX_EXPORT_PAGE}")
    if keypoints and not service.settings.keypoints:
        raise InvalidInput("this database keeps no keypoints (HASHDB_KEYPOINTS=0): sync without --keypoints")
    if keypoints and batch > MAX_KEYPOINT_EXPORT_PAGE:
        raise InvalidInput(f"batch must be between 1 and {MAX_KEYPOINT_EXPORT_PAGE} with keypoints (a page of "
                           "entries with keypoints is about 10 KB an image)")
    cursor = service.store.mirror_cursor(source.key)
    total = MirrorOutcome()
    number = 0
    while True:
        try:
            docs, next_cursor, identity = _fetch(feed, source, cursor, batch, keypoints)
        except InvalidInput:
            if number == 0 and cursor is not None:
                # A replaced database shorter than the one followed refuses the cursor (past the
                # end of its feed): say which happened, if its feed's identity tells.
                _, _, now = _fetch(feed, source, None, 1)
                if now is not None:
                    _check_feed(service, source, now)
            raise
        if number == 0 and identity is not None:
            _check_feed(service, source, identity)
        start = cursor or "the start"
        entries = check_entries(docs, service.taxonomy, lambda n: f"{source.key} page after {start}, entry {n + 1}",
                                keypoints)
        outcome = apply(service, source, entries, next_cursor, actor)
        if number == 0 and identity is not None:
            service.store.set_mirror_feed(source.key, identity)
        total = add(total, outcome)
        number += 1
        report(PageReport(number, len(entries), outcome, next_cursor))
        if len(docs) < batch:
            return total
        if next_cursor == cursor:
            raise InvalidInput(f"{source.key} sent a full page without moving its cursor")
        cursor = next_cursor


def keypoints_note(service: HashDB, source: Source, asked: bool) -> str | None:
    """What a sync or import from `source`, with keypoints (`asked`: asked for, or carried by
    the file) or without, leaves without them that this mirror's history says the user wants,
    or None. Keypoints come only with the records a sync or import adds: asked for now by a
    mirror that took its images without them, the records it holds get none; left out now by
    one that took them before (a scheduled line missing the flag), the records it adds get none,
    and their crops match nothing here. Nothing where the database keeps no keypoints (a sync
    that asks is refused for it, an import notes the file's itself)."""
    if not service.settings.keypoints:
        return None
    held = service.store.mirror_keypoints(source.key)
    if asked and held.images and not held.keypoints:
        return (f"the image records this mirror already holds from {source.key} have no keypoints, and they "
                "come only with the records a sync or import adds: to have keypoints for every record, sync "
                "or import into a new --db")
    if not asked and held.keypoints:
        return (f"this mirror took keypoints from {source.key} before; the records added now get none, so "
                "their crops will not match here: sync with --keypoints (or import an export --keypoints)")
    return None


def _check_feed(service: HashDB, source: Source, identity: str, imported: Path | None = None) -> None:
    """Refuse to go on from a source whose database was replaced, and to hold a feed a second
    time under another source: the same server under two URLs (localhost and 127.0.0.1, an
    address and its DNS name), or an imported export of it beside its sync. A mirror knows a
    source by its URL or name, so it would hold every record twice and count each member's
    support twice. Refused, not continued under the first source: another server could claim
    this identity (it is in every partner's export), and continuing would file its records,
    and its cursor, under the first source. `imported`: the export file being imported.
    And refuse this database's own feed: a copy of a database (a backup, `cp`) has its identity,
    and its own export imported into it would hold every record twice, the retracted
    original's copy matching on."""
    if identity == service.feed_identity():
        what = f"{imported} is an export" if imported is not None else f"{source.key} serves the feed"
        raise InvalidInput(f"{what} of this database itself (or of a copy of it, which keeps its identity): "
                           "its records are here already, and a second copy of each would outlive a retraction")
    followed = service.store.mirror_feed(source.key)
    if followed is not None and followed != identity:
        # Its cursor and record ids are those of the feed this mirror followed: applied to
        # another database's feed, they would skip its first changes, or take its records for
        # updates of the first database's, and file both databases' records under one source.
        if imported is not None:
            raise InvalidInput(f"{imported} is an export of another database than the one this mirror holds as "
                               f"{source.key}: import it with a --source of its own")
        raise InvalidInput(f"{source.key} now serves another database's feed than the one this mirror follows "
                           "there (was the server's database replaced?): continuing from this mirror's cursor "
                           "would skip records and mix two databases; mirror it into a new database "
                           "(another --db)")
    known = service.store.mirror_source_of_feed(identity)
    if known is None or known == source.key:
        return
    if imported is not None:
        raise InvalidInput(f"{imported} is an export of the feed this mirror already holds as {known}: import it "
                           f"with --source {known} (under two sources, every record would be held twice)")
    if "://" not in known:
        raise InvalidInput(f"this mirror already holds {source.key}'s feed from an imported export (source "
                           f"{known}), which a sync would hold a second time: sync into a new database, or "
                           f"import exports with --source {source.key} so that a sync continues them")
    raise InvalidInput(f"{source.key} serves the feed this mirror already follows as {known}: sync from "
                       f"{known} (under two URLs, the same server's records would be held twice)")


_FEED_IDENTITY = re.compile(r"[0-9A-Za-z_-]{1,64}")


def _fetch(feed: FeedPages, source: Source, cursor: str | None, batch: int,
           keypoints: bool = False) -> tuple[list[Any], str, str | None]:
    try:
        docs, next_cursor, identity = feed.export_page(cursor, batch, keypoints)
    except NotShared as exc:
        raise NotShared(f"{source.key} refused the export (HTTP 403: {exc.message}); sync without --keypoints, "
                        "or ask its operator to share them") from exc
    except InvalidInput as exc:
        if keypoints and "'keypoints'" in exc.message:  # a server from before keypoints knows no such parameter
            raise InvalidInput(f"{source.key} does not offer keypoints in its feed ({exc.message}): a server "
                               "from before them; sync without --keypoints") from exc
        raise
    except (Forbidden, Unauthorized) as exc:
        status = 403 if isinstance(exc, Forbidden) else 401
        raise type(exc)(f"{source.key} refused the export (HTTP {status}: {exc.message}); "
                        "hashdb sync needs a partner or admin key") from exc
    except (KeyError, TypeError) as exc:
        raise InvalidInput(f"{source.key}: the answer to GET /v1/export is not a change feed") from exc
    if not isinstance(docs, list) or not isinstance(next_cursor, str):
        raise InvalidInput(f"{source.key}: the answer to GET /v1/export is not a change feed")
    # Kept in the mirror: a short token (ours is 32 hex digits), not whatever a server sends.
    if identity is not None and not _FEED_IDENTITY.fullmatch(identity):
        identity = None
    return docs, next_cursor, identity


def follow(service: HashDB, feed: FeedPages, source: Source, actor: Principal, batch: int, interval: float,
           report: Callable[[PageReport], None], trouble: Callable[[HashDBError], None],
           sleep: Callable[[float], None] = time.sleep, keypoints: bool = False) -> None:
    """sync() every `interval` seconds until interrupted; a server that cannot be reached (or
    rate-limits us) is tried again next time, any other error stops the mirror."""
    from hashdb.partners.client import ServerError

    while True:
        try:
            done = sync(service, feed, source, actor, batch, report, keypoints)
            if done.added or done.changed or done.retracted:
                refresh_index(service)
        except (ServerError, RateLimited) as exc:
            trouble(exc)
        sleep(interval)


def refresh_index(service: HashDB) -> None:
    """Bring the mirror's index snapshot up to date, so the next lookup starts at once."""
    if service.indexes.ready:
        service.indexes.catch_up()
    else:
        service.load_index()  # the snapshot and the changes after it, or a rebuild
    service.indexes.save()
