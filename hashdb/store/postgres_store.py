"""HashStore over PostgreSQL (psycopg 3), for several API replicas sharing one database.

The queries live in sql.py; this module owns the connection, the write serialisation and the
schema. One connection per store object, guarded by a lock and opened on first use.

A lost connection (a restart, a failover, pg_terminate_backend) is reopened. A read statement is
retried once on the new connection: it changes nothing, so running it again is harmless. A
write is never re-run here: before its transaction starts, a connection the server has already
closed (the socket has something to read while idle) is replaced, since nothing has been sent;
once the transaction has begun, a lost connection is a 503 (DatabaseUnavailable) saying whether
the write may have landed: lost before COMMIT, PostgreSQL rolled it back; lost during COMMIT, no
one can say, and re-running it here could apply it twice (a submit retried by the client is
answered as a duplicate, or once per Idempotency-Key).

Forking servers (gunicorn --preload): create the store after the fork, or call close() before
forking; a connection inherited from the parent anyway is abandoned without being shut down
(shutting it down would end the parent's session too) and the child opens its own.
"""

from __future__ import annotations

import logging
import os
import select
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, Callable

import psycopg
from psycopg import sql as pgsql

from hashdb.errors import DatabaseUnavailable
from hashdb.store import postgres_schema
from hashdb.store.migrations import upgrade_notice
from hashdb.store.console_sql import ConsoleSQL
from hashdb.store.keys_sql import KeysSQL
from hashdb.store.mirror_sql import MirrorSQL
from hashdb.store.parts_sql import RecordPartsSQL
from hashdb.store.sql import Connection, SQLStore
from hashdb.store.trust_sql import TrustSQL

CONNECT_TIMEOUT_S = 10

log = logging.getLogger(__name__)


@lru_cache(maxsize=256)
def to_pyformat(sql: str) -> bytes:
    """sql.py writes `?` placeholders; psycopg wants `%s` (and a literal % doubled)."""
    return sql.replace("%", "%%").replace("?", "%s").encode()


Reopen = Callable[[], "psycopg.Connection[tuple[Any, ...]]"]


def lost(conn: psycopg.Connection[tuple[Any, ...]]) -> bool:
    return conn.closed or conn.broken


def closed_by_server(conn: psycopg.Connection[tuple[Any, ...]]) -> bool:
    """An idle connection has nothing to read; a server that ended the session sent its
    goodbye (and EOF). No round trip: a zero-timeout poll of the socket."""
    try:
        readable, _, _ = select.select([conn.fileno()], [], [], 0)
    except (OSError, ValueError, psycopg.Error):
        return True
    return bool(readable)


def unavailable(exc: BaseException, what: str) -> DatabaseUnavailable:
    return DatabaseUnavailable(f"the connection to the PostgreSQL database was lost ({str(exc).strip() or type(exc).__name__}); "
                               f"{what}; retry shortly")


class _Connection:
    """The sql.Connection seam over a psycopg connection. `reopen`: for reads, how to get a new
    connection when this one is lost, so the statement runs once more; None inside a write."""

    def __init__(self, conn: psycopg.Connection[tuple[Any, ...]], reopen: Reopen | None = None) -> None:
        self._conn = conn
        self._reopen = reopen

    @property
    def raw(self) -> psycopg.Connection[tuple[Any, ...]]:
        return self._conn

    def execute(self, sql: str, params: Sequence[Any] = (), /) -> psycopg.Cursor[tuple[Any, ...]]:
        try:
            return self._conn.execute(to_pyformat(sql), tuple(params))
        except psycopg.OperationalError as exc:
            if not lost(self._conn):
                raise
            if self._reopen is None:
                raise
            first = exc
        self._conn = self._reopen()
        try:
            return self._conn.execute(to_pyformat(sql), tuple(params))
        except psycopg.OperationalError as exc:
            if lost(self._conn):
                raise unavailable(exc, "a read retried on a new connection failed too") from first
            raise

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]], /) -> None:
        # psycopg pipelines executemany: one round trip per batch, not per row.
        with self._conn.cursor() as cursor:
            cursor.executemany(to_pyformat(sql), rows)


