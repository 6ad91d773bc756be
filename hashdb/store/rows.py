"""Shared between stores: turning rows into domain types, timestamps, the audit hash chain."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

from hashdb.errors import InvalidInput
from hashdb.types import STATUSES, ApiKey, AuditEntry, Change, ChangeDetails, HashRecord, NewRecord, SubmitOutcome

GENESIS_HASH = "0" * 64


def change_mark(at: str, record_id: int) -> str:
    """What tells one change from another at the same seq (store.change_mark): its time to the
    microsecond and its record. An export's entry carries both (`at`, `id`)."""
    return f"{at}/{record_id}"


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def audit_hash(prev_hash: str, at: str, org_id: int | None, key_id: int | None,
               action: str, target: str, detail: str) -> str:
    """Each audit entry commits to the previous one, so an edited row breaks the chain."""
    body = json.dumps([prev_hash, at, org_id, key_id, action, target, detail], separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


def record_from_row(row: Mapping[str, Any]) -> HashRecord:
    return HashRecord(
        id=int(row["id"]),
        signal=row["signal"],
        value=row["value"],
        quality=row["quality"],
        media_type=row["media_type"],
        labels=labels_from_json(row["labels"]),
        org_id=int(row["org_id"]),
        status=row["status"],
        created_at=str(row["created_at"]),
        incident=row["incident"],
        reference=row["reference"],
        removed_at=row["removed_at"],
        # A retracted record nobody else holds has support 0: `or 1` would claim a backer.
        support=int(row["support"]) if row.get("support") is not None else 1,
        agree=int(row.get("agree") or 0),
        disagree=int(row.get("disagree") or 0),
        false_positive=int(row.get("false_positive") or 0),
    )


@lru_cache(maxsize=1024)
def labels_from_json(text: str) -> tuple[str, ...]:
    # Cached: a lookup's matched records repeat a handful of label sets, and parsing one was a
    # fifth of building a record from its row (BENCHMARKS.md, "API").
    return tuple(json.loads(text))


@lru_cache(maxsize=1024)
def labels_json(labels: tuple[str, ...]) -> str:
    # Cached: a bulk import repeats a handful of label sets a million times.
    return json.dumps(list(labels))


def record_values(record: NewRecord, org_id: int, at: str) -> dict[str, Any]:
    return {
        "signal": record.hash.signal,
        "value": record.hash.hex,
        "quality": record.hash.quality,
        "media_type": record.media_type,
        "labels": labels_json(record.labels),
        "incident": record.incident,
        "reference": record.reference,
        "removed_at": record.removed_at,
        "org_id": org_id,
        "status": record.status,
        "created_at": at,
    }


def outcomes_to_json(outcomes: list[SubmitOutcome]) -> str:
    return json.dumps([[o.id, o.status, o.duplicate] for o in outcomes])


def outcomes_from_json(text: str) -> list[SubmitOutcome]:
    return [SubmitOutcome(int(i), str(s), bool(d)) for i, s, d in json.loads(text)]


# Support and votes are computed, not stored, so they can never drift from their sources. A
# mirror's record adds the votes its source reports (mirror_records) to any cast here.
# Support counts the organisations holding a live copy (active or disputed): a copy held in
# quarantine (by the safelist, or an admin) is one the database itself judged suspect, and
# counting it told members "2 organisations shared this hash" of a hash one of them had
# shared only into the hold. A record's own organisation counts for it unless it is retracted.
def vote_counts(standing: bool = False) -> str:
    """SQL columns agree, disagree and false_positive of record `r`: its members' votes here and
    those its mirror's source reports. With `standing`, only the votes here that no ruling
    overruled (store.standing_votes, what decides whether it is disputed)."""
    only = " AND f.overruled_at IS NULL" if standing else ""
    return ",\n".join(
        f"(SELECT COUNT(*) FROM feedback f WHERE f.record_id = r.id AND f.verdict = '{verdict}'{only})"
        f" + COALESCE((SELECT m.{verdict} FROM mirror_records m WHERE m.record_id = r.id), 0) AS {verdict}"
        for verdict in ("agree", "disagree", "false_positive"))


RECORD_COLUMNS = f"""
    r.*,
    (SELECT COUNT(DISTINCT s.org_id) FROM records s
       WHERE s.signal = r.signal AND s.value = r.value
         AND (s.status IN ('active', 'disputed') OR (s.id = r.id AND s.status != 'retracted'))) AS support,
    {vote_counts()}
"""


def api_key_from_row(row: Mapping[str, Any]) -> ApiKey:
    return ApiKey(int(row["id"]), int(row["org_id"]), row["org_name"], row["role"], row["prefix"],
                  row["secret_hash"], str(row["created_at"]), row["revoked_at"])


def change_from_row(row: Mapping[str, Any]) -> Change:
    # Every change logged since m022 has its record's media type (never NULL in records).
    details = None if row["media_type"] is None else ChangeDetails(
        row["incident"], None if row["quality"] is None else int(row["quality"]), str(row["media_type"]))
    return Change(int(row["seq"]), row["kind"], int(row["record_id"]), row["signal"], str(row["at"]),
                  row["status"], tuple(json.loads(row["labels"])), details)


def audit_from_row(row: Mapping[str, Any]) -> AuditEntry:
    return AuditEntry(int(row["id"]), str(row["at"]), row["org_id"], row["key_id"], row["action"],
                      row["target"], row["detail"], row["prev_hash"], row["entry_hash"])


def check_choice(what: str, value: str, allowed: tuple[str, ...]) -> None:
    """The schema's CHECK constraints would reject it too, but as a driver error, not a typed one."""
    if value not in allowed:
        raise InvalidInput(f"unknown {what} {value!r}: expected one of {', '.join(allowed)}")


def check_text(what: str, value: str | None) -> None:
    # PostgreSQL's TEXT cannot hold NUL and SQLite's can: refuse it in both, so a record one
    # store accepts the other cannot reject.
    if value is not None and "\x00" in value:
        raise InvalidInput(f"{what} must not contain a NUL character")


def check_record(record: NewRecord) -> None:
    check_choice("status", record.status, STATUSES)
    for what, value in (("signal", record.hash.signal), ("hash", record.hash.hex),
                        ("media_type", record.media_type), ("incident", record.incident),
                        ("reference", record.reference), ("removed_at", record.removed_at)):
        check_text(what, value)
    for frame in record.frames:
        check_text("frame hash", frame.hash.hex)
    if (record.tmk is not None) != (record.hash.signal == "tmk"):
        raise InvalidInput("a tmk record, and only a tmk record, carries TMK features")
    if record.keypoints is not None and (record.hash.signal != "pdq" or record.media_type != "image"):
        raise InvalidInput("only an image's PDQ record carries keypoints")
    for derived in record.derived:
        check_text("derived via", derived.via)
        check_text("derived hash", derived.hash.hex)
