"""Trust and safety: the audit log, the safelist, quarantines (by hand and by the spike rule),
and the transparency report."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hashdb.bits import hex_to_codes
from hashdb.errors import Conflict, InvalidInput, NotFound
from hashdb.hashing.derived import MASKED
from hashdb.index.indexset import DERIVED, INDEXED_SIGNALS
from hashdb.index.linear import LinearIndex
from hashdb.service.base import MAX_EXPORT_PAGE, ServiceBase
from hashdb.trust import audit, policy, report, webhooks
from hashdb.trust.safelist import KEYPOINTS, SafelistHit, check_values, values_of
from hashdb.types import (
    AuditEntry,
    HashRecord,
    HashValue,
    MediaHashes,
    Principal,
    Quarantine,
    SafelistEntry,
)


# Keypoint rows read at a time when a safelist addition screens them (7 KB each).
_KEYPOINT_PAGE = 2_000

class TrustMixin(ServiceBase):
    def verify_audit(self, actor: Principal, anchors: Sequence[audit.Anchor] = ()) -> audit.AuditVerdict:
        """Walk the audit log's hash chain; the verdict names the first entry that does not hold."""
        policy.require(actor, "admin", "verify the audit log")
        return audit.verify_chain(audit.all_entries(self.store), anchors)

    def audit_log(self, actor: Principal, after_id: int = 0,
                  limit: int = 100) -> tuple[list[AuditEntry], dict[int, str]]:
        """Entries after `after_id`, and the names of the organisations they name."""
        policy.require(actor, "admin", "read the audit log")
        if not 1 <= limit <= audit.PAGE:
            raise InvalidInput(f"limit must be between 1 and {audit.PAGE}")
        entries = self.store.audit_entries(after_id, limit)
        return entries, self.store.org_names([e.org_id for e in entries if e.org_id is not None])

    def add_safelist(self, items: Sequence[HashValue | MediaHashes], actor: Principal,
                     note: str = "") -> tuple[int, list[int]]:
        """Safelist benign hashes; returns (how many were new, ids of live records now quarantined
        because they are near one: a poisoned hash shared before the safelist knew better)."""
        policy.require(actor, "admin", "add to the safelist")
        policy.check_free_text("note", note)
        values = [v for item in items for v in values_of(item, self.settings)]
        check_values(values, self.settings)
        added = self.store.add_safelist(values, note, actor)
        held: list[int] = []
        for record_id, hit, signal in self._live_near(values):
            if self.store.quarantine(record_id, "safelist", hit.reason(signal), actor):
                held.append(record_id)
        return added, held

    def safelist_entries(self, actor: Principal, after_id: int = 0, limit: int = 100) -> list[SafelistEntry]:
        policy.require(actor, "admin", "list the safelist")
        if not 1 <= limit <= MAX_EXPORT_PAGE:
            raise InvalidInput(f"limit must be between 1 and {MAX_EXPORT_PAGE}")
        return self.store.safelist_entries(after_id, limit)

    def remove_safelist(self, entry_ids: Sequence[int], actor: Principal, note: str = "") -> list[int]:
        """Take entries off the safelist (new submissions near them are no longer held); records
        they quarantined stay held until an admin releases them. NotFound for an id not on it."""
        policy.require(actor, "admin", "remove safelist entries")
        policy.check_free_text("note", note)
        removed = self.store.remove_safelist(entry_ids, actor, note)
        missing = [i for i in entry_ids if i not in removed]
        if missing:
            raise NotFound(f"no safelist entry with id {missing[0]}"
                           + (f" (removed: {', '.join(map(str, removed))})" if removed else ""))
        return removed

    def _live_near(self, values: Sequence[HashValue]) -> list[tuple[int, SafelistHit, str]]:
        """Stored records within threshold of `values` (the safelist's rule, seen from the other
        side), each with the safelist entry that holds it."""
        entry_of = {(signal, hex_value): entry_id for signal in {v.signal for v in values}
                    for entry_id, hex_value in self.store.safelist_values(signal)}
        if not self.indexes.ready:
            self.indexes.load()
        self.indexes.catch_up()
        limits = policy.thresholds(self.settings, {})
        found: list[tuple[int, SafelistHit, str]] = []
        by_signal: dict[str, list[str]] = {}
        for value in values:
            by_signal.setdefault(value.signal, []).append(value.hex)
        for signal, hexes in by_signal.items():
            if signal in INDEXED_SIGNALS and signal != "vpdq":
                hits = self.indexes.search(signal, hexes, limits[signal])
                found += [(int(rid), SafelistHit(entry_of.get((signal, h), 0), int(d)), signal)
                          for h, near in zip(hexes, hits) for rid, d in near]
            else:
                found += [(r.id, SafelistHit(entry_of.get((signal, r.value), 0), 0), signal)
                          for r in self.store.find_values(signal, hexes)]
        if by_signal.get("pdq"):
            # Records whose derived PDQ (a trimmed or content region) is near a safelisted one.
            hexes = by_signal["pdq"]
            hits = self.indexes.search(DERIVED, hexes, limits["pdq"])
            owners = self.store.derived_records([key for near in hits for key, _ in near])
            found += [(owners[key][0], SafelistHit(entry_of.get(("pdq", h), 0), int(d), owners[key][1]), "pdq")
                      for h, near in zip(hexes, hits) for key, d in near
                      if key in owners and owners[key][1] != MASKED]  # see safelist.values_of
            found += self._keypoints_near(hexes, entry_of, limits["pdq"])
        return found

    def _keypoints_near(self, hexes: Sequence[str], entry_of: dict[tuple[str, str], int],
                        radius: int) -> list[tuple[int, SafelistHit, str]]:
        """Records whose keypoints' boxes (hashing/keypoints.py) are near `hexes`: a record
        matches through them, so a benign picture's boxes in its keypoints hold it back as its
        derived hashes do, whichever came first (a crafted record's boxes were missed by a
        safelist added after it, in trial). Every stored record's boxes are read, a page at a time:
        an admin's safelist addition, not a lookup, pays for it."""
        from hashdb.hashing import keypoints

        wanted = LinearIndex(256)
        wanted.add(np.arange(len(hexes)), hex_to_codes(hexes, 256))
        found: list[tuple[int, SafelistHit, str]] = []
        after = 0
        while rows := self.store.keypoint_rows(after, _KEYPOINT_PAGE):
            boxes = [(record_id, value.hex) for _, record_id, data in rows
                     for value in keypoints.box_pdqs(keypoints.parse(data))]
            hits = wanted.search(hex_to_codes([value for _, value in boxes], 256), radius)
            for (record_id, _), near in zip(boxes, hits, strict=True):
                if near:
                    n, distance = min(near, key=lambda hit: hit[1])
                    found.append((record_id, SafelistHit(entry_of.get(("pdq", hexes[n]), 0), int(distance), KEYPOINTS),
                                  "pdq"))
            after = rows[-1][0]
        return found

    def flush_match_counts(self, force: bool = True) -> list[int]:
        """Write buffered match counts and quarantine records the spike rule catches; their ids."""
        return self.spike_rule.flush(force)

    def quarantined(self, actor: Principal, after_id: int = 0, limit: int = 100) -> list[Quarantine]:
        policy.require(actor, "admin", "list quarantined records")
        if not 1 <= limit <= MAX_EXPORT_PAGE:
            raise InvalidInput(f"limit must be between 1 and {MAX_EXPORT_PAGE}")
        return self.store.quarantined(after_id, limit)

    def quarantine(self, record_id: int, actor: Principal, reason: str) -> HashRecord:
        """An admin holds a record back by hand (e.g. after a member's report)."""
        policy.require(actor, "admin", "quarantine a record")
        policy.check_free_text("reason", reason)
        # An admin sees retracted records too: told what it is, not "no such record".
        record = self.store.get_records([record_id]).get(record_id) or self._visible_record(record_id, actor)
        if not self.store.quarantine(record_id, "manual", reason, actor):
            raise Conflict(f"hash record {record_id} is {record.status}; only active or disputed records "
                           "can be quarantined")
        return self.store.get_records([record_id])[record_id]

    def release(self, record_id: int, actor: Principal, reason: str = "") -> HashRecord:
        """Back to active (then disputed again if the votes standing say so: uphold overrules them)."""
        policy.require(actor, "admin", "release a quarantined record")
        policy.check_free_text("reason", reason)
        self.store.resolve_quarantine(record_id, True, actor, reason)
        record = self._status_from_votes(self.store.get_records([record_id])[record_id], actor, "votes")
        if record.status == "active" and record.incident is not None:
            incident = self.store.find_incident(record.incident)
            if incident is not None and incident.status == "open":
                webhooks.announce_released(self.store, record, incident)
        return record

    def uphold(self, record_id: int, actor: Principal, reason: str) -> HashRecord:
        """An admin's ruling on a disputed record: it stands. Active again, and the votes against
        it cast so far no longer dispute it: they stay on the record (and in its disagree and
        false_positive counts), but only those cast after the ruling, with the agree votes,
        decide whether it is disputed again. The ruling and its reason are in the audit log and
        the record's history. An admin of another organisation than the record's (or a
        co-sharer's) rules: policy.check_judge."""
        policy.require(actor, "admin", "uphold a disputed record")
        policy.check_free_text("reason", reason)
        if not reason.strip():
            raise InvalidInput("say why the record stands (--reason): the ruling is kept in the audit log")
        # An admin sees quarantined and retracted records too: told what it is, not "no such record".
        record = self.store.get_records([record_id]).get(record_id) or self._visible_record(record_id, actor)
        policy.check_judge(record, actor, self._copies_for_voter(record, actor))
        if record.status != "disputed":
            raise Conflict(f"hash record {record_id} is {record.status}, not disputed: only a disputed record "
                           "is upheld" + (" (release it first; if the votes still dispute it, uphold it then)"
                                          if record.status == "quarantined" else ""))
        origin = self.store.mirror_origins([record_id]).get(record_id)
        if origin is not None:
            # Its status and its source's votes are rewritten by the next sync that changes it.
            raise Conflict(f"hash record {record_id} is mirrored from {origin[0]}: its status follows the source's, "
                           "where its dispute is resolved")
        return self.store.uphold(record_id, actor, reason)

    def transparency_report(self, actor: Principal, named: bool = False) -> report.ReportData:
        """What the transparency report shows; contributors are named only for an admin who asks."""
        policy.require(actor, "admin" if named else "lookup",
                       "name organisations in the report" if named else None)
        from hashdb.store.rows import now

        return report.ReportData(now(), self.store.counts(), self.store.integrity_counts(),
                                 self.store.contributor_counts(), named)

    def confirm_quarantine(self, record_id: int, actor: Principal, reason: str) -> HashRecord:
        """Keep it out for good: retracted, with the reason, so exports and mirrors drop it too."""
        policy.require(actor, "admin", "confirm a quarantine")
        policy.check_free_text("reason", reason)
        if not reason.strip():
            raise InvalidInput("say why the quarantine is confirmed (--reason): members see a retraction")
        self.store.resolve_quarantine(record_id, False, actor, reason)
        return self.store.get_records([record_id])[record_id]
