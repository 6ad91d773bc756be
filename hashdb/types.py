"""Frozen domain values shared by every layer. No I/O, no numpy."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class HashValue:
    """One hash of one signal, in canonical form (lowercase hex)."""

    signal: str
    hex: str
    quality: int | None = None

    def __str__(self) -> str:
        return f"{self.signal}:{self.hex}"


@dataclass(frozen=True, slots=True)
class FrameHash:
    """The PDQ of one sampled video frame."""

    frame_number: int
    timestamp: float
    hash: HashValue


@dataclass(frozen=True, slots=True)
class DerivedHash:
    """A PDQ of part of an image: `via` names which part (see hashdb/hashing/derived.py).

    Stored with the record of the whole image's PDQ (same id, labels and status), matched
    alongside it, and never a record of its own. `share` is the part's area over the whole
    image's (0 to 1; None when unknown, e.g. a turned copy or a row stored before shares
    were kept): see service/matching.py, _same_share.

    `part` marks a lookup's region that is one of comparable blocks the detectors split the
    picture into (derived.PART_SPLIT): set where the query is hashed, never stored or sent,
    and no part of the value (equality ignores it).

    `colours` is the region's colour layout as hashed (hashing/colour.py: the mean colour of
    each cell of a 3 x 3 split, "rrggbb" each; None when unknown: a row stored before layouts
    were kept, an older client). PDQ reads brightness only; service/matching.py compares the
    layouts of two derived hashes that match (see COLOUR_GAP there)."""

    via: str
    hash: HashValue
    share: float | None = None
    colours: str | None = None
    part: bool = field(default=False, compare=False)


@dataclass(frozen=True, slots=True)
class TmkHash:
    """A video's TMK+PDQF hash as a record keeps it: the exact bytes of its `.tmk` file, and its
    pure-average feature at length 1 (little-endian float32: the vector TMK's first level
    compares), both from hashdb/hashing/tmk.py."""

    features: bytes
    average: bytes


@dataclass(frozen=True, slots=True)
class MediaHashes:
    """Everything `hashdb hash` computes for one file; the media itself is never kept."""

    path: str
    media_type: str  # "image" | "video"
    hashes: tuple[HashValue, ...]
    # Extra PDQs queried or stored as variants of the same item: images with real
    # transparency flattened onto white and onto black (see PRODUCT.md, "Transparency").
    variants: tuple[HashValue, ...] = ()
    # PDQs of the 7 other rotations/flips, all from one filter of the image (a few bits at
    # most from filtering each turned copy; PdqSignal.dihedral_one_filter_array): computed
    # for lookups only, never stored.
    dihedral: tuple[HashValue, ...] = ()
    frames: tuple[FrameHash, ...] = ()
    # PDQs of the content region (borders, bands, UI chrome removed): stored and queried.
    derived: tuple[DerivedHash, ...] = ()
    # A video's TMK+PDQF hash: the exact bytes of its `.tmk` file (see hashing/tmk.py).
    tmk: bytes | None = None
    # An image's stored keypoints (hashing/keypoints.py's stored format): computed when hashing
    # to store, never for a lookup; stored with the file's PDQ record, exported only on request
    # where the operator shares them (Settings.share_keypoints).
    keypoints: bytes | None = None
    # A lookup's keypoints and grey pixels (a hashing.keypoints.Probe; typed object because
    # types.py imports no hashing): computed for lookups only, and held in memory only, never
    # stored, printed or sent. No part of the value (equality ignores it).
    probe: object | None = field(default=None, compare=False)
    # Signals asked for by name that this file has none of, and why (a flat video's TMK):
    # the other hashes are still the answer, and the caller is told what is missing.
    notes: tuple[str, ...] = ()

    def get(self, signal: str) -> HashValue | None:
        for value in self.hashes:
            if value.signal == signal:
                return value
        return None


@dataclass(frozen=True, slots=True)
class Organisation:
    id: int
    name: str


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: the organisation, its role, and the key used (None for local CLI)."""

    org_id: int
    org_name: str
    role: str  # consumer | contributor | partner | admin
    key_id: int | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True, slots=True)
class HashRecord:
    """A stored hash and what the database knows about it."""

    id: int
    signal: str
    value: str
    quality: int | None
    media_type: str
    labels: tuple[str, ...]
    org_id: int
    status: str  # active | disputed | quarantined | retracted
    created_at: str
    incident: str | None = None
    reference: str | None = None
    removed_at: str | None = None
    video_id: int | None = None
    frame_timestamp: float | None = None
    support: int = 1
    agree: int = 0
    disagree: int = 0
    false_positive: int = 0


@dataclass(frozen=True, slots=True)
class VideoMatch:
    query_pct: float
    stored_pct: float
    # Which rule matched (vpdq_rule.VpdqRule.which): "vpdq" (most of the query is known) or
    # "contained" (the stored video found whole inside a longer query); None: not decided.
    rule: str | None = None


