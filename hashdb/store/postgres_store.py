"""HashStore over PostgreSQL (psycopg 3), for several API replicas sharing one database.

The queries live in sql.py; this module owns the connection, the write serialisation and the
schema. One connection per store object, guarded by a lock and opened on first use.

Forking servers (gunicorn --preload): create the store after the fork, or call close() before
forking; a connection inherited from the parent anyway is abandoned without being shut down
(shutting it down would end the parent's session too) and the child opens its own.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import psycopg
from psycopg import sql as pgsql

from hashdb.store import postgres_schema
from hashdb.store.console_sql import ConsoleSQL
from hashdb.store.keys_sql import KeysSQL
from hashdb.store.mirror_sql import MirrorSQL
from hashdb.store.parts_sql import RecordPartsSQL
from hashdb.store.sql import Connection, SQLStore
from hashdb.store.trust_sql import TrustSQL

CONNECT_TIMEOUT_S = 10


@lru_cache(maxsize=256)
def to_pyformat(sql: str) -> bytes:
    """sql.py writes `?` placeholders; psycopg wants `%s` (and a literal % doubled)."""
    return sql.replace("%", "%%").replace("?", "%s").encode()


class _Connection:
    """The sql.Connection seam over a psycopg connection."""

    def __init__(self, conn: psycopg.Connection[tuple[Any, ...]]) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = (), /) -> psycopg.Cursor[tuple[Any, ...]]:
        return self._conn.execute(to_pyformat(sql), tuple(params))

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
                # autocommit: a read is its own statement and never leaves a transaction idle
                # between calls; writes open theirs explicitly in _write.
                conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
                try:
                    postgres_schema.apply(conn)
                except BaseException:
                    conn.close()
                    raise
                self._conn, self._pid = conn, os.getpid()
            return conn

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
            with conn.transaction():
                # Every writing transaction takes this one lock first, so writers commit one at a
                # time. Why: a change-log seq (or audit id) is drawn when the row is inserted but
                # becomes visible at commit; with two writers in flight, seq 8 can commit before
                # seq 7 and a partner who reads `seq > 6` at that moment, then moves its cursor
                # to 8, never sees 7. Serialised, commit order is seq order. It also gives the
                # audit chain a stable "previous entry" and makes duplicate checks race-free.
                # Taken before any read, so under READ COMMITTED every later statement sees all
                # that the previous writer committed.
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (postgres_schema.WRITE_LOCK,))
                yield _Connection(conn)

    def _insert_rows(self, conn: Connection, table: str, columns: Sequence[str],
                     rows: Sequence[Sequence[Any]]) -> None:
        # COPY streams the rows in one statement: about four times the rate of a pipelined
        # INSERT per row (scripts/bench_store.py). Same connection, same open transaction.
        statement = pgsql.SQL("COPY {} ({}) FROM STDIN").format(
            pgsql.Identifier(table), pgsql.SQL(", ").join(pgsql.Identifier(c) for c in columns))
        with self._connection().cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)

    @contextmanager
    def _read(self) -> Iterator[_Connection]:
        with self._lock:
            yield _Connection(self._connection())
