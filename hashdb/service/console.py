"""What the web console asks that the API does not: pages of records, one record with its history
and the actions its viewer may take, the review queues, an incident's records and deliveries,
and sign-in (a key id kept in a signed session, one-time sign-in links).

Every method applies the same rules as the API's: policy.require for the role, policy.readable
and policy.record_scope for what a caller may see of a record (its owner all of it, whatever its
status; a partner what the export feed carries; anyone else what a lookup answers), and
policy.record_actions for what it may do there."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone

from hashdb.errors import InvalidHash, InvalidInput, NotFound, Unauthorized, UnknownSignal
from hashdb.hashing import tmk
from hashdb.hashing.registry import VIDEO_SIGNAL, get_signal, parse_hash, signal_names
from hashdb.service.base import ServiceBase
from hashdb.trust import policy
from hashdb.types import (
    STATUSES,
    AuditEntry,
    DeliveryAttempt,
    DerivedHash,
    HashRecord,
    HistoryEvent,
    Incident,
    Principal,
    RecordQuery,
    Vote,
    Webhook,
)

MAX_PAGE = 200
# Filters with no index of their own (a label: labels are a JSON array; a signal: an index led
# by signal misleads SQLite's planner on exact-hash lookups) read at most this many ids a page.
LABEL_WINDOW = 100_000
SIGNIN_LINK_TTL = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class RecordPage:
    records: tuple[HashRecord, ...]
    next_before: int | None  # pass as `before` for the next (older) page; None at the end
    searched_to: int | None  # with a label filter: ids at or above this were searched


@dataclass(frozen=True, slots=True)
class RecordView:
    """A record as this viewer may see it, told what the API tells the same key (policy.record_scope):
    its owner everything; a partner what the export feed carries; any other member what a lookup
    says. What the viewer may not see is None here, and blanked in `record` (value "", incident,
    reference, and for a lookup's viewer media type and creation time), so a page cannot show it."""

    record: HashRecord
    scope: str  # policy.OWNER | policy.FEED | policy.LOOKUP
    value: str | None
    derived: tuple[DerivedHash, ...] | None  # PDQs of the image's content regions, with its hash
    org_name: str | None
    precision: float
    history: tuple[HistoryEvent, ...] | None
    votes: tuple[Vote, ...] | None
    quarantine: tuple[str, str, str] | None
    actions: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class IncidentView:
    incident: Incident
    records: RecordPage
    webhooks: tuple[Webhook, ...]
    attempts: tuple[DeliveryAttempt, ...]
    pending: dict[int, int]


class ConsoleMixin(ServiceBase):
    # sessions -----------------------------------------------------------------------------

    def session_secret(self) -> bytes:
        """The key the console signs its session cookies with, derived from the server secret
        so every worker and replica agrees on it without another setting."""
        return hmac.new(self._secret(), b"hashdb console session v1", hashlib.sha256).digest()

    def principal_for_key_id(self, key_id: int) -> Principal:
        """The principal a signed-in session acts as; refused once its key is revoked."""
        record = self.store.get_api_key(key_id)
        if record is None:
            raise Unauthorized("unknown API key")
        if record.revoked_at is not None:
            raise Unauthorized("this API key has been revoked")
        return Principal(record.org_id, record.org_name, record.role, record.id)

    def create_signin_link(self, key_id: int, actor: Principal, ttl: timedelta = SIGNIN_LINK_TTL) -> str:
        """A token that signs its first visitor in as key `key_id`, once, within `ttl`."""
        policy.require(actor, "admin", "create sign-in links")
        if self.store.get_api_key(key_id) is None:
            raise NotFound(f"no API key with id {key_id}")
        token = secrets.token_urlsafe(32)
        at = datetime.now(timezone.utc)
        self.store.add_signin_link(self._token_hash(token), key_id, at.isoformat(timespec="microseconds"),
                                   (at + ttl).isoformat(timespec="microseconds"))
        return token

    def redeem_signin_link(self, token: str) -> Principal:
        if not token or len(token) > 100 or not token.isascii():
            raise Unauthorized("this sign-in link is not valid")
        at = datetime.now(timezone.utc).isoformat(timespec="microseconds")
        key_id = self.store.use_signin_link(self._token_hash(token), at)
        if key_id is None:
            raise Unauthorized("this sign-in link was already used or has expired; sign in with the API key")
        return self.principal_for_key_id(key_id)

    def _token_hash(self, token: str) -> str:
        return hmac.new(self._secret(), b"signin:" + token.encode(), hashlib.sha256).hexdigest()

    # records ------------------------------------------------------------------------------

    def browse_records(self, actor: Principal, query: RecordQuery, org: str | None = None) -> RecordPage:
        """A page of records, newest first, whatever their status: an admin's of any organisation
        (or `org`), a contributor's of its own. Who may not submit has no records to list."""
        policy.require(actor, "submit", "list records")
        if not 1 <= query.limit <= MAX_PAGE:
            raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}")
        if query.status is not None and query.status not in STATUSES:
            raise InvalidInput(f"status must be one of {', '.join(STATUSES)}")
        if query.signal is not None and query.signal not in DIGEST_SIGNALS:
            _known_signal(query.signal)
        if query.label is not None:
            self.taxonomy.validate([query.label])
        if query.value is not None:
            query = replace(query, value=query.value.strip().lower())
        if actor.is_admin:
            if org:
                found = self.store.get_org(org)
                if found is None:
                    raise NotFound(f"no organisation named {org!r}")
                query = replace(query, org_id=found.id)
        else:
            query = replace(query, org_id=actor.org_id)
        before = query.before if query.before is not None else self.store.max_record_id() + 1
        windowed = query.label is not None or (query.signal is not None and query.value is None)
        floor = max(0, before - LABEL_WINDOW) if windowed else 0
        rows = self.store.search_records(replace(query, before=before, floor=floor, limit=query.limit + 1))
        more = len(rows) > query.limit
        rows = rows[:query.limit]
        # Only owners list (a contributor its own organisation's, an admin any): whatever the status.
        shown = tuple(r for r in rows if policy.owns(r, actor))
        if more:
            return RecordPage(shown, rows[-1].id, None)
        if floor > 1:  # the window ended before the page filled: older ids are not searched yet
            return RecordPage(shown, floor, floor)
        return RecordPage(shown, None, floor if windowed else None)

    def find_by_hash(self, actor: Principal, text: str) -> RecordPage:
        """Records holding this hash (`signal:hex`, or hex of any signal of that length), among
        those browse_records would list for this caller."""
        policy.require(actor, "submit", "search records by hash")
        signal, _, hexv = text.strip().rpartition(":")
        hexv = hexv.lower()
        candidates = [signal] if signal else [s for s in record_signals() if _hex_length(s) == len(hexv)]
        if not candidates:
            raise InvalidInput(f"{text!r} is not a hash of any signal (give signal:hex)")
        found: list[HashRecord] = []
        for name in candidates:
            # The (signal, value) unique key answers this at any size; a scan by id would not.
            found += self.store.find_values(name, [_stored_value(name, hexv)])
        shown = [r for r in found if policy.owns(r, actor)]
        return RecordPage(tuple(sorted(shown, key=lambda r: -r.id)), None, None)

    def safelist_size(self, actor: Principal) -> int:
        policy.require(actor, "admin", "see the safelist")
        return self.store.safelist_version()[0]

    def record_view(self, record_id: int, actor: Principal) -> RecordView:
        policy.require(actor, "lookup")
        record = self.store.get_records([record_id]).get(record_id)
        if record is None or not policy.readable(record, actor):
            raise NotFound(f"no hash record with id {record_id}")
        scope = policy.record_scope(record, actor)
        actions = policy.record_actions(record, actor, self._copies_for_voter(record, actor))
        precision = policy.precision_estimate(record)
        if scope == policy.LOOKUP:
            seen = replace(record, value="", quality=None, incident=None, reference=None, media_type="",
                           created_at="")
            return RecordView(seen, scope, None, None, None, precision, None, None, None, actions)
        derived = tuple(d for _, d in self.store.derived_hashes([record.id]).get(record.id, []))
        if scope == policy.FEED:
            seen = replace(record, reference=None)
            return RecordView(seen, scope, record.value, derived, None, precision, None, None, None, actions)
        names = self.store.org_names([record.org_id])
        return RecordView(record, scope, record.value, derived, names.get(record.org_id, ""), precision,
                          tuple(self.store.record_history(record.id)),
                          tuple(self.store.votes([record.id])[record.id]),
                          self.store.open_quarantine(record.id), actions)

    def disputed(self, actor: Principal, before: int | None = None,
                 limit: int = 50) -> tuple[RecordPage, dict[int, list[Vote]]]:
        """The disputed queue with every organisation's vote and note."""
        policy.require(actor, "admin", "list disputed records")
        page = self.browse_records(actor, RecordQuery(status="disputed", before=before, limit=limit))
        return page, self.store.votes([r.id for r in page.records])

    # incidents ----------------------------------------------------------------------------

    def incident_view(self, incident_id: int, actor: Principal, before: int | None = None) -> IncidentView:
        policy.require(actor, "admin", "view an incident")
        incident = self.store.get_incident(incident_id)
        if incident is None:
            raise NotFound(f"no incident with id {incident_id}")
        records = self.browse_records(actor, RecordQuery(incident=incident.name, before=before))
        ids = [r.id for r in records.records]
        return IncidentView(incident, records, tuple(self.store.webhooks(active_only=False)),
                            tuple(self.store.attempts_for_records(ids)), self.store.pending_deliveries(ids))

    def recent_audit(self, actor: Principal, limit: int = 50) -> tuple[list[AuditEntry], dict[int, str]]:
        """The newest audit entries, newest first, and the names of the organisations in them."""
        policy.require(actor, "admin", "read the audit log")
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}")
        entries = self.store.audit_tail(limit)
        return entries, self.store.org_names([e.org_id for e in entries if e.org_id is not None])


# A video's records are named by a digest (vpdq: of its frames; tmk: of its .tmk file), 64 hex
# digits, which the record page shows as its hash: the console finds them by it too.
DIGEST_SIGNALS = (VIDEO_SIGNAL, tmk.SIGNAL)
DIGEST_HEX = 64


def record_signals() -> tuple[str, ...]:
    """Every signal a record may have: the hashers' and the video digests."""
    return (*signal_names(), *DIGEST_SIGNALS)


def _known_signal(name: str) -> None:
    if name not in record_signals():
        raise UnknownSignal(f"unknown signal {name!r}; known: {', '.join(record_signals())}")


def _stored_value(signal: str, hexv: str) -> str:
    if signal in DIGEST_SIGNALS:
        if len(hexv) != DIGEST_HEX or any(c not in "0123456789abcdef" for c in hexv):
            raise InvalidHash(f"a {signal} record's hash is {DIGEST_HEX} hex digits")
        return hexv
    _known_signal(signal)
    return parse_hash(signal, hexv).hex


def _hex_length(signal: str) -> int:
    return DIGEST_HEX if signal in DIGEST_SIGNALS else int(get_signal(signal).bits) // 4