@dataclass(frozen=True, slots=True)
class Match:
    """One stored record that matched a query; never carries the stored hash value."""

    id: int
    signal: str
    distance: int
    labels: tuple[str, ...]
    status: str
    support: int
    agree: int
    disagree: int
    video: VideoMatch | None = None
    # From a mirror: the source it came from and the record's id there (feedback goes there).
    source: str | None = None
    source_id: int | None = None
    # Which derived hash matched (DerivedHash.via), None when whole image matched whole image.
    via: str | None = None
    # A similarity (higher is closer, 1 at most) for signals scored that way (tmk: the level-2
    # kernel score); `distance` means nothing then and is 0.
    score: float | None = None
    # Members' reports that the record is not TVEC at all (agree/disagree are about its labels).
    false_positive: int = 0


@dataclass(frozen=True, slots=True)
class LookupResult:
    input: str
    matched: bool
    matches: tuple[Match, ...] = ()
    flags: tuple[str, ...] = field(default=())


STATUSES = ("active", "disputed", "quarantined", "retracted")
ROLES = ("consumer", "contributor", "partner", "admin")
VERDICTS = ("agree", "disagree", "false_positive")


@dataclass(frozen=True, slots=True)
class NewRecord:
    """One hash to store. For a video, `hash` is the item digest and `frames` its PDQs."""

    hash: HashValue
    media_type: str
    labels: tuple[str, ...]
    incident: str | None = None
    reference: str | None = None
    removed_at: str | None = None
    frames: tuple[FrameHash, ...] = ()
    status: str = "active"
    derived: tuple[DerivedHash, ...] = ()
    # A tmk record's hash; `hash` is then the sha256 of its `.tmk` file (the record's identity).
    tmk: TmkHash | None = None
    # An image PDQ record's stored keypoints (hashing/keypoints.py), kept beside it (a mirror's:
    # as its source's feed carried them).
    keypoints: bytes | None = None


@dataclass(frozen=True, slots=True)
class SubmitOutcome:
    id: int
    status: str
    duplicate: bool
    # Other organisations' records of the same hash on which the submitter's vote was withdrawn
    # as this record became live (its own record now counts for it in their support).
    withdrawn: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: int
    org_id: int
    org_name: str
    role: str
    prefix: str
    secret_hash: str
    created_at: str
    revoked_at: str | None = None


@dataclass(frozen=True, slots=True)
class ChangeDetails:
    """What a change-log row keeps of its record as the change left it, besides its status and
    labels: what the record's organisation may give anew by sharing a retracted hash again."""

    incident: str | None
    quality: int | None
    media_type: str


@dataclass(frozen=True, slots=True)
class Change:
    """One row of the append-only change log; `seq` is strictly increasing."""

    seq: int
    kind: str  # add | labels | status | retract
    record_id: int
    signal: str
    at: str
    status: str
    labels: tuple[str, ...]
    details: ChangeDetails | None = None  # None: logged before the log kept them (migration m022)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: str
    org_id: int | None
    key_id: int | None
    action: str
    target: str
    detail: str
    prev_hash: str
    entry_hash: str


@dataclass(frozen=True, slots=True)
class Query:
    """One thing to look up: `input` is echoed back exactly as the caller gave it."""

    input: str
    hashes: tuple[HashValue, ...] = ()
    frames: tuple[FrameHash, ...] = ()
    derived: tuple[DerivedHash, ...] = ()
    tmk: bytes | None = None
    # The looked-up image's keypoints and grey pixels (a hashing.keypoints.Probe, typed object:
    # types.py imports no hashing), when it was hashed here; held in memory only, never sent.
    probe: object | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class PdqBatch:
    """Whole-image PDQ lookups kept in columns: the common batch (a list of PDQ hashes), which
    HashDB.lookup_pdqs answers as lookup() answers one Query per hash, without building them.
    Item n is Query(inputs[n], (HashValue("pdq", hexes[n], qualities[n]),))."""

    inputs: tuple[str, ...]
    hexes: tuple[str, ...]  # canonical: 64 lowercase hex digits
    qualities: tuple[int | None, ...]

    def __len__(self) -> int:
        return len(self.hexes)


@dataclass(frozen=True, slots=True)
class Submission:
    """One input to share: each hash becomes a record; frames become one video record."""

    input: str
    labels: tuple[str, ...]
    hashes: tuple[HashValue, ...] = ()
    frames: tuple[FrameHash, ...] = ()
    media_type: str = "image"
    incident: str | None = None
    reference: str | None = None
    removed_at: str | None = None
    # Stored with the submission's PDQ record.
    derived: tuple[DerivedHash, ...] = ()
    # A video's `.tmk` bytes: a tmk record of its own.
    tmk: bytes | None = None
    # An image's stored keypoints (hashing/keypoints.py): stored with its PDQ record, as derived.
    keypoints: bytes | None = None


