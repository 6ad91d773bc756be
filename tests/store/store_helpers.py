"""Small builders shared by the store tests."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from hashdb.types import AuditEntry, FrameHash, HashValue, NewRecord, Principal

GENESIS = "0" * 64


def actor(store: object, name: str, role: str = "contributor") -> Principal:
    org = store.ensure_org(name)  # type: ignore[attr-defined]
    return Principal(org.id, org.name, role)


def pdq(n: int) -> str:
    """A distinct, valid 256-bit hex for each n."""
    return f"{n:064x}"


def record(hex_: str, signal: str = "pdq", labels: tuple[str, ...] = ("terrorism",), **kw: object) -> NewRecord:
    quality = kw.pop("quality", 90)
    return NewRecord(HashValue(signal, hex_, quality), kw.pop("media_type", "image"), labels, **kw)  # type: ignore[arg-type]


def video(hex_: str, frame_hexes: Sequence[str]) -> NewRecord:
    frames = tuple(FrameHash(i, i * 1.0, HashValue("pdq", h, 50 + i)) for i, h in enumerate(frame_hexes))
    return NewRecord(HashValue("vpdq", hex_), "video", ("terrorism",), frames=frames)


def expected_entry_hash(entry: AuditEntry) -> str:
    """Written from the documented construction, not by calling the store's helper: SHA-256 of
    the compact JSON array [prev_hash, at, org_id, key_id, action, target, detail]."""
    fields = [entry.prev_hash, entry.at, entry.org_id, entry.key_id, entry.action, entry.target, entry.detail]
    return hashlib.sha256(json.dumps(fields, separators=(",", ":")).encode("utf-8")).hexdigest()


def chain_problems(entries: Sequence[AuditEntry]) -> list[str]:
    problems = []
    prev = GENESIS
    for entry in entries:
        if entry.prev_hash != prev:
            problems.append(f"entry {entry.id}: prev_hash does not link to the entry before")
        if entry.entry_hash != expected_entry_hash(entry):
            problems.append(f"entry {entry.id}: entry_hash does not match its contents")
        prev = entry.entry_hash
    return problems
