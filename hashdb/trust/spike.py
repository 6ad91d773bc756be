"""The spike rule against poisoning: count lookups that match each record, per UTC hour and
organisation, and say which records crossed the settings' line. Counting is buffered in memory
and written in one transaction per flush, so a matching lookup rarely waits for a commit."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta, timezone

from hashdb.config import Settings
from hashdb.store.base import HashStore
from hashdb.types import Match

log = logging.getLogger(__name__)

Count = tuple[int, str, int, int]  # (record id, hour bucket, org id, matches)


def hour_bucket(at: datetime) -> str:
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H")


class _HourBuckets:
    """hour_bucket of the current time, formatted once an hour rather than once a lookup."""

    def __init__(self) -> None:
        self._hour: tuple[int, int, int, int] | None = None
        self._bucket = ""

    def __call__(self, now: datetime) -> str:
        utc = now.astimezone(timezone.utc)
        hour = (utc.year, utc.month, utc.day, utc.hour)
        if hour != self._hour:
            self._hour, self._bucket = hour, hour_bucket(utc)
        return self._bucket


def window_start(at: datetime, settings: Settings) -> str:
    """The oldest hour bucket inside the window (the current hour counts as one of them)."""
    return hour_bucket(at - timedelta(hours=max(settings.spike_window_hours, 1) - 1))


def org_share(settings: Settings) -> int:
    """The most matches one organisation counts for: the smallest share that spike_min_orgs
    organisations together can exceed the line with. Counted whole, one member's lookups (a
    batch repeating one hash a thousand times, a test loop, a scraper) plus a single match at
    each of two others took any shared record out of every member's lookups; the rule is for a
    hash matched widely, at many members."""
    return settings.spike_max_matches // max(settings.spike_min_orgs, 1) + 1


def counted(per_org: Sequence[int], settings: Settings) -> int:
    share = org_share(settings)
    return sum(min(n, share) for n in per_org)


def tripped(per_org: Sequence[int], settings: Settings) -> bool:
    return counted(per_org, settings) > settings.spike_max_matches and len(per_org) >= settings.spike_min_orgs


def spike_reason(per_org: Sequence[int], settings: Settings) -> str:
    return (f"{sum(per_org)} matching lookups from {len(per_org)} organisations within "
            f"{settings.spike_window_hours} h, {counted(per_org, settings)} counted "
            f"(rule: more than {settings.spike_max_matches} from at least {settings.spike_min_orgs}, "
            f"each organisation counting for at most {org_share(settings)})")


class SpikeCounter:
    """Pending match counts for one process; `take_due` hands them over once per flush interval."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic,
                 utcnow: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self.settings = settings
        self.clock = clock
        self.utcnow = utcnow
        self._lock = threading.Lock()
        self._pending: dict[tuple[int, str, int], int] = {}
        self._last_flush = clock()
        self._bucket = _HourBuckets()
        # True: a lookup writes due counts itself (local use). A server sets it False and
        # flushes from a background thread, so no lookup ever waits for that commit.
        self.inline = True

    def add(self, record_ids: Iterable[int], org_id: int) -> None:
        bucket = self._bucket(self.utcnow())
        with self._lock:
            for record_id in record_ids:
                key = (record_id, bucket, org_id)
                self._pending[key] = self._pending.get(key, 0) + 1

    def take_due(self, force: bool = False) -> list[Count]:
        """The pending counts if a flush is due (or forced), else nothing; taken ones are cleared."""
        with self._lock:
            due = force or self.clock() - self._last_flush >= self.settings.spike_flush_seconds
            if not due or not self._pending:
                return []
            taken = [(r, b, o, n) for (r, b, o), n in self._pending.items()]
            self._pending.clear()
            self._last_flush = self.clock()
            return taken

    def restore(self, counts: Iterable[Count]) -> None:
        """Put back counts a flush took but could not write (the database was busy)."""
        with self._lock:
            for record_id, bucket, org_id, n in counts:
                key = (record_id, bucket, org_id)
                self._pending[key] = self._pending.get(key, 0) + n


class SpikeRule:
    """The rule at work over one store: count a lookup's matches, and on each due flush write
    the counts and quarantine the records that crossed the line."""

    def __init__(self, store: HashStore, settings: Settings, counter: SpikeCounter | None = None) -> None:
        self.store = store
        self.settings = settings
        self.counter = counter if counter is not None else SpikeCounter(settings)

    def count(self, per_query: Sequence[Sequence[Match]], org_id: int) -> None:
        self.counter.add((m.id for matches in per_query for m in matches if m.status in ("active", "disputed")),
                         org_id)
        if self.counter.inline:
            try:
                self.flush(force=False)
            except Exception:  # counting must never fail a lookup; the counts were put back
                log.warning("match counts not written yet (will retry)", exc_info=True)

    def flush(self, force: bool = True) -> list[int]:
        """Write buffered match counts and quarantine records the rule catches; their ids.
        Counts that cannot be written (a busy database) are kept for the next flush."""
        counts = self.counter.take_due(force)
        if not counts:
            return []
        now = self.counter.utcnow()
        try:
            totals = self.store.count_matches(counts, window_start(now, self.settings))
        except BaseException:
            self.counter.restore(counts)
            raise
        caught = {rid: per_org for rid, per_org in sorted(totals.items()) if tripped(per_org, self.settings)}
        if not caught:
            return []
        exempt: set[str] = set()
        if self.settings.spike_exempt_open_incidents:
            # During a declared crisis the attacker's video really is matched everywhere at once:
            # that spike is the crisis, not poisoning (the safelist still applies to it).
            exempt = {i.name for i in self.store.incidents(open_only=True)}
        records = self.store.get_records(list(caught))
        held = []
        for record_id, per_org in caught.items():
            record = records.get(record_id)
            if record is None or record.incident in exempt:
                continue
            reason = spike_reason(per_org, self.settings)
            if self.store.quarantine(record_id, "spike", reason, None):
                held.append(record_id)
        return held
