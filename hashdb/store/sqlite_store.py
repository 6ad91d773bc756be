"""HashStore over SQLite through sqlite-utils: the embedded default. The queries live in sql.py.

Durability: WAL with synchronous=FULL, so a COMMIT has reached the disk before we answer;
every write runs in BEGIN IMMEDIATE (the write lock is taken up front, so two writers
queue on busy_timeout instead of failing half-way), and a record commits with its
change-log and audit rows or not at all.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlite_utils import Database

from hashdb.store.migrations import migrations
from hashdb.store.console_sql import ConsoleSQL
from hashdb.store.mirror_sql import MirrorSQL
from hashdb.store.sql import SQLStore
from hashdb.store.trust_sql import TrustSQL

BUSY_TIMEOUT_MS = 30_000
# 64 MiB of page cache (negative = KiB): a bulk import touches index pages all over a
# random-hex B-tree, and the 2 MiB default turns that into a re-read per row.
CACHE_KIB = 64 * 1024


class SQLiteStore(ConsoleSQL, MirrorSQL, TrustSQL, SQLStore):
    def __init__(self, db: str | Path | Database) -> None:
        if isinstance(db, Database):
            self.db = db
        else:
            # check_same_thread=False: one connection shared by a threaded server, serialised
            # by self._lock; SQLite itself serialises writers across processes.
            conn = sqlite3.connect(str(db), check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000)
            self.db = Database(conn, execute_plugins=False)
        self._lock = threading.RLock()
        conn = self.db.conn
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        if not self.db.memory:
            self._enable_wal(conn)
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        # Inside the write lock, so two processes opening a fresh file migrate it once: the
        # second waits, then finds nothing pending.
        with self._write():
            migrations.apply(self.db)

    @staticmethod
    def _enable_wal(conn: sqlite3.Connection) -> None:
        # Switching a fresh file to WAL needs an exclusive lock and SQLite does not run the busy
        # handler for it, so a second process opening the same new file can get "database is
        # locked" at once: retry for as long as an ordinary write would wait.
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise
            time.sleep(0.01)

    def close(self) -> None:
        with self._lock:
            self.db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self.db.conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                # A failed COMMIT leaves the transaction open; an error such as SQLITE_FULL may
                # already have rolled it back. Either way the next BEGIN must find none open.
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self.db.conn
