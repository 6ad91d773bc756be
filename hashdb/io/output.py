"""Domain values -> the JSON shapes of PRODUCT.md. The CLI's --json and the HTTP API share these,
so the same question gets the same answer from either."""

from __future__ import annotations

from typing import Any

from hashdb.hashing import keypoints_text, tmk
from hashdb.hashing.derived import derived_json
from hashdb.trust import policy
from hashdb.types import FeedEntry, HashRecord, Incident, LookupResult, Match, MediaHashes, SubmitResult


def hashes_json(media: MediaHashes) -> dict[str, Any]:
    out: dict[str, Any] = {"path": media.path, "media_type": media.media_type}
    for value in media.hashes:
        if value.signal == "pdq":
            out["pdq"] = {"hash": value.hex, "quality": value.quality}
        else:
            out[value.signal] = value.hex
    if media.variants:
        out["pdq_variants"] = [{"hash": v.hex, "quality": v.quality} for v in media.variants]
    if media.dihedral:  # hashed for a lookup (hash --for-lookup): the other 7 orientations
        out["pdq_dihedral"] = [{"hash": v.hex, "quality": v.quality} for v in media.dihedral]
    if media.derived:
        out["derived"] = derived_json(media.derived)
    if media.tmk is not None:
        out["tmk"] = tmk.encode_text(media.tmk)
    # The stored side only (hashing to store): a lookup's probe holds the picture's pixels and
    # is never printed.
    if media.keypoints is not None:
        out["keypoints"] = keypoints_text.encode_text(media.keypoints)
    if media.media_type == "video" and media.frames:  # none when only digests were asked for
        out["frames"] = [
            {"t": round(f.timestamp, 3), "pdq": f.hash.hex, "quality": f.hash.quality} for f in media.frames
        ]
    if media.notes:
        out["notes"] = list(media.notes)
    return out


def match_json(match: Match) -> dict[str, Any]:
    out: dict[str, Any] = {"id": match.id, "signal": match.signal}
    # A scored signal (tmk) says how similar, higher is closer; the others how far, in bits.
    if match.score is not None:
        out["score"] = round(match.score, 4)
    else:
        out["distance"] = match.distance
    out.update({
        "labels": list(match.labels),
        "agree": match.agree,
        "disagree": match.disagree,
        "false_positive": match.false_positive,
        "support": match.support,
        "status": match.status,
    })
    if match.source is not None:
        out["source"] = {"name": match.source, "id": match.source_id}
    if match.via is not None:
        out["via"] = match.via
    if match.video is not None:
        out["video"] = {"query_pct": round(match.video.query_pct, 1), "stored_pct": round(match.video.stored_pct, 1)}
        if match.video.rule is not None:
            out["video"]["rule"] = match.video.rule
    return out


def lookup_json(result: LookupResult) -> dict[str, Any]:
    out: dict[str, Any] = {
        "input": result.input,
        "matched": result.matched,
        "matches": [match_json(m) for m in result.matches],
    }
    if result.flags:
        out["flags"] = list(result.flags)
    return out


def submit_json(result: SubmitResult) -> dict[str, Any]:
    out: dict[str, Any] = {
        "input": result.input,
        "ids": list(result.ids),
        "status": result.status,
        "duplicate": result.duplicate,
    }
    if result.skipped:
        out["skipped"] = list(result.skipped)
    if result.duplicate_ids:
        out["duplicate_ids"] = list(result.duplicate_ids)
    if result.notes:
        out["notes"] = list(result.notes)
    return out


def record_json(record: HashRecord) -> dict[str, Any]:
    """A record as its owner or an admin sees it (never sent in answer to a lookup)."""
    return {
        "id": record.id,
        "signal": record.signal,
        "status": record.status,
        "labels": list(record.labels),
        "agree": record.agree,
        "disagree": record.disagree,
        "false_positive": record.false_positive,
        "support": record.support,
        "precision": round(policy.precision_estimate(record), 4),
    }


def feed_json(entry: FeedEntry) -> dict[str, Any]:
    out: dict[str, Any] = {
        "seq": entry.seq,
        "kind": entry.kind,
        "id": entry.id,
        "signal": entry.signal,
        "hash": entry.hash,
        "quality": entry.quality,
        "media_type": entry.media_type,
        "labels": list(entry.labels),
        "status": entry.status,
        "incident": entry.incident,
        "created_at": entry.created_at,
        "at": entry.at,
    }
    if entry.votes is not None:
        out.update(agree=entry.votes.agree, disagree=entry.votes.disagree,
                   false_positive=entry.votes.false_positive)
    if entry.frames:
        out["frames"] = [{"pdq": f.hash.hex, "quality": f.hash.quality, "t": round(f.timestamp, 3)}
                         for f in entry.frames]
    if entry.derived:
        out["derived"] = derived_json(entry.derived)
    if entry.tmk is not None:
        out["tmk"] = tmk.encode_text(entry.tmk.features)
    if entry.keypoints is not None:
        out["keypoints"] = keypoints_text.encode_text(entry.keypoints)
    return out


def incident_json(incident: Incident) -> dict[str, Any]:
    return {"id": incident.id, "name": incident.name, "description": incident.description,
            "status": incident.status, "opened_at": incident.opened_at, "closed_at": incident.closed_at}
