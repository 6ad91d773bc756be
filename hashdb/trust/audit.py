"""Checking the audit log's hash chain: pure functions over AuditEntry values, no I/O.

The store writes each entry with `prev_hash` (the previous entry's `entry_hash`) and an
`entry_hash` over its own fields (rows.audit_hash). Editing a row breaks its own hash;
deleting or inserting one breaks the next entry's link. What a chain cannot show on its
own: the newest entries cut off, or the whole tail rewritten with fresh hashes. For that an
operator keeps the head hash somewhere else (`verify` prints it) and checks it with an anchor.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from hashdb.errors import InvalidInput
from hashdb.store.base import HashStore
from hashdb.store.rows import GENESIS_HASH, audit_hash
from hashdb.types import AuditEntry

PAGE = 5_000


@dataclass(frozen=True, slots=True)
class Anchor:
    """An entry id and the entry_hash it had when someone wrote it down outside the database."""

    entry_id: int
    entry_hash: str


@dataclass(frozen=True, slots=True)
class AuditBreak:
    """The first entry at which the chain stops holding, and why."""

    entry_id: int
    action: str
    problem: str


@dataclass(frozen=True, slots=True)
class AuditVerdict:
    checked: int
    head_id: int  # 0 for an empty log
    head_hash: str  # GENESIS_HASH for an empty log
    broken: AuditBreak | None = None

    @property
    def ok(self) -> bool:
        return self.broken is None


def parse_anchor(text: str) -> Anchor:
    """`ID:HASH`, as `hashdb audit verify` prints the head."""
    entry_id, sep, digest = text.strip().partition(":")
    digest = digest.lower()
    if not sep or not entry_id.isascii() or not entry_id.isdigit() or len(digest) != 64 \
            or any(c not in "0123456789abcdef" for c in digest):
        raise InvalidInput(f"an anchor is ID:HASH (an entry id and 64 hex digits), got {text!r}")
    return Anchor(int(entry_id), digest)


def verify_chain(entries: Iterable[AuditEntry], anchors: Sequence[Anchor] = ()) -> AuditVerdict:
    """Walk entries in id order; stop at the first one that does not hold."""
    prev_hash, prev_id = GENESIS_HASH, 0
    checked = 0
    pending = {a.entry_id: a for a in anchors}
    for entry in entries:
        if entry.prev_hash != prev_hash:
            if prev_id == 0:
                problem = "prev_hash is not the genesis hash: the log's first entries are missing"
            elif entry.id != prev_id + 1:
                problem = (f"prev_hash does not match entry {prev_id}'s hash: entries between "
                           f"{prev_id} and {entry.id} were deleted")
            else:
                problem = f"prev_hash does not match entry {prev_id}'s hash: the link was rewritten"
            return AuditVerdict(checked, prev_id, prev_hash, AuditBreak(entry.id, entry.action, problem))
        expected = audit_hash(entry.prev_hash, entry.at, entry.org_id, entry.key_id, entry.action,
                              entry.target, entry.detail)
        if expected != entry.entry_hash:
            return AuditVerdict(checked, prev_id, prev_hash, AuditBreak(
                entry.id, entry.action,
                "its fields do not match its entry_hash: the row was edited after it was written"))
        anchor = pending.pop(entry.id, None)
        if anchor is not None and anchor.entry_hash != entry.entry_hash:
            return AuditVerdict(checked, prev_id, prev_hash, AuditBreak(
                entry.id, entry.action,
                "its entry_hash differs from the anchor: the chain was rewritten from here or earlier"))
        prev_hash, prev_id = entry.entry_hash, entry.id
        checked += 1
    if pending:
        missing = min(pending)
        return AuditVerdict(checked, prev_id, prev_hash, AuditBreak(
            missing, "", f"anchored entry {missing} is no longer in the log: entries were deleted"))
    return AuditVerdict(checked, prev_id, prev_hash)


def all_entries(store: HashStore, page: int = PAGE) -> Iterator[AuditEntry]:
    """Every entry in id order, a page at a time, so a long log is checked in bounded memory."""
    after = 0
    while True:
        entries = store.audit_entries(after, page)
        if not entries:
            return
        yield from entries
        after = entries[-1].id
