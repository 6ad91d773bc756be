"""The record counts the console's dashboard shows: a full pass over the records (seconds at
millions), so a snapshot is kept per process and recounted in the background; no page waits
for a count except the first, briefly, on a small database. A recount runs only when the
change log moved (counts change only with it), no sooner than MAX_AGE_S after the last, and
no more than 1/SPACING of the time: the pass holds the worker's store connection while it runs."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

MAX_AGE_S = 60.0
SPACING = 30.0


@dataclass(frozen=True, slots=True)
class CountsSnapshot:
    counts: dict[str, dict[str, int]]
    at: float  # time.time() when counted
    seconds: float  # how long counting took
    version: int  # the change log's last seq before counting


class CountsCache:
    """The last counts and a background recount when they are older than max_age."""

    def __init__(self, compute: Callable[[], dict[str, dict[str, int]]], version: Callable[[], int],
                 max_age: float = MAX_AGE_S) -> None:
        self._compute = compute
        self._version = version
        self._max_age = max_age
        self._snapshot: CountsSnapshot | None = None
        self._running: threading.Thread | None = None
        self._lock = threading.Lock()

    def get(self, wait: float) -> CountsSnapshot | None:
        with self._lock:
            snapshot = self._snapshot
            stale = snapshot is None or (
                time.time() - snapshot.at > max(self._max_age, SPACING * snapshot.seconds)
                and self._version() != snapshot.version)
            if stale and self._running is None:
                self._running = threading.Thread(target=self._recount, name="hashdb-console-counts", daemon=True)
                self._running.start()
            running = self._running
        if snapshot is None and running is not None:
            running.join(wait)  # a small database is counted before the first page answers
            return self._snapshot
        return snapshot

    def _recount(self) -> None:
        started = time.perf_counter()
        try:
            version = self._version()
            counts = self._compute()
            self._snapshot = CountsSnapshot(counts, time.time(), time.perf_counter() - started, version)
        finally:
            with self._lock:
                self._running = None
