"""What only the PostgreSQL store has to get right: several replicas on one database, lazy
connections across a fork, reconnecting after the server drops a session."""

from __future__ import annotations

import os
import threading
import warnings

import psycopg
import pytest
from store_helpers import actor, chain_problems, pdq, record

from hashdb.errors import DatabaseUnavailable
from hashdb.store import postgres_schema
from hashdb.store.postgres_store import PostgresStore
from hashdb.types import Change

pytestmark = pytest.mark.postgres


def run_threads(targets: list[threading.Thread]) -> None:
    for t in targets:
        t.start()
    for t in targets:
        t.join(timeout=60)
        assert not t.is_alive()


def test_replicas_starting_together_migrate_once(postgres_dsn: str) -> None:
    stores = [PostgresStore(postgres_dsn) for _ in range(4)]
    barrier = threading.Barrier(len(stores))
    errors: list[BaseException] = []

    def open_one(store: PostgresStore) -> None:
        barrier.wait()
        try:
            store.ensure_org("Acme")
        except BaseException as error:  # collected and reported below
            errors.append(error)

    run_threads([threading.Thread(target=open_one, args=(s,)) for s in stores])
    assert errors == []
    with psycopg.connect(postgres_dsn) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM schema_migrations ORDER BY name").fetchall()]
    assert names == sorted(name for name, _ in postgres_schema.MIGRATIONS)
    assert len({s.get_org("Acme") for s in stores}) == 1
    for s in stores:
        s.close()


def test_a_reader_following_the_log_never_skips_a_change(postgres_dsn: str) -> None:
    """Two replicas write at once while a partner pages the change log by cursor: every change
    must reach the partner, which it would not if a later seq could commit before an earlier one."""
    writers = [PostgresStore(postgres_dsn) for _ in range(2)]
    reader = PostgresStore(postgres_dsn)
    who = [actor(w, f"org{i}") for i, w in enumerate(writers)]
    done = threading.Event()
    seen: list[Change] = []

    def write(i: int) -> None:
        for n in range(40):
            writers[i].add_records([record(pdq(i * 1000 + n)), record(pdq(i * 1000 + n + 500))], who[i])

    def follow() -> None:
        cursor = 0
        while True:
            finished = done.is_set()
            page = reader.changes_since(cursor, 7)
            seen.extend(page)
            if page:
                cursor = page[-1].seq
            elif finished:
                return

    follower = threading.Thread(target=follow)
    follower.start()
    run_threads([threading.Thread(target=write, args=(i,)) for i in range(2)])
    done.set()
    follower.join(timeout=60)
    assert seen == reader.changes_since(0, 10_000)
    assert len(seen) == 160
    assert chain_problems(reader.audit_entries(limit=10_000)) == []
    for s in [*writers, reader]:
        s.close()


def test_replicas_submitting_the_same_hashes_store_each_once(postgres_dsn: str) -> None:
    stores = [PostgresStore(postgres_dsn) for _ in range(2)]
    acme = actor(stores[0], "Acme")
    batch = [record(pdq(n)) for n in range(50)]
    barrier = threading.Barrier(2)
    results: list[list[int]] = [[], []]

    def submit(i: int) -> None:
        barrier.wait()
        results[i] = [o.id for o in stores[i].add_records(batch, acme)]

    run_threads([threading.Thread(target=submit, args=(i,)) for i in range(2)])
    assert results[0] == results[1]
    assert stores[1].counts()["signal"] == {"pdq": 50}
    for s in stores:
        s.close()


def test_nothing_connects_until_first_use() -> None:
    # Safe to build before a fork (or with the database still starting): no I/O in __init__.
    store = PostgresStore("postgresql://nobody@127.0.0.1:1/none?connect_timeout=1")
    # An unreachable server is the API's 503 with Retry-After, not a bare driver error (a 500).
    with pytest.raises(DatabaseUnavailable, match="cannot reach the PostgreSQL database"):
        store.last_seq()
    store.close()


def test_close_then_use_reconnects(postgres_dsn: str) -> None:
    store = PostgresStore(postgres_dsn)
    acme = actor(store, "Acme")
    store.close()
    assert store.add_records([record(pdq(1))], acme)[0].duplicate is False
    store.close()
    store.close()  # idempotent


def backend_pid(store: PostgresStore) -> int:
    return int(store._rows("SELECT pg_backend_pid() AS pid")[0]["pid"])


def terminate(dsn: str, pid: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as admin:
        # With a timeout, it waits until the session has ended, as a later request would find it.
        admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))


def test_a_read_after_the_server_dropped_the_session_is_answered_on_a_new_one(postgres_dsn: str) -> None:
    store = PostgresStore(postgres_dsn)
    actor(store, "Acme")
    old = backend_pid(store)
    terminate(postgres_dsn, old)
    assert store.get_org("Acme") is not None  # retried once on a new connection
    assert backend_pid(store) != old
    store.close()


def test_a_write_after_the_server_dropped_the_idle_session_starts_on_a_new_one(postgres_dsn: str) -> None:
    store = PostgresStore(postgres_dsn)
    acme = actor(store, "Acme")
    terminate(postgres_dsn, backend_pid(store))
    assert store.add_records([record(pdq(1))], acme)[0].duplicate is False
    assert [r.value for r in store.find_values("pdq", [pdq(1)])] == [pdq(1)]
    store.close()


def test_a_session_lost_inside_a_write_is_unavailable_and_writes_nothing(postgres_dsn: str) -> None:
    # Not re-run: a write is the caller's to retry (a submit again is answered as a duplicate).
    store = PostgresStore(postgres_dsn)
    acme = actor(store, "Acme")
    before = store.last_seq()
    with pytest.raises(DatabaseUnavailable, match="nothing was written") as raised:
        with store._write() as conn:
            (pid,) = conn.execute("SELECT pg_backend_pid()").fetchone()
            terminate(postgres_dsn, pid)
            conn.execute("INSERT INTO orgs (name, created_at) VALUES ('Lost', 'now')")
    assert raised.value.retry_after >= 1
    assert store.get_org("Lost") is None and store.last_seq() == before
    assert store.add_records([record(pdq(2))], acme)[0].duplicate is False
    store.close()


def test_a_forked_child_does_not_end_the_parents_session(postgres_dsn: str) -> None:
    store = PostgresStore(postgres_dsn)
    acme = actor(store, "Acme")  # the parent's connection is open when it forks
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork with threads
        pid = os.fork()
    if pid == 0:  # the child: use the store, close it, exit without returning into pytest
        code = 1
        try:
            store.add_records([record(pdq(2))], acme)
            store.close()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    # Still the same session: had the child shut the inherited connection down, this would fail.
    assert [r.value for r in store.find_values("pdq", [pdq(2)])] == [pdq(2)]
    store.add_records([record(pdq(3))], acme)
    store.close()