@dataclass(frozen=True, slots=True)
class SubmitResult:
    input: str
    ids: tuple[int, ...]
    status: str
    duplicate: bool
    skipped: tuple[str, ...] = ()
    # Ids of this input's hashes that were already shared (kept as they were), and why.
    duplicate_ids: tuple[int, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Votes:
    """Members' votes on a record, as the feed carries them to partners' mirrors."""

    agree: int = 0
    disagree: int = 0
    false_positive: int = 0


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One change as a partner sees it in the export feed (hash values included)."""

    seq: int
    kind: str
    id: int
    signal: str
    hash: str
    quality: int | None
    media_type: str
    labels: tuple[str, ...]
    status: str
    incident: str | None
    created_at: str
    at: str
    frames: tuple[FrameHash, ...] = ()
    derived: tuple[DerivedHash, ...] = ()
    tmk: TmkHash | None = None
    # The record's votes when the feed was read; None from a feed written before it said them.
    votes: Votes | None = None
    # An image PDQ record's stored keypoints (hashing/keypoints.py), only in a feed asked for
    # them (`keypoints=true`) from a database that shares them (Settings.share_keypoints).
    keypoints: bytes | None = None


FEED_KINDS = ("add", "labels", "status", "retract")


@dataclass(frozen=True, slots=True)
class MirrorOutcome:
    """What applying feed entries to a local mirror did, in records: added, changed (labels or
    status), retracted, and left as they were (already applied, or retracted before the
    mirror ever held them)."""

    added: int = 0
    changed: int = 0
    retracted: int = 0
    unchanged: int = 0


@dataclass(frozen=True, slots=True)
class MirrorKeypoints:
    """What a mirror holds from one source, as a sync's keypoints need to know: a live image
    PDQ record, and any record with keypoints."""

    images: bool
    keypoints: bool


@dataclass(frozen=True, slots=True)
class SafelistEntry:
    """A benign hash on the safelist."""

    id: int
    signal: str
    value: str
    note: str
    created_at: str


QUARANTINE_RULES = ("safelist", "spike", "manual")


@dataclass(frozen=True, slots=True)
class Quarantine:
    """A record held out of members' lookups until an admin releases or confirms it."""

    record: HashRecord
    rule: str  # safelist | spike | manual
    reason: str
    at: str  # "" when the reason row was never written (see HashDB.submit)


@dataclass(frozen=True, slots=True)
class Incident:
    """A crisis (e.g. a live-streamed attack): submissions may be tagged with an open one."""

    id: int
    name: str
    description: str
    status: str  # open | closed
    opened_at: str
    closed_at: str | None = None


@dataclass(frozen=True, slots=True)
class Webhook:
    """Where an organisation wants new incident hashes POSTed. `salt` derives the signing
    secret under the server secret; the secret itself is never stored."""

    id: int
    org_id: int
    org_name: str
    url: str
    salt: str
    created_at: str
    disabled_at: str | None = None
    # Whether its organisation holds a live partner or admin key: without one it is sent
    # nothing (a webhook carries hash values), though it stays registered.
    receives: bool = True


@dataclass(frozen=True, slots=True)
class Subscriber:
    """A webhook claimed for sending: where to, and how many attempts in a row have failed
    (what its backoff as a whole is measured by)."""

    webhook_id: int
    url: str
    salt: str
    failures: int


@dataclass(frozen=True, slots=True)
class Delivery:
    """One outbox row due for sending to a claimed subscriber."""

    id: int
    webhook_id: int
    payload: str
    attempts: int
    # The record's status and labels now: a record retracted or held since it was queued is
    # not sent, and one relabelled is sent with its labels of now.
    record_status: str = "active"
    record_labels: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class DeliveryAttempt:
    delivery_id: int
    webhook_id: int
    record_id: int
    at: str
    status_code: int | None
    error: str
    duration_ms: int
    attempt_id: int = 0  # the log's own order: `webhook log --after` reads on from it


@dataclass(frozen=True, slots=True)
class IndexStatus:
    """One process's view of its indexes, for metrics and readiness."""

    ready: bool
    sizes: dict[str, int]  # entries per signal (empty until ready)
    behind: int  # change-log rows committed but not yet applied to this process's index


@dataclass(frozen=True, slots=True)
class RecordQuery:
    """What the console's records page asks for: filters, and a keyset cursor (ids below
    `before`, newest first). `org_id` scopes the search; the service sets it, never the caller."""

    status: str | None = None
    signal: str | None = None
    value: str | None = None
    label: str | None = None
    incident: str | None = None
    org_id: int | None = None
    before: int | None = None
    # Only ids >= this are read: a filter no index serves (a label) reads a bounded window.
    floor: int = 0
    limit: int = 50


@dataclass(frozen=True, slots=True)
class Vote:
    org_name: str
    verdict: str
    note: str
    at: str
    # When an admin's ruling that the record stands overruled it (None: it stands).
    overruled_at: str | None = None


@dataclass(frozen=True, slots=True)
class HistoryEvent:
    """One line of a record's history: its addition (change log) or an audit entry about it."""

    at: str
    action: str
    org_name: str
    detail: str
