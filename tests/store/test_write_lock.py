"""Another process holding SQLite's write lock (an import, a `BEGIN IMMEDIATE`): reads go on,
the webhook poll writes nothing when nothing is due, spike counting never fails a lookup, and
a write that cannot get the lock in time is Busy (the API's 503), not a bare sqlite3 error.

The lock is held through a second connection to the same file, which SQLite treats exactly
as another process. Waits use generous timeouts; nothing here measures speed.
"""

from __future__ import annotations

import random
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from hashdb.config import Settings
from hashdb.errors import Busy
from hashdb.index.indexset import IndexSet
from hashdb.service import HashDB
from hashdb.store.sqlite_store import SQLiteStore
from hashdb.types import HashValue, Query, Submission
from support import INDEX_FACTORY, flip, principal, random_pdq

# Long enough that a read queued behind a waiting writer would visibly not finish in time.
WRITE_TIMEOUT = 20.0
GENEROUS = 10.0


@contextmanager
def write_lock_held(path: Path) -> Iterator[None]:
    other = sqlite3.connect(str(path), isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        yield
        other.execute("ROLLBACK")
    finally:
        other.close()


def in_thread(task):  # the task's result, or its exception; None if it did not finish in time
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["value"] = task()
        except BaseException as exc:  # handed back to the test
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(GENEROUS)
    if thread.is_alive():
        return None
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]


def make(tmp_path: Path, write_timeout: float, **settings) -> HashDB:
    store = SQLiteStore(tmp_path / "db.sqlite", write_timeout=write_timeout)
    service = HashDB(Settings(**settings), store, IndexSet(store, factory=INDEX_FACTORY),
                     server_secret=b"s" * 32)
    service.load_index()
    return service


def shared(service: HashDB, rng: random.Random) -> tuple[int, str]:
    value = random_pdq(rng)
    submitted = service.submit([Submission("x", ("glorification",), (HashValue("pdq", value, 100),))],
                               principal(service, "alpha", "contributor"))
    return submitted[0].ids[0], value


def test_reads_do_not_queue_behind_a_write_waiting_for_the_lock(tmp_path):
    service = make(tmp_path, WRITE_TIMEOUT)
    record_id, value = shared(service, random.Random(1))
    admin = principal(service, "operator", "admin")
    with write_lock_held(tmp_path / "db.sqlite"):
        # A write in this process now waits (up to WRITE_TIMEOUT) for the other connection...
        done: list[str] = []
        writer = threading.Thread(target=lambda: done.append(service.store.set_status(record_id, "retracted",
                                                                                      admin).status), daemon=True)
        writer.start()
        # ...and reads from other threads still answer meanwhile.
        assert in_thread(lambda: service.store.get_records([record_id])) is not None
        assert in_thread(lambda: service.store.find_values("pdq", [value])) is not None
        assert in_thread(lambda: service.store.changes_since(0, 10)) is not None
    # Once the lock is free the waiting write goes through.
    writer.join(WRITE_TIMEOUT + GENEROUS)
    assert done == ["retracted"]
    service.store.close()


def test_a_write_that_cannot_get_the_lock_is_busy(tmp_path):
    service = make(tmp_path, 0.2)
    record_id, _ = shared(service, random.Random(2))
    with write_lock_held(tmp_path / "db.sqlite"):
        with pytest.raises(Busy):
            service.store.set_status(record_id, "retracted", principal(service, "operator", "admin"))
    # Nothing was half-written, and the next write goes through.
    assert service.store.get_records([record_id])[record_id].status == "active"
    service.store.set_status(record_id, "retracted", principal(service, "operator", "admin"))
    service.store.close()


def test_the_webhook_poll_takes_no_write_lock_when_nothing_is_due(tmp_path):
    service = make(tmp_path, 0.2)
    with write_lock_held(tmp_path / "db.sqlite"):
        # Would be Busy if the poll opened a write transaction.
        passed = service.deliver_webhooks()
    assert passed.attempted == 0
    service.store.close()


def test_spike_counting_never_fails_a_lookup_and_keeps_its_counts(tmp_path):
    service = make(tmp_path, 0.2, spike_flush_seconds=0, spike_max_matches=1, spike_min_orgs=1)
    rng = random.Random(3)
    record_id, value = shared(service, rng)
    consumer = principal(service, "gamma", "consumer")
    query = Query("q", (HashValue("pdq", flip(value, 4, rng), 100),))
    with write_lock_held(tmp_path / "db.sqlite"):
        for _ in range(2):
            (result,) = service.lookup([query], consumer)
            assert [m.id for m in result.matches] == [record_id]
    # The counts taken while the database was busy were kept and are written now: two
    # matches from one organisation trip the rule (more than 1 from at least 1).
    assert service.flush_match_counts() == [record_id]
    service.store.close()
