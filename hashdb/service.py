"""HashDB: the one place behaviour lives. The CLI and the HTTP API are thin adapters over it."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import secrets
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from hashdb import audit, incidents, keys, policy, report, spike, webhooks
from hashdb.config import Settings
from hashdb.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from hashdb.hashing import media as media_io
from hashdb.hashing.pdq import PdqSignal
from hashdb.hashing.registry import DEFAULT_SIGNALS, bytes_signals, get_signal, image_signals
from hashdb.indexes import INDEXED_SIGNALS, IndexSet
from hashdb.safelist import SafelistHit, SafelistMatcher, check_values, values_of
from hashdb.store.base import HashStore
from hashdb.taxonomy import Taxonomy
from hashdb.types import (
    ROLES,
    ApiKey,
    AuditEntry,
    DeliveryAttempt,
    FeedEntry,
    FrameHash,
    HashRecord,
    HashValue,
    Incident,
    LookupResult,
    Match,
    MediaHashes,
    NewRecord,
    Principal,
    Quarantine,
    Query,
    Submission,
    SubmitOutcome,
    SubmitResult,
    VideoMatch,
    Webhook,
)

MAX_EXPORT_PAGE = 10_000


class HashDB:
    def __init__(self, settings: Settings, store: HashStore, indexes: IndexSet | None = None,
                 taxonomy: Taxonomy | None = None, server_secret: bytes | None = None) -> None:
        self.settings = settings
        self.server_secret = server_secret
        self.store = store
        self.indexes = indexes if indexes is not None else IndexSet(store)
        self.taxonomy = taxonomy if taxonomy is not None else Taxonomy.load()
        self.safelist = SafelistMatcher(store, settings)
        self.spikes = spike.SpikeCounter(settings)

    # hashing (local: nothing leaves the machine) ---------------------------------------------

    def hash_file(self, path: Path, signals: Sequence[str] | None = None, dihedral: bool = False) -> MediaHashes:
        """Hash one file; `dihedral` adds the PDQs of its 8 rotations/flips (for lookups)."""
        data = media_io.read_file(path, self.settings.limits)
        return self.hash_bytes(data, str(path), signals, path=path, dihedral=dihedral)

    def hash_bytes(self, data: bytes, name: str, signals: Sequence[str] | None = None,
                   path: Path | None = None, dihedral: bool = False) -> MediaHashes:
        wanted = tuple(signals) if signals else DEFAULT_SIGNALS
        for signal in wanted:
            get_signal(signal)
        exact = tuple(s.compute_bytes(data) for s in bytes_signals() if s.name in wanted)
        if media_io.media_type(data) == "video":
            from hashdb.hashing import video

            sampling = video.VideoSampling.from_settings(self.settings)
            if path is not None:
                frames = video.hash_video(path, self.settings.limits, sampling)
            else:
                frames = video.hash_video_bytes(data, self.settings.limits, sampling)
            return MediaHashes(name, "video", exact, frames=frames)
        decoded = media_io.decode_image(data, self.settings.limits)
        perceptual = tuple(s.compute(decoded.rgb) for s in image_signals() if s.name in wanted)
        variants: tuple[HashValue, ...] = ()
        rotations: tuple[HashValue, ...] = ()
        if "pdq" in wanted:
            pdq = PdqSignal()
            # Flattened (transparency) and upright (EXIF) copies: what re-uploads tend to look like.
            primary = next((v.hex for v in perceptual if v.signal == "pdq"), None)
            computed = [pdq.compute(image) for _, image in decoded.variants()]
            variants = tuple(v for n, v in enumerate(computed)
                             if v.hex != primary and v.hex not in {w.hex for w in computed[:n]})
            if dihedral:
                rotations = pdq.dihedral(decoded.rgb)[1:]
        return MediaHashes(name, "image", exact + perceptual, variants=variants, dihedral=rotations)

    def query_for(self, hashes: MediaHashes) -> Query:
        """What to look up for a hashed file: every hash, PDQ's alpha and dihedral variants too."""
        if hashes.media_type == "video":
            return Query(hashes.path, hashes.hashes, hashes.frames)
        seen: set[tuple[str, str]] = set()
        unique: list[HashValue] = []
        for value in hashes.hashes + hashes.variants + hashes.dihedral:
            if (value.signal, value.hex) not in seen:
                seen.add((value.signal, value.hex))
                unique.append(value)
        return Query(hashes.path, tuple(unique))

    def submission_for(self, hashes: MediaHashes, labels: Sequence[str], **meta: str | None) -> Submission:
        return Submission(
            input=hashes.path, labels=tuple(labels), hashes=hashes.hashes + hashes.variants,
            frames=hashes.frames, media_type=hashes.media_type, **meta,  # type: ignore[arg-type]
        )

    # sharing ---------------------------------------------------------------------------------

    def submit(self, submissions: Sequence[Submission], actor: Principal,
               idempotency_key: str | None = None, *, mirror: bool = False) -> list[SubmitResult]:
        """Validate the whole batch first (one bad item refuses all), then store it atomically.

        `mirror`: records copied from another hashdb's export keep the incident tags that
        database accepted; everyone else must name an incident open here."""
        policy.require(actor, "submit")
        if not submissions:
            raise InvalidInput("nothing to submit")
        records: list[NewRecord] = []
        owners: list[int] = []
        skipped: list[list[str]] = []
        open_incidents: dict[str, Incident] = {}
        for n, sub in enumerate(submissions):
            labels = self.taxonomy.validate(sub.labels)
            policy.check_text("incident", sub.incident)
            if sub.incident is not None and not mirror:
                sub = dataclasses.replace(sub, incident=incidents.resolve_open(self.store, sub.incident,
                                                                                open_incidents).name)
            policy.check_text("reference", sub.reference)
            notes: list[str] = []
            for value in sub.hashes:
                problem = policy.submission_problem(value, self.settings)
                if problem is not None:
                    if sub.media_type == "image" and value.signal == "pdq" and sub.input and len(sub.hashes) > 1:
                        notes.append(problem)  # a file's other hashes can still be shared
                        continue
                    raise policy.refusal(value, problem)
                records.append(NewRecord(value, sub.media_type, labels, sub.incident, sub.reference,
                                         sub.removed_at))
                owners.append(n)
            if sub.frames:
                good = policy.good_frames(sub.frames, self.settings)
                if not good:
                    raise InvalidInput(f"{sub.input}: no video frame has PDQ quality >= "
                                       f"{self.settings.pdq_min_quality}")
                records.append(NewRecord(video_digest(good), "video", labels, sub.incident, sub.reference,
                                         sub.removed_at, frames=good))
                owners.append(n)
            if not any(o == n for o in owners):
                raise InvalidInput(f"{sub.input}: nothing left to share ({'; '.join(notes)})")
            skipped.append(notes)
        held = self.safelist.screen([r.hash for r in records])
        records = [dataclasses.replace(r, status="quarantined") if n in held else r for n, r in enumerate(records)]
        digest = request_digest(records)
        outcomes = self.store.add_records(records, actor, idempotency_key, digest)
        self._note_safelist_holds(records, outcomes, held, actor)
        if open_incidents:
            self._announce(records, outcomes, {i.name: i for i in open_incidents.values()})
        results: list[SubmitResult] = []
        for n, sub in enumerate(submissions):
            mine = [o for o, owner in zip(outcomes, owners) if owner == n]
            status = next((o.status for o in mine if not o.duplicate), mine[0].status)
            results.append(SubmitResult(sub.input, tuple(o.id for o in mine), status,
                                        all(o.duplicate for o in mine), tuple(skipped[n])))
        return results

    def retract(self, record_id: int, actor: Principal, reason: str = "") -> HashRecord:
        policy.check_text("reason", reason)
        record = self._visible_record(record_id, actor)
        if record.org_id != actor.org_id and not actor.is_admin:
            raise Forbidden("only the contributing organisation or an admin may retract a hash")
        return self.store.set_status(record_id, "retracted", actor, reason)

    def feedback(self, record_id: int, actor: Principal, verdict: str, note: str = "") -> HashRecord:
        policy.require(actor, "feedback")
        verdict = policy.check_verdict(verdict)
        policy.check_text("note", note, policy.MAX_NOTE)
        self._visible_record(record_id, actor)
        record = self.store.set_feedback(record_id, actor, verdict, note or "")
        new_status = policy.status_after_votes(record, self.settings)
        if new_status != record.status:
            record = self.store.set_status(record_id, new_status, actor, "feedback")
        return record

    def _visible_record(self, record_id: int, actor: Principal) -> HashRecord:
        record = self.store.get_records([record_id]).get(record_id)
        if record is None or not policy.visible(record, actor):
            raise NotFound(f"no hash record with id {record_id}")
        return record

    # matching --------------------------------------------------------------------------------

    def lookup(self, queries: Sequence[Query], actor: Principal,
               thresholds: Mapping[str, int] | None = None) -> list[LookupResult]:
        policy.require(actor, "lookup")
        limits = policy.thresholds(self.settings, thresholds or {})
        self.indexes.catch_up()
        # best[(query n, record id)] = (distance, signal)
        best: dict[tuple[int, int], tuple[int, str]] = {}
        by_signal: dict[str, list[tuple[int, str]]] = {}
        for n, query in enumerate(queries):
            for value in query.hashes:
                by_signal.setdefault(value.signal, []).append((n, value.hex))
        for signal, items in by_signal.items():
            if get_signal(signal).exact:
                for record in self.store.find_values(signal, [h for _, h in items]):
                    for n, hexv in items:
                        if hexv == record.value:
                            _keep(best, (n, record.id), 0, signal)
                continue
            radius = limits[signal]
            hits = self.indexes.search(signal, [h for _, h in items], radius)
            for (n, _), found in zip(items, hits):
                for record_id, distance in found:
                    _keep(best, (n, record_id), distance, signal)
        video: dict[tuple[int, int], VideoMatch] = {}
        for n, query in enumerate(queries):
            if query.frames:
                for record_id, (distance, match) in self._video_candidates(query.frames, limits["vpdq"]).items():
                    _keep(best, (n, record_id), distance, "vpdq")
                    video[(n, record_id)] = match
        records = self.store.get_records([rid for _, rid in best])
        per_query: list[list[Match]] = [[] for _ in queries]
        for (n, record_id), (distance, signal) in best.items():
            record = records.get(record_id)
            if record is None or not policy.visible(record, actor):
                continue
            per_query[n].append(Match(record.id, signal, distance, record.labels, record.status,
                                      record.support, record.agree, record.disagree,
                                      video.get((n, record_id))))
        if not actor.is_admin:  # operators investigating are not the crowd the spike rule watches
            self._count_matches(per_query, actor)
        results = []
        for query, matches in zip(queries, per_query):
            matches.sort(key=lambda m: (m.distance, m.id))
            results.append(LookupResult(query.input, bool(matches), tuple(matches),
                                        policy.query_flags(query, self.settings)))
        return results

    def _video_candidates(self, frames: Sequence[FrameHash], radius: int) -> dict[int, tuple[int, VideoMatch]]:
        """Stored videos passing the vPDQ rule: candidates from the frame index, then exact percentages."""
        from hashdb.hashing import video

        rule = dataclasses.replace(video.VpdqRule.from_settings(self.settings), distance=radius)
        query = policy.good_frames(frames, self.settings)
        if not query:
            return {}
        hits = self.indexes.search("vpdq", [f.hash.hex for f in query], radius)
        owners = self.store.frame_records([fid for found in hits for fid, _ in found])
        nearest: dict[int, int] = {}
        for found in hits:
            for fid, distance in found:
                record_id = owners.get(fid)
                if record_id is not None and distance < nearest.get(record_id, radius + 1):
                    nearest[record_id] = distance
        stored = self.store.video_frames(sorted(nearest))
        out: dict[int, tuple[int, VideoMatch]] = {}
        for record_id, distance in nearest.items():
            stored_frames = [FrameHash(n, 0.0, HashValue("pdq", h, q)) for n, (_, h, q) in enumerate(stored[record_id])]
            match = video.compare_videos(query, stored_frames, rule)
            if rule.is_match(match):
                out[record_id] = (distance, match)
        return out

    # partners ----------------------------------------------------------------------------------

    def export(self, actor: Principal, since: str | None = None, limit: int = 1000) -> tuple[list[FeedEntry], str]:
        """The ordered change feed after `since`, and the cursor to pass next time."""
        policy.require(actor, "export")
        if not 1 <= limit <= MAX_EXPORT_PAGE:
            raise InvalidInput(f"limit must be between 1 and {MAX_EXPORT_PAGE}")
        seq = decode_cursor(since)
        changes = self.store.changes_since(seq, limit)
        records = self.store.get_records([c.record_id for c in changes])
        videos = self.store.video_frames([r.id for r in records.values() if r.signal == "vpdq"])
        entries = []
        for change in changes:
            record = records[change.record_id]
            frames = tuple(FrameHash(i, 0.0, HashValue("pdq", h, q)) for i, (_, h, q) in
                           enumerate(videos.get(record.id, [])))
            entries.append(FeedEntry(change.seq, change.kind, record.id, record.signal, record.value,
                                     record.quality, record.media_type, change.labels, change.status,
                                     record.incident, record.created_at, change.at, frames))
        return entries, encode_cursor(changes[-1].seq if changes else seq)

    # organisations and keys ---------------------------------------------------------------------

    def create_key(self, org: str, role: str, actor: Principal) -> tuple[str, ApiKey]:
        """A new key for `org` (created if new); the key string is returned once, never stored."""
        policy.require(actor, "admin")
        if role not in ROLES:
            raise InvalidInput(f"role must be one of {', '.join(ROLES)}")
        policy.check_text("org", org, 100)
        if not org.strip():
            raise InvalidInput("organisation name is empty")
        organisation = self.store.ensure_org(org)
        key, prefix = keys.generate()
        record = self.store.create_api_key(organisation.id, role, prefix,
                                           keys.secret_hash(self._secret(), key))
        return key, record

    def authenticate(self, key: str) -> Principal:
        record = self.store.find_api_key(keys.prefix_of(key))
        if record is None or not keys.matches(self._secret(), key, record.secret_hash):
            raise Unauthorized("unknown API key")
        if record.revoked_at is not None:
            raise Unauthorized("this API key has been revoked")
        return Principal(record.org_id, record.org_name, record.role, record.id)

    def list_keys(self, actor: Principal) -> list[ApiKey]:
        policy.require(actor, "admin")
        return self.store.list_api_keys()

    def revoke_key(self, key_id: int, actor: Principal) -> ApiKey:
        policy.require(actor, "admin")
        return self.store.revoke_api_key(key_id, actor)

    def _secret(self) -> bytes:
        if self.server_secret is None:
            raise InvalidInput("no server secret configured")
        return self.server_secret

    # operations ----------------------------------------------------------------------------------

    def load_index(self, progress: Callable[[str, int], None] | None = None) -> None:
        self.indexes.load(progress)

    def rebuild_index(self, progress: Callable[[str, int], None] | None = None) -> dict[str, int]:
        self.indexes.rebuild(progress)
        self.indexes.save()
        return self.indexes.sizes()

    def stats(self, actor: Principal) -> dict[str, dict[str, int]]:
        policy.require(actor, "lookup")
        return self.store.counts()

    # trust and safety ----------------------------------------------------------------------------

    def verify_audit(self, actor: Principal, anchors: Sequence[audit.Anchor] = ()) -> audit.AuditVerdict:
        """Walk the audit log's hash chain; the verdict names the first entry that does not hold."""
        policy.require(actor, "admin")
        return audit.verify_chain(audit.all_entries(self.store), anchors)

    def audit_log(self, actor: Principal, after_id: int = 0, limit: int = 100) -> list[AuditEntry]:
        policy.require(actor, "admin")
        if not 1 <= limit <= audit.PAGE:
            raise InvalidInput(f"limit must be between 1 and {audit.PAGE}")
        return self.store.audit_entries(after_id, limit)

    def add_safelist(self, items: Sequence[HashValue | MediaHashes], actor: Principal,
                     note: str = "") -> tuple[int, list[int]]:
        """Safelist benign hashes; returns (how many were new, ids of live records now quarantined
        because they are near one: a poisoned hash shared before the safelist knew better)."""
        policy.require(actor, "admin")
        policy.check_text("note", note)
        values = [v for item in items for v in values_of(item, self.settings)]
        check_values(values, self.settings)
        added = self.store.add_safelist(values, note, actor)
        held: list[int] = []
        for record_id, hit, signal in self._live_near(values):
            if self.store.quarantine(record_id, "safelist", hit.reason(signal), actor):
                held.append(record_id)
        return added, held

    def _live_near(self, values: Sequence[HashValue]) -> list[tuple[int, SafelistHit, str]]:
        """Stored records within threshold of `values` (the safelist's rule, seen from the other side)."""
        if not self.indexes.ready:
            self.load_index()
        self.indexes.catch_up()
        limits = policy.thresholds(self.settings, {})
        found: list[tuple[int, SafelistHit, str]] = []
        by_signal: dict[str, list[str]] = {}
        for value in values:
            by_signal.setdefault(value.signal, []).append(value.hex)
        for signal, hexes in by_signal.items():
            if signal in INDEXED_SIGNALS and signal != "vpdq":
                hits = self.indexes.search(signal, hexes, limits[signal])
                found += [(int(rid), SafelistHit(0, int(d)), signal) for near in hits for rid, d in near]
            else:
                found += [(r.id, SafelistHit(0, 0), signal) for r in self.store.find_values(signal, hexes)]
        return found

    def _note_safelist_holds(self, records: Sequence[NewRecord], outcomes: Sequence[SubmitOutcome],
                             held: Mapping[int, SafelistHit], actor: Principal) -> None:
        # Written just after the records (not in their transaction, which the store owns); a
        # crash in between leaves a quarantined record listed with an empty reason, never an
        # active one.
        for n, outcome in enumerate(outcomes):
            if n in held and not outcome.duplicate and outcome.status == "quarantined":
                self.store.note_quarantine([outcome.id], "safelist", held[n].reason(records[n].hash.signal), actor)

    def _count_matches(self, per_query: Sequence[Sequence[Match]], actor: Principal) -> None:
        self.spikes.add((m.id for matches in per_query for m in matches if m.status in ("active", "disputed")),
                        actor.org_id)
        self.flush_match_counts(force=False)

    def flush_match_counts(self, force: bool = True) -> list[int]:
        """Write buffered match counts and quarantine records the spike rule catches; their ids."""
        counts = self.spikes.take_due(force)
        if not counts:
            return []
        now = self.spikes.utcnow()
        totals = self.store.count_matches(counts, spike.window_start(now, self.settings))
        tripped = {rid: t for rid, t in sorted(totals.items()) if spike.tripped(t[0], t[1], self.settings)}
        if not tripped:
            return []
        exempt: set[str] = set()
        if self.settings.spike_exempt_open_incidents:
            # During a declared crisis the attacker's video really is matched everywhere at once:
            # that spike is the crisis, not poisoning (the safelist still applies to it).
            exempt = {i.name for i in self.store.incidents(open_only=True)}
        records = self.store.get_records(list(tripped))
        held = []
        for record_id, (matches, orgs) in tripped.items():
            record = records.get(record_id)
            if record is None or record.incident in exempt:
                continue
            reason = spike.spike_reason(matches, orgs, self.settings)
            if self.store.quarantine(record_id, "spike", reason, None):
                held.append(record_id)
        return held

    def quarantined(self, actor: Principal, after_id: int = 0, limit: int = 100) -> list[Quarantine]:
        policy.require(actor, "admin")
        if not 1 <= limit <= MAX_EXPORT_PAGE:
            raise InvalidInput(f"limit must be between 1 and {MAX_EXPORT_PAGE}")
        return self.store.quarantined(after_id, limit)

    def quarantine(self, record_id: int, actor: Principal, reason: str) -> HashRecord:
        """An admin holds a record back by hand (e.g. after a member's report)."""
        policy.require(actor, "admin")
        policy.check_text("reason", reason)
        record = self._visible_record(record_id, actor)
        if not self.store.quarantine(record_id, "manual", reason, actor):
            raise Conflict(f"hash record {record_id} is {record.status}; only active or disputed records "
                           "can be quarantined")
        return self.store.get_records([record_id])[record_id]

    def release(self, record_id: int, actor: Principal, reason: str = "") -> HashRecord:
        """Back to active (then disputed again if the votes say so)."""
        policy.require(actor, "admin")
        policy.check_text("reason", reason)
        self.store.resolve_quarantine(record_id, True, actor, reason)
        record = self.store.get_records([record_id])[record_id]
        status = policy.status_after_votes(record, self.settings)
        return self.store.set_status(record_id, status, actor, "votes") if status != record.status else record

    def open_incident(self, name: str, actor: Principal, description: str = "") -> Incident:
        policy.require(actor, "admin")
        return self.store.open_incident(incidents.check_name(name), incidents.check_description(description), actor)

    def close_incident(self, incident_id: int, actor: Principal) -> Incident:
        policy.require(actor, "admin")
        return self.store.close_incident(incident_id, actor)

    def get_incident(self, incident_id: int, actor: Principal) -> Incident:
        policy.require(actor, "admin")
        incident = self.store.get_incident(incident_id)
        if incident is None:
            raise NotFound(f"no incident with id {incident_id}")
        return incident

    def list_incidents(self, actor: Principal, open_only: bool = False) -> list[Incident]:
        policy.require(actor, "admin")
        return self.store.incidents(open_only)

    def add_webhook(self, org: str, url: str, actor: Principal) -> tuple[str, Webhook]:
        """Subscribe `org` to new incident hashes; the signing secret is returned once."""
        policy.require(actor, "lookup")
        if not actor.is_admin and org != actor.org_name:
            raise Forbidden("an organisation may only register webhooks for itself")
        url = webhooks.check_url(url, self.settings)
        organisation = self.store.get_org(org)
        if organisation is None:
            raise NotFound(f"no organisation named {org!r}")
        salt = secrets.token_hex(16)
        hook = self.store.add_webhook(organisation.id, url, salt, actor)
        return webhooks.signing_secret(self._secret(), salt), hook

    def list_webhooks(self, actor: Principal) -> list[Webhook]:
        policy.require(actor, "admin")
        return self.store.webhooks(active_only=False)

    def remove_webhook(self, webhook_id: int, actor: Principal) -> Webhook:
        policy.require(actor, "lookup")
        hook = next((w for w in self.store.webhooks(active_only=False) if w.id == webhook_id), None)
        if hook is None or (not actor.is_admin and hook.org_id != actor.org_id):
            raise NotFound(f"no webhook with id {webhook_id}")
        return self.store.remove_webhook(webhook_id, actor)

    def delivery_log(self, actor: Principal, after_id: int = 0, limit: int = 100) -> list[DeliveryAttempt]:
        policy.require(actor, "admin")
        if not 1 <= limit <= MAX_EXPORT_PAGE:
            raise InvalidInput(f"limit must be between 1 and {MAX_EXPORT_PAGE}")
        return self.store.delivery_attempts(after_id, limit)

    def deliver_webhooks(self) -> webhooks.DeliveryPass:
        """One delivery pass over the outbox (the CLI, or the server's background thread)."""
        return webhooks.deliver_due(self.store, self._secret(), self.settings)

    def _announce(self, records: Sequence[NewRecord], outcomes: Sequence[SubmitOutcome],
                  by_name: Mapping[str, Incident]) -> None:
        # Outbox rows only: sending is the delivery worker's job, so no subscriber can slow or
        # fail a submission. Quarantined records are not announced.
        fresh = [(r, o) for r, o in zip(records, outcomes)
                 if not o.duplicate and o.status == "active" and r.incident in by_name]
        if not fresh:
            return
        stored = self.store.get_records([o.id for _, o in fresh])
        frames = self.store.video_frames([o.id for r, o in fresh if r.hash.signal == "vpdq"])
        self.store.enqueue_deliveries([
            (o.id, webhooks.payload(stored[o.id], by_name[str(r.incident)],
                                    [(h, q) for _, h, q in frames.get(o.id, [])]))
            for r, o in fresh
        ])

    def transparency_report(self, actor: Principal, named: bool = False) -> report.ReportData:
        """What the transparency report shows; contributors are named only for an admin who asks."""
        policy.require(actor, "admin" if named else "lookup")
        from hashdb.store.rows import now

        return report.ReportData(now(), self.store.counts(), self.store.integrity_counts(),
                                 self.store.contributor_counts(), named)

    def confirm_quarantine(self, record_id: int, actor: Principal, reason: str) -> HashRecord:
        """Keep it out for good: retracted, with the reason, so exports and mirrors drop it too."""
        policy.require(actor, "admin")
        policy.check_text("reason", reason)
        if not reason.strip():
            raise InvalidInput("say why the quarantine is confirmed (--reason): members see a retraction")
        self.store.resolve_quarantine(record_id, False, actor, reason)
        return self.store.get_records([record_id])[record_id]


def _keep(best: dict[tuple[int, int], tuple[int, str]], key: tuple[int, int], distance: int, signal: str) -> None:
    if key not in best or distance < best[key][0]:
        best[key] = (distance, signal)


def video_digest(frames: Sequence[FrameHash]) -> HashValue:
    """A video item's identity: the digest of its frame hashes (same frames, same item)."""
    body = "\n".join(f.hash.hex for f in frames).encode()
    return HashValue("vpdq", hashlib.sha256(body).hexdigest())


def request_digest(records: Sequence[NewRecord]) -> str:
    body = json.dumps([[r.hash.signal, r.hash.hex, list(r.labels), r.incident, r.reference, len(r.frames)]
                       for r in records])
    return hashlib.sha256(body.encode()).hexdigest()


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"v1:{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    if cursor in (None, "", "0"):
        return 0
    try:
        text = base64.urlsafe_b64decode(str(cursor) + "=" * (-len(str(cursor)) % 4)).decode("ascii")
        version, _, seq = text.partition(":")
        if version != "v1" or not seq.isascii() or not seq.isdigit():
            raise ValueError(text)
        return int(seq)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput("cursor is not one this server issued") from exc

