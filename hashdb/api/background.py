"""Per-worker background work off the request path: spike-count flushing and following the
change log (webhook delivery and the metrics refresher are started beside them, in
hashdb/api/__init__.py).

Writing here keeps every lookup free of writes, so a lookup never waits for the write lock
(an import in another process may hold it for seconds)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from hashdb.service import HashDB

log = logging.getLogger("hashdb.api")

# Spike counts are flushed at least this often, whatever the settings say (a flush with
# nothing pending costs nothing: no query).
MIN_FLUSH_INTERVAL = 0.5


class Periodic:
    """A daemon thread calling `task` every `interval` seconds until stopped; a failing call
    is logged and retried on the next tick (a busy or restarting database)."""

    def __init__(self, name: str, task: Callable[[], object], interval: float) -> None:
        self.task = task
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Periodic:
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.task()
            except Exception:
                log.warning("%s failed; retrying in %.1f s", self._thread.name, self.interval, exc_info=True)


def start_spike_flusher(service: HashDB) -> Callable[[], None]:
    """Take spike counting off the lookups: flush due counts from a thread; returns how to stop
    it (a last flush on the way out, if the database lets us)."""
    service.spike_rule.counter.inline = False
    interval = max(MIN_FLUSH_INTERVAL, service.settings.spike_flush_seconds)
    flusher = Periodic("hashdb-spike-flush", lambda: service.flush_match_counts(force=False), interval).start()

    def stop() -> None:
        flusher.stop()
        try:
            service.flush_match_counts(force=True)
        except Exception:
            log.warning("match counts could not be written at shutdown", exc_info=True)

    return stop


# Seconds between a worker's catch-ups of its index with the change log.
FOLLOW_INTERVAL = 1.0


def start_index_follower(service: HashDB, interval: float = FOLLOW_INTERVAL) -> Callable[[], None]:
    """Apply other processes' changes to this worker's index from a thread, so a lookup rarely
    finds changes to apply first (each lookup still catches up: a retraction stops matching
    at once) and an idle worker's index does not fall behind; returns how to stop it."""

    def follow() -> None:
        if service.indexes.ready:
            service.indexes.catch_up()

    return Periodic("hashdb-index-follow", follow, interval).start().stop
