"""Sharing: submit a batch of hashes, retract one, relabel one, vote on one."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Sequence

from hashdb.config import Settings
from hashdb.errors import Conflict, Forbidden, InvalidInput, NotFound, UnknownIncident
from hashdb.hashing import tmk
from hashdb.hashing.derived import WINDOW
from hashdb.hashing.vpdq_format import video_digest
from hashdb.service.base import ServiceBase
from hashdb.trust import incidents, policy, webhooks
from hashdb.types import (
    HashRecord,
    HashValue,
    Incident,
    NewRecord,
    Principal,
    Submission,
    SubmitOutcome,
    SubmitResult,
)


class SharingMixin(ServiceBase):
    def submit(self, submissions: Sequence[Submission], actor: Principal,
               idempotency_key: str | None = None) -> list[SubmitResult]:
        """Validate the whole batch first (one bad item refuses all), then store it atomically."""
        policy.require(actor, "submit")
        if not submissions:
            raise InvalidInput("nothing to submit")
        records: list[NewRecord] = []
        owners: list[int] = []
        skipped: list[list[str]] = []
        shared: list[tuple[tuple[str, ...], str | None]] = []  # per input: its labels and incident
        open_incidents: dict[str, Incident] = {}
        for n, sub in enumerate(submissions):
            labels = self.taxonomy.validate(sub.labels)
            policy.check_text("incident", sub.incident)
            if sub.incident is not None:
                try:
                    opened = incidents.resolve_open(self.store, sub.incident, open_incidents)
                except UnknownIncident as exc:  # named by its input, as a refused hash is
                    raise UnknownIncident(f"{sub.input}: {exc.message}" if sub.input else exc.message) from None
                sub = dataclasses.replace(sub, incident=opened.name)
            policy.check_printable("reference", sub.reference)
            notes: list[str] = []
            stored_before = len(records)
            # Derived hashes go with the submission's first PDQ record; low-detail ones are dropped.
            pending = tuple(d for d in policy.usable_derived(sub.derived, self.settings) if d.via != WINDOW)
            notes.extend(policy.derived_notes(sub.derived, self.settings))
            if any(d.via == WINDOW for d in sub.derived):
                # Stored, a window would be matched by other queries' windows: crops of two
                # pictures that share a part. Windows meet records' centred crops only.
                notes.append("derived window hashes not shared: a lookup's windows are never stored")
            # An image's keypoints go with the same PDQ record as its derived hashes, on the same terms.
            keypoints = _checked_keypoints(sub, self.settings, notes)
            if keypoints is not None and sub.media_type != "image":
                notes.append("keypoints not shared: only an image has them")
                keypoints = None
            for value in sub.hashes:
                problem = policy.submission_problem(value, self.settings)
                if problem is not None:
                    if (sub.media_type == "image" and value.signal in policy.PERCEPTUAL_BITS and sub.input
                            and len(sub.hashes) > 1):
                        notes.append(problem)  # a file's other hashes can still be shared
                        continue
                    # Named by its input (a file's line, an API item): a batch is refused whole.
                    raise policy.refusal(value, f"{sub.input}: {problem}" if sub.input else problem)
                derived = pending if value.signal == "pdq" else ()
                pending = () if value.signal == "pdq" else pending
                kept = keypoints if value.signal == "pdq" else None
                keypoints = None if value.signal == "pdq" else keypoints
                records.append(NewRecord(value, sub.media_type, labels, sub.incident, sub.reference,
                                         sub.removed_at, derived=derived, keypoints=kept))
                owners.append(n)
            if pending:
                # No shareable PDQ took them: derived hashes belong to a file's PDQ record.
                notes.append("derived hashes not shared: they go with the file's PDQ, and it has none to share")
            if keypoints is not None:
                notes.append("keypoints not shared: they go with the file's PDQ, and it has none to share")
            if sub.frames:
                refused = policy.frames_refusal(sub.frames, self.settings, sub.input)
                if refused is not None:
                    raise refused
                good = policy.good_frames(sub.frames, self.settings)
                flat = policy.degenerate_frames(sub.frames, self.settings)
                if good and flat:
                    # Said, as a file's degenerate pHash is: the frames were sent, and dropped.
                    notes.append(f"{flat} video frame(s) not shared: degenerate PDQ (fewer than 32 or more than "
                                 "224 bits set)")
                problem = (f"no video frame has PDQ quality >= {self.settings.pdq_min_quality} and a PDQ "
                           "that is not degenerate")
                if good:
                    records.append(NewRecord(video_digest(good), "video", labels, sub.incident, sub.reference,
                                             sub.removed_at, frames=good))
                    owners.append(n)
                elif sub.hashes or sub.tmk is not None:
                    # A flat or dark video (a still screen under an audio track) is still
                    # shared by its md5 and sha256, as an image with a low-quality PDQ is.
                    notes.append(f"frames not shared: {problem}")
                else:
                    raise InvalidInput(f"{sub.input}: {problem}")
            if sub.tmk is not None:
                features = tmk.parse_tmk(sub.tmk)
                records.append(NewRecord(HashValue(tmk.SIGNAL, features.digest), "video", labels, sub.incident,
                                         sub.reference, sub.removed_at, tmk=tmk.stored(features)))
                owners.append(n)
            if len(records) == stored_before:
                raise InvalidInput(f"{sub.input}: nothing left to share ({'; '.join(notes)})")
            skipped.append(notes)
            shared.append((labels, sub.incident))
        held = self.safelist.whole_inputs(self.safelist.screen_records(records), owners, records)
        records = [dataclasses.replace(r, status="quarantined") if n in held else r for n, r in enumerate(records)]
        digest = request_digest(records)
        outcomes = self.store.add_records(records, actor, idempotency_key, digest)
        self._redecide_withdrawn(outcomes, actor)
        self.safelist.note_holds(records, outcomes, held)
        if open_incidents:
            webhooks.announce(self.store, records, outcomes, {i.name: i for i in open_incidents.values()})
        per_input: list[list[SubmitOutcome]] = [[] for _ in submissions]
        for outcome, owner in zip(outcomes, owners):
            per_input[owner].append(outcome)
        stored = self.store.get_records([o.id for o in outcomes if o.duplicate])
        signals = {o.id: r.hash.signal for o, r in zip(outcomes, records)}
        results: list[SubmitResult] = []
        for n, (sub, mine) in enumerate(zip(submissions, per_input)):
            new = [o for o in mine if not o.duplicate]
            # Each record as it now stands: a duplicate's is the stored one, whatever this
            # submission asked for.
            now = {o.id: stored[o.id].status if o.duplicate and o.id in stored else o.status for o in mine}
            status = _input_status(now.values())
            duplicates = tuple(dict.fromkeys(o.id for o in mine if o.duplicate))
            said = [_duplicate_note(stored[i], shared[n]) for i in duplicates if i in stored]
            if len(set(now.values())) > 1:
                said.append("its records differ: " + ", ".join(f"{i} {signals[i]} {s}" for i, s in now.items()))
            results.append(SubmitResult(sub.input, tuple(o.id for o in mine), status, not new, tuple(skipped[n]),
                                        duplicates, tuple(note for note in said if note)))
        return results

    def _redecide_withdrawn(self, outcomes: Sequence[SubmitOutcome], actor: Principal) -> None:
        """Records the submitter's votes were withdrawn from (the store's add_records: it now holds
        the hash itself) move as a vote change moves them: disputed only by that vote, active
        again; active only because of its agree, disputed."""
        ids = [i for o in outcomes for i in o.withdrawn]
        for record in self.store.get_records(ids).values():
            self._status_from_votes(record, actor, "feedback withdrawn: the organisation shared the hash too")

    def retract(self, record_id: int, actor: Principal, reason: str = "") -> HashRecord:
        """Its organisation (a contributor key) or an admin; also while it is quarantined: an
        owner withdrawing its own hash only ever takes something off the list."""
        policy.check_free_text("reason", reason)
        record = self._owned_record(record_id, actor, "retract a hash", own_quarantined=True, retracted=True)
        if record.status == "retracted":
            # Already retracted (a call retried after a timeout, say): answered as it is, with
            # nothing more written to the feed or the audit log.
            return record
        return self.store.set_status(record_id, "retracted", actor, reason)

    def relabel(self, record_id: int, labels: Sequence[str], actor: Principal) -> HashRecord:
        """Replace a record's labels (its organisation or an admin); partners see it in the feed."""
        valid = self.taxonomy.validate(labels)
        self._owned_record(record_id, actor, "change labels")
        return self.store.set_labels(record_id, valid, actor)

    def _owned_record(self, record_id: int, actor: Principal, action: str,
                      own_quarantined: bool = False, retracted: bool = False) -> HashRecord:
        """The record, if this caller may see it and is its organisation or an admin. Only keys
        that may share may change what was shared: a consumer or partner key of the same
        organisation reads, it does not write. `own_quarantined`: also the caller's own
        quarantined record; `retracted`: also a retracted one, to its organisation or an admin
        (to anyone else it is gone)."""
        if actor.role not in policy.PERMISSIONS["submit"]:
            raise Forbidden(f"the {actor.role} role may not {action}; only contributor and admin keys may")
        record = self.store.get_records([record_id]).get(record_id)
        if record is None:
            raise NotFound(f"no hash record with id {record_id}")
        own = record.org_id == actor.org_id
        held = own_quarantined and own and record.status == "quarantined"
        if record.status == "retracted" and not retracted and (own or actor.is_admin):
            # Its organisation and admins see it (retract answers for it): "no such record"
            # would be false to them.
            raise Conflict(f"hash record {record_id} is retracted; only a live record can {action}")
        gone = retracted and (own or actor.is_admin) and record.status == "retracted"
        if record.status == "quarantined" and own and not held and not actor.is_admin:
            # Its organisation sees it held (the console's record page, retract): "no such
            # record" was false to it, as for a retracted one.
            raise Conflict(f"hash record {record_id} is quarantined; only a live record can {action}")
        if not (policy.visible(record, actor) or held or gone):
            raise NotFound(f"no hash record with id {record_id}")
        if not own and not actor.is_admin:
            raise Forbidden(f"only the contributing organisation or an admin may {action}")
        return record

    def feedback(self, record_id: int, actor: Principal, verdict: str, note: str = "") -> HashRecord:
        policy.require(actor, "feedback")
        verdict = policy.check_verdict(verdict)
        policy.check_free_text("note", note, policy.MAX_NOTE)
        current = self._visible_record(record_id, actor,
                                       held_from_owner="it takes no votes while it is out of members' lookups")
        policy.check_voter(current, actor, self._copies_for_voter(current, actor))
        return self._status_from_votes(self.store.set_feedback(record_id, actor, verdict, note or ""), actor,
                                       "feedback")


