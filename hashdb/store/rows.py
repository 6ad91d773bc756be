"""Shared between stores: turning rows into domain types, timestamps, the audit hash chain."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from hashdb.types import HashRecord, NewRecord, SubmitOutcome

GENESIS_HASH = "0" * 64


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
        labels=tuple(json.loads(row["labels"])),
        org_id=int(row["org_id"]),
        status=row["status"],
        created_at=str(row["created_at"]),
        incident=row["incident"],
        reference=row["reference"],
        removed_at=row["removed_at"],
        support=int(row.get("support") or 1),
        agree=int(row.get("agree") or 0),
        disagree=int(row.get("disagree") or 0),
        false_positive=int(row.get("false_positive") or 0),
    )


def record_values(record: NewRecord, org_id: int, at: str) -> dict[str, Any]:
    return {
        "signal": record.hash.signal,
        "value": record.hash.hex,
        "quality": record.hash.quality,
        "media_type": record.media_type,
        "labels": json.dumps(list(record.labels)),
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


# Support and votes are computed, not stored, so they can never drift from their sources.
RECORD_COLUMNS = """
    r.*,
    (SELECT COUNT(DISTINCT s.org_id) FROM records s
       WHERE s.signal = r.signal AND s.value = r.value AND s.status != 'retracted') AS support,
    (SELECT COUNT(*) FROM feedback f WHERE f.record_id = r.id AND f.verdict = 'agree') AS agree,
    (SELECT COUNT(*) FROM feedback f WHERE f.record_id = r.id AND f.verdict = 'disagree') AS disagree,
    (SELECT COUNT(*) FROM feedback f WHERE f.record_id = r.id AND f.verdict = 'false_positive')
       AS false_positive
"""
