"""The rules of the shared list, as pure functions: who may do what, what may be shared,
what a caller may see, how votes change a record's status. No I/O."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence

from hashdb.config import Settings
from hashdb.errors import Forbidden, HashDBError, InvalidHash, InvalidInput, LowQuality
from hashdb.types import ROLES, VERDICTS, DerivedHash, FrameHash, HashRecord, HashValue, Principal, Query, Votes

MAX_TEXT = 256
MAX_NOTE = 2_000

# Which roles may do what. Consumers only look up; partners also take exports.
PERMISSIONS: dict[str, frozenset[str]] = {
    "lookup": frozenset({"consumer", "contributor", "partner", "admin"}),
    "feedback": frozenset({"consumer", "contributor", "partner", "admin"}),
    "submit": frozenset({"contributor", "admin"}),
    "export": frozenset({"partner", "admin"}),
    "admin": frozenset({"admin"}),
}

# A real perceptual hash thresholds at a median (PDQ, pHash) or compares neighbouring pixels
# (dHash), so about half its bits are set. Far from half means a flat or synthetic image: such
# a hash matches floods of unrelated uploads (an all-zero pHash matches every flat image). One
# rule for every perceptual signal: between 1/8 and 7/8 of the bits set.
PERCEPTUAL_BITS = {"pdq": 256, "phash": 64, "dhash": 64}


def ones_range(signal: str) -> tuple[int, int] | None:
    bits = PERCEPTUAL_BITS.get(signal)
    return None if bits is None else (bits // 8, bits - bits // 8)


def degenerate(value: HashValue) -> bool:
    """Whether a perceptual hash has too few or too many bits set (see PERCEPTUAL_BITS)."""
    bounds = ones_range(value.signal)
    return bounds is not None and not bounds[0] <= int(value.hex, 16).bit_count() <= bounds[1]


# What each permission lets a caller do, for refusals that name no more precise action.
DOING = {"lookup": "look up hashes", "feedback": "vote on records", "submit": "submit hashes",
         "export": "read the change feed", "admin": "administer this database"}


def require(actor: Principal, permission: str, doing: str | None = None) -> None:
    """Refuse unless the actor's role has `permission`; the message names the caller's role,
    what it tried (`doing`, e.g. "open an incident") and the roles that may."""
    allowed = PERMISSIONS[permission]
    if actor.role not in allowed:
        roles = [r for r in ROLES if r in allowed]
        raise Forbidden(f"the {actor.role} role may not {doing or DOING[permission]} "
                        f"(role{'s' if len(roles) > 1 else ''}: {', '.join(roles)})")


def check_text(field: str, value: str | None, limit: int = MAX_TEXT) -> None:
    """Free text is stored and exported: refuse what would corrupt a CSV row or a log line."""
    if value is None:
        return
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string")
    if len(value) > limit:
        raise InvalidInput(f"{field} is {len(value)} characters; the limit is {limit}")
    if any(ch == "\x00" or 0xD800 <= ord(ch) <= 0xDFFF for ch in value):
        raise InvalidInput(f"{field} contains a NUL character or a lone surrogate")


# Digests of zero bytes: an empty file is refused as media, and its digest as a shared hash.
EMPTY_FILE_DIGESTS = {"md5": hashlib.md5(b"").hexdigest(), "sha256": hashlib.sha256(b"").hexdigest()}


_CHARACTER_NAMES = {"\n": "line breaks", "\t": "tabs"}


def check_printable(field: str, value: str | None, limit: int = MAX_TEXT, allowed: str = "") -> None:
    """Free text that is shown on one line (a member's reference id in the console, a CSV
    export, a terminal): check_text, and no control or format characters (an ESC would
    recolour or rewrite what an operator reads) but those `allowed`."""
    check_text(field, value, limit)
    bad = next((ch for ch in value or "" if not ch.isprintable() and ch not in allowed), None)
    if bad is not None:
        but = f"; only {' and '.join(_CHARACTER_NAMES.get(ch, repr(ch)) for ch in allowed)} are allowed" \
            if allowed else ""
        raise InvalidInput(f"{field} contains a control or unprintable character (U+{ord(bad):04X}){but}")


# What multi-line free text may hold besides printable characters: the console's text areas
# send line breaks (as CRLF, which its forms turn into LF) and people paste tabs. Both are
# harmless where the text is shown: HTML folds them into spaces, JSON escapes them, and the
# CLI's text output prints such a value escaped. CR, backspace, BEL, ESC, C1 controls (U+009B
# is a one-character ESC [) and format characters are not: they rewrite what a reader sees.
FREE_TEXT_WHITESPACE = "\n\t"


def check_free_text(field: str, value: str | None, limit: int = MAX_TEXT) -> None:
    """A note, reason or description: check_printable, line breaks and tabs allowed."""
    check_printable(field, value, limit, FREE_TEXT_WHITESPACE)


def check_name(field: str, value: str, limit: int = MAX_TEXT) -> str:
    """A name (incident, organisation), stripped. Names are printed in terminals, logs and
    webhook payloads: no ESC, C1 or other control or format characters, which could rewrite
    what an operator sees."""
    check_printable(field, value, limit)
    name = value.strip()
    if not name:
        raise InvalidInput(f"{field} is empty")
    return name


# A mirror holds each source's records under the organisation `mirror:<host or name>`
# (partners/mirror.py). A member organisation of that name would own them: its key could retract
# or relabel mirrored records, and the next sync would not put them back (the mirror would
# quietly stop matching what its source matches). So members may not take such a name.
MIRROR_ORG_PREFIX = "mirror:"


def check_member_org(value: str) -> None:
    """An organisation name for a key or a local --org: check_name's rule, and not one of the
    names reserved for mirror sources."""
    check_name("organisation name", value, 100)
    if value.strip().lower().startswith(MIRROR_ORG_PREFIX):
        raise InvalidInput(f"organisation names starting {MIRROR_ORG_PREFIX!r} are reserved for the records "
                           f"mirrored from a source (hashdb sync/import); choose another name")


def own_copy(record: HashRecord, actor: Principal, copies: Sequence[HashRecord]) -> HashRecord | None:
    """The caller's organisation's own live record of the same hash, among `copies` (the records
    holding `record`'s signal and value), if it shared it too. Each member's submission of a hash
    is a record of its own (unique per signal, value and organisation) and every such member
    counts in each copy's support; a retracted copy is a judgement withdrawn, so it counts for
    neither."""
    return next((c for c in copies if c.org_id == actor.org_id and c.id != record.id
                 and c.signal == record.signal and c.value == record.value and c.status != "retracted"), None)


def party_to(record: HashRecord, actor: Principal, copies: Sequence[HashRecord] = ()) -> HashRecord | None:
    """The caller's organisation's record of `record`'s hash, if it is a party to it: `record`
    itself when it shared it, or its own live copy (own_copy). A party neither votes on the
    record (check_voter) nor rules on its dispute (check_judge)."""
    return record if record.org_id == actor.org_id else own_copy(record, actor, copies)


def check_voter(record: HashRecord, actor: Principal, copies: Sequence[HashRecord] = ()) -> None:
    """Votes are other members' judgement of a record: its precision estimate and its disputed
    status are read as that. The contributing organisation's own "agree" would raise the one
    and hold off the other, whatever its role or key. An owner that finds its record wrong
    retracts or relabels it. So does an organisation that shared the same hash (`copies`, see
    own_copy): its own record already counts in the support members read, and its "agree" on
    another's copy counted it twice (found in trial)."""
    mine = party_to(record, actor, copies)
    if mine is record:
        raise Forbidden(f"record {record.id} is your organisation's own: votes are other members' judgement "
                        "of it; retract or relabel it instead of voting")
    if mine is not None:
        raise Forbidden(f"your organisation shared this hash too (record {mine.id}): votes are other members' "
                        f"judgement of it, and yours counts in its support; retract or relabel record {mine.id} "
                        "instead of voting")


def check_judge(record: HashRecord, actor: Principal, copies: Sequence[HashRecord] = ()) -> None:
    """A ruling that a disputed record stands sets the other members' votes against it aside: an
    admin key of the organisation that shared it, or that shared the same hash too (`copies`,
    see own_copy), would be overruling the judgement of its own submission (found in trial).
    Another organisation's admin rules, whoever asks (API, console, CLI)."""
    mine = party_to(record, actor, copies)
    if mine is not None:
        which = ("is your organisation's own" if mine is record
                 else f"was shared by your organisation too (record {mine.id})")
        raise Forbidden(f"record {record.id} {which}: another organisation's admin must rule on its dispute, "
                        "not the organisation whose submission the votes judge")


def check_verdict(verdict: object) -> str:
    if verdict not in VERDICTS:
        raise InvalidInput(f"verdict must be one of {', '.join(VERDICTS)}")
    return str(verdict)


def submission_problem(value: HashValue, settings: Settings, need_quality: bool = True) -> str | None:
    """Why this hash may not be shared, or None when it may. A PDQ must say its quality: one
    without it would skip the quality rule (`need_quality=False` only for the safelist, where a
    benign hash is listed, never shared)."""
    if value.signal == "pdq":
        if value.quality is None and need_quality:
            return ("pdq quality is required (0..100, what the hasher reported with the hash); "
                    "for hashes that carry none, say the quality they are known to meet "
                    "(`--pdq-quality N` on the command line, `\"quality\"` in the API)")
        if value.quality is not None and value.quality < settings.pdq_min_quality:
            return f"pdq quality {value.quality} is below {settings.pdq_min_quality}"
    if EMPTY_FILE_DIGESTS.get(value.signal) == value.hex:
        return f"{value.signal} hash of an empty file: it would match every empty upload"
    if degenerate(value):
        low, high = ones_range(value.signal) or (0, 0)
        return (f"{value.signal} hash is degenerate ({int(value.hex, 16).bit_count()} of "
                f"{PERCEPTUAL_BITS[value.signal]} bits set; a real image sets {low} to {high})")
    return None


def usable_derived(derived: Sequence[DerivedHash], settings: Settings) -> tuple[DerivedHash, ...]:
    """Derived hashes worth storing or querying: PDQ, shareable by the same rule as a whole
    image's PDQ, each value once. A low-detail remnant would match unrelated uploads."""
    seen: set[str] = set()
    out: list[DerivedHash] = []
    for d in derived:
        if d.hash.hex not in seen and _derived_problem(d, settings) is None:
            seen.add(d.hash.hex)
            out.append(d)
    return tuple(out)


def derived_notes(derived: Sequence[DerivedHash], settings: Settings) -> list[str]:
    """What a submission says of the derived hashes usable_derived leaves out (repeats aside)."""
    return [f"derived {d.via} hash not shared: {problem}" for d in derived
            if (problem := _derived_problem(d, settings)) is not None]


def _derived_problem(derived: DerivedHash, settings: Settings) -> str | None:
    """Why a derived hash is not kept (usable_derived), or None."""
    if derived.hash.signal != "pdq":
        return "only PDQ derived hashes are kept"
    return submission_problem(derived.hash, settings)


def refusal(value: HashValue, problem: str) -> HashDBError:
    if "quality" in problem:
        return LowQuality(problem)
    return InvalidHash(problem)


def frames_refusal(frames: Sequence[FrameHash], settings: Settings, where: str) -> HashDBError | None:
    """Why a video's frames cannot be shared, or None: each needs its PDQ's quality, and a time
    within the longest video this service hashes itself (a frame at 1e300 s would be stored
    and exported as a 300-digit timestamp)."""
    longest = settings.limits.max_video_seconds
    for frame in frames:
        if frame.hash.quality is None:
            return LowQuality(f"{where}: every video frame's pdq needs its quality (0..100)")
        if not (math.isfinite(frame.timestamp) and 0 <= frame.timestamp <= longest):
            return InvalidInput(f"{where}: video frame {frame.frame_number} is at {frame.timestamp:g} s; frame "
                                f"times run from 0 to {longest:g} s (the longest video hashed here)")
    return None


def good_frames(frames: Sequence[FrameHash], settings: Settings) -> tuple[FrameHash, ...]:
    """vPDQ's rule: drop frames below the quality cut-off, keep each distinct hash once. Frames
    with a degenerate PDQ (too few or too many bits set, as submission_problem refuses for an
    image) are dropped too: a flat frame hashed here has quality 0, but a client could send
    all zeros at quality 100, which was stored and then matched every near-flat video."""
    seen: set[str] = set()
    out: list[FrameHash] = []
    for frame in frames:
        quality = frame.hash.quality
        if (quality is not None and quality < settings.pdq_min_quality) or degenerate(frame.hash):
            continue
        if frame.hash.hex not in seen:
            seen.add(frame.hash.hex)
            out.append(frame)
    return tuple(out)


def degenerate_frames(frames: Sequence[FrameHash], settings: Settings) -> int:
    """How many frames good_frames drops for a degenerate PDQ alone (their quality would pass)."""
    return sum(1 for f in frames if (f.hash.quality is None or f.hash.quality >= settings.pdq_min_quality)
               and degenerate(f.hash))


def thresholds(settings: Settings, requested: Mapping[str, int]) -> dict[str, int]:
    """Per-signal radius: the default, or a tighter one the caller asked for; never looser."""
    out = {"pdq": settings.pdq_threshold, "phash": settings.imagehash_threshold,
           "dhash": settings.imagehash_threshold, "vpdq": settings.pdq_threshold}
    for signal, value in requested.items():
        if signal not in out:
            raise InvalidInput(f"no threshold applies to signal {signal!r}")
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidInput(f"threshold for {signal} must be a non-negative integer")
        ceiling = settings.threshold_ceilings.get(signal, out[signal])
        if value > ceiling:
            raise InvalidInput(f"threshold for {signal} may not exceed {ceiling}")
        out[signal] = value
    return out


def visible(record: HashRecord, actor: Principal) -> bool:
    """Whether the record takes part in what this caller looks up, votes on or relabels."""
    if record.status == "retracted":
        return False
    if record.status == "quarantined":
        return actor.is_admin
    return True


def owns(record: HashRecord, actor: Principal) -> bool:
    """An admin, or the contributing organisation acting with a key that may share. A consumer
    or partner key of the same organisation is told what any member with that role is told:
    such a key sits in an upload pipeline or a mirror, not with the moderators who shared."""
    return actor.is_admin or (record.org_id == actor.org_id and actor.role in PERMISSIONS["submit"])


def readable(record: HashRecord, actor: Principal) -> bool:
    """Whether the caller may read the record at all: its owner whatever its status (the owner
    may retract it while quarantined, and a retraction is answered again, as it stands), a
    partner whatever its status too (the export feed carries every record's status changes,
    with its hash), anyone else while it is visible."""
    return owns(record, actor) or visible(record, actor) or actor.role in PERMISSIONS["export"]


# What a record's reader is told about it, as the API tells the same key: its owner everything;
# a partner what the export feed carries (the hash, its derived hashes, quality, media type,
# incident, when it was shared); any other member what a lookup answers (signal, labels,
# status, support and votes): never the organisation, its reference id, votes' notes or history.
OWNER, FEED, LOOKUP = "owner", "feed", "lookup"


def record_scope(record: HashRecord, actor: Principal) -> str:
    if owns(record, actor):
        return OWNER
    if actor.role in PERMISSIONS["export"]:
        return FEED
    return LOOKUP


def record_actions(record: HashRecord, actor: Principal, copies: Sequence[HashRecord] = ()) -> tuple[str, ...]:
    """What the caller may do to the record, by the rules the service applies to each action:
    vote on what is visible and another organisation's that it did not share too (check_voter,
    `copies` as there); relabel what is visible; retract one's own unless already retracted (also while
    quarantined); an admin quarantines a live record, releases or confirms a quarantined one,
    upholds a disputed one that neither its organisation nor a co-sharer's holds (check_judge)."""
    live = visible(record, actor)
    mine = owns(record, actor)
    actions: list[str] = []
    party = party_to(record, actor, copies) is not None
    if live and actor.role in PERMISSIONS["feedback"] and not party:
        actions.append("feedback")
    if mine and live:
        actions.append("relabel")
    if mine and record.status != "retracted":
        actions.append("retract")
    if actor.is_admin:
        if record.status == "quarantined":
            actions += ["release", "confirm"]
        elif record.status != "retracted":
            actions.append("quarantine")
        if record.status == "disputed" and not party:
            actions.append("uphold")
    return tuple(actions)


LOW_QUALITY = ("low_quality",)


def query_flags(query: Query, settings: Settings) -> tuple[str, ...]:
    """LOW_QUALITY when no PDQ of the query has the quality a shared hash needs. A file's own PDQ
    can be low while a variant of it is not (a 16-bit PNG read as 8-bit by pytx's conversion is
    near white, quality 3; scaled to 8 bits it is the picture, quality 100): a match through
    that variant is no weak evidence, and flagging it sent moderators to check good matches."""
    pdqs = [v for v in query.hashes if v.signal == "pdq"]
    low = bool(pdqs) and all(low_quality(v.quality, settings) for v in pdqs)
    return LOW_QUALITY if low else ()


def low_quality(pdq_quality: int | None, settings: Settings) -> bool:
    return pdq_quality is not None and pdq_quality < settings.pdq_min_quality


def precision_estimate(record: HashRecord) -> float:
    """How often members find this record right: (agree + 1) / (votes + 2), Laplace's rule,
    so one vote cannot swing it to 0 or 1 and a record with no votes reads 0.5."""
    votes = record.agree + record.disagree + record.false_positive
    return (record.agree + 1) / (votes + 2)


def status_after_votes(status: str, standing: Votes, settings: Settings) -> str:
    """Active <-> disputed as the share of disagreeing organisations crosses the setting. Only
    the `standing` votes decide (store.standing_votes): those an admin's ruling that the record
    stands has overruled no longer dispute it, or the ruling would be undone by the next vote
    or release."""
    if status not in ("active", "disputed"):
        return status
    against = standing.disagree + standing.false_positive
    total = against + standing.agree
    disputed = total >= settings.dispute_min_votes and against / total >= settings.dispute_share
    return "disputed" if disputed else "active"