# An input's status is its records' most telling one: one held record makes the input held (a
# file whose PDQ the safelist caught is not "active" because its md5 is), one disputed makes it
# disputed, and it is retracted only when none of its records is live.
_STATUS_ORDER = ("quarantined", "disputed", "active", "retracted")


def _input_status(statuses: Iterable[str]) -> str:
    present = set(statuses)
    return next(s for s in _STATUS_ORDER if s in present)


def _duplicate_note(record: HashRecord, wanted: tuple[tuple[str, ...], str | None]) -> str:
    """What a submission of an already shared hash did not do, or "" when nothing was lost."""
    if record.status == "retracted":
        return (f"record {record.id} was retracted by an admin (a retraction or a confirmed quarantine); "
                "it stays out (ask an admin)")
    labels, incident = wanted
    if tuple(labels) == tuple(record.labels) and (incident is None or incident == record.incident):
        return ""
    return (f"record {record.id} was already shared (labels {', '.join(record.labels)}; incident "
            f"{record.incident or 'none'}): kept as it was; `hashdb relabel {record.id}` changes its labels")


def _checked_keypoints(sub: Submission, settings: Settings, notes: list[str]) -> bytes | None:
    """A submission's stored keypoints, read strictly (the API and a hash line read them too;
    a caller of the library may not have): a malformed blob refuses the batch, named by its input.
    Keypoints of another picture than the submission's PDQ are not shared (a note says so): a
    match through them names the record, so a benign picture's keypoints beside any PDQ would
    make the record match that picture, past the safelist, which screens the record's hashes
    (found in trial). Not refused: a flat picture's PDQ from the full image and from the grey
    512-pixel copy can lie that far apart (a flag at 36 bits), and its hashes are still good."""
    if sub.keypoints is None:
        return None
    from hashdb.hashing import keypoints, keypoints_text

    keypoints_text.check(sub.keypoints, sub.input or None)
    if not settings.keypoints:  # HASHDB_KEYPOINTS=0: this database keeps none, whoever computed them
        notes.append("keypoints not stored: this database keeps none (HASHDB_KEYPOINTS=0)")
        return None
    pdqs = [v.hex for v in sub.hashes if v.signal == "pdq"]
    if pdqs:
        apart = keypoints.distance_to_record(keypoints.parse(sub.keypoints), pdqs, sub.derived)
        if apart > keypoints.TIE_RADIUS:
            notes.append(f"keypoints not shared: their whole-picture PDQ is {apart} bits from the item's pdq and "
                         f"derived hashes (at most {keypoints.TIE_RADIUS}), so they may be another picture's")
            return None
    return sub.keypoints


def request_digest(records: Sequence[NewRecord]) -> str:
    """What an idempotency key is bound to: every field of every record, so a retry that
    differs in anything (a quality, the media type, one frame) is a new request, not a replay."""
    body = json.dumps([[r.hash.signal, r.hash.hex, r.hash.quality, r.media_type, list(r.labels), r.incident,
                        r.reference, r.removed_at,
                        [[f.hash.hex, f.hash.quality, f.timestamp] for f in r.frames],
                        [[d.via, d.hash.hex, d.hash.quality, *([] if d.share is None else [d.share]),
                          *([] if d.colours is None else [d.colours])] for d in r.derived],
                        *([] if r.keypoints is None else [hashlib.sha256(r.keypoints).hexdigest()])]
                       for r in records])
    return hashlib.sha256(body.encode()).hexdigest()