class PostgresStore(ConsoleSQL, MirrorSQL, TrustSQL, KeysSQL, RecordPartsSQL, SQLStore):
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._lock = threading.RLock()
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None
        self._pid = 0

    def _connection(self) -> psycopg.Connection[tuple[Any, ...]]:
        with self._lock:
            conn = self._conn
            if conn is not None and self._pid != os.getpid():
                self._abandon(conn)
                conn = None
            if conn is not None and (conn.closed or conn.broken):
                conn.close()
                conn = None
            if conn is None:
                conn = self._open()
                self._conn, self._pid = conn, os.getpid()
            return conn

    def _open(self) -> psycopg.Connection[tuple[Any, ...]]:
        # autocommit: a read is its own statement and never leaves a transaction idle between
        # calls; writes open theirs explicitly in _write.
        try:
            conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
        except psycopg.OperationalError as exc:
            # psycopg's text names host, port and user, never the password.
            raise DatabaseUnavailable(f"cannot reach the PostgreSQL database: {str(exc).strip()}; retry shortly") from exc
        try:
            upgraded = postgres_schema.apply(conn)
        except BaseException:
            conn.close()
            raise
        if upgraded:
            log.warning(upgrade_notice(f"PostgreSQL database {conn.info.dbname}", upgraded))
        return conn

    def _reopen(self) -> psycopg.Connection[tuple[Any, ...]]:
        """A new connection in place of a lost one (the lock is held by the caller)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        return self._connection()

    @staticmethod
    def _abandon(conn: psycopg.Connection[tuple[Any, ...]]) -> None:
        # The socket is shared with the parent: point this process's descriptor at /dev/null so
        # closing (now, or when garbage-collected) sends its goodbye nowhere.
        devnull = os.open(os.devnull, os.O_RDWR)
        try:
            os.dup2(devnull, conn.fileno())
        finally:
            os.close(devnull)
        conn.close()

    def close(self) -> None:
        """Close the connection; the next call opens a new one."""
        with self._lock:
            if self._conn is not None:
                if self._pid == os.getpid():
                    self._conn.close()
                else:
                    self._abandon(self._conn)
                self._conn = None

    @contextmanager
    def _write(self) -> Iterator[_Connection]:
        with self._lock:
            conn = self._connection()
            if closed_by_server(conn):
                conn = self._reopen()  # nothing of this write sent yet: safe to start afresh
            committing = False
            try:
                with conn.transaction():
                    self._lock_writes(conn)
                    yield _Connection(conn)
                    committing = True
            except psycopg.OperationalError as exc:
                if not lost(conn):
                    raise
                if committing:
                    raise unavailable(exc, "it was lost during COMMIT, so the write may or may not have been "
                                           "applied: check before writing it again") from exc
                raise unavailable(exc, "nothing was written") from exc

    @staticmethod
    def _lock_writes(conn: psycopg.Connection[tuple[Any, ...]]) -> None:
        # Every writing transaction takes this one lock first, so writers commit one at a
        # time. Why: a change-log seq (or audit id) is drawn when the row is inserted but
        # becomes visible at commit; with two writers in flight, seq 8 can commit before
        # seq 7 and a partner who reads `seq > 6` at that moment, then moves its cursor
        # to 8, never sees 7. Serialised, commit order is seq order. It also gives the
        # audit chain a stable "previous entry" and makes duplicate checks race-free.
        # Taken before any read, so under READ COMMITTED every later statement sees all
        # that the previous writer committed.
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (postgres_schema.WRITE_LOCK,))

    def _insert_rows(self, conn: Connection, table: str, columns: Sequence[str],
                     rows: Sequence[Sequence[Any]]) -> None:
        # COPY streams the rows in one statement: about four times the rate of a pipelined
        # INSERT per row (scripts/bench_store.py). Same connection, same open transaction.
        statement = pgsql.SQL("COPY {} ({}) FROM STDIN").format(
            pgsql.Identifier(table), pgsql.SQL(", ").join(pgsql.Identifier(c) for c in columns))
        raw = conn.raw if isinstance(conn, _Connection) else self._connection()
        # The write's own connection: were it lost, a new one would be outside the transaction.
        with raw.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)

    @contextmanager
    def _read(self) -> Iterator[_Connection]:
        with self._lock:
            yield _Connection(self._connection(), self._reopen)
