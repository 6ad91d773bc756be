"""HashStore over SQLite through sqlite-utils: the embedded default. The queries live in sql.py.

Durability: WAL with synchronous=FULL, so a COMMIT has reached the disk before we answer;
every write runs in BEGIN IMMEDIATE (the write lock is taken up front, so two writers
queue on busy_timeout instead of failing half-way), and a record commits with its
change-log and audit rows or not at all.

Reads never wait for writers: each thread reads through its own connection, and WAL gives
a reader the last committed state while another connection (or process: an import) holds
the write lock. Only writes share the one write connection, and a write that cannot get
the lock within `write_timeout` raises Busy (the API's 503), never a bare "locked" error.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlite_utils import Database

from hashdb.errors import Busy, InvalidInput, StoreUnavailable
from hashdb.types import Change
from hashdb.store.migrations import refuse_foreign, refuse_newer, upgrade, upgrade_notice
from hashdb.store.console_sql import ConsoleSQL
from hashdb.store.keys_sql import KeysSQL
from hashdb.store.mirror_sql import MirrorSQL
from hashdb.store.parts_sql import RecordPartsSQL
from hashdb.store.sql import SQLStore
from hashdb.store.trust_sql import TrustSQL

BUSY_TIMEOUT_MS = 30_000
# 64 MiB of page cache (negative = KiB): a bulk import touches index pages all over a
# random-hex B-tree, and the 2 MiB default turns that into a re-read per row.
CACHE_KIB = 64 * 1024
# Each reading thread's page cache: lookups and key checks touch a few pages per request.
READ_CACHE_KIB = 8 * 1024
# Reads a thread remembers as settled (see _settled) before it starts over.
SETTLED_MAX = 4096

log = logging.getLogger(__name__)


class SQLiteStore(ConsoleSQL, MirrorSQL, TrustSQL, KeysSQL, RecordPartsSQL, SQLStore):
    def __init__(self, db: str | Path | Database, write_timeout: float = BUSY_TIMEOUT_MS / 1000) -> None:
        self.write_timeout = write_timeout
        self._path: str | None = None
        if isinstance(db, Database):
            self.db = db
        else:
            # check_same_thread=False: one write connection shared by a threaded server,
            # serialised by self._lock; SQLite itself serialises writers across processes.
            conn = sqlite3.connect(str(db), check_same_thread=False, timeout=write_timeout)
            self.db = Database(conn, execute_plugins=False)
            if not self.db.memory:
                self._path = str(db)
        self._lock = threading.RLock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        conn = self.db.conn
        try:
            refuse_foreign(self.db, db)  # before WAL mode, which would already change its file
            refuse_newer(self.db, db)
        except Exception:
            conn.close()
            raise
        conn.execute(f"PRAGMA busy_timeout={int(write_timeout * 1000)}")
        if not self.db.memory:
            self._enable_wal(conn)
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        # Inside the write lock, so two processes opening a fresh file migrate it once: the
        # second waits, then finds nothing pending.
        with self._write():
            upgraded = upgrade(self.db)
        if upgraded:
            log.warning(upgrade_notice(db, upgraded))

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
        with self._readers_lock:
            readers, self._readers = self._readers, []
        for reader in readers:
            reader.close()
        with self._lock:
            self.db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        if not self._lock.acquire(timeout=self.write_timeout):
            raise Busy(f"the database is busy with other writes (waited {self.write_timeout:g} s); retry")
        depth = getattr(self._local, "writing", 0)
        self._local.writing = depth + 1
        try:
            conn = self.db.conn
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as error:
                if "locked" in str(error) or "busy" in str(error):
                    raise Busy(f"another process holds the database's write lock (waited "
                               f"{self.write_timeout:g} s); retry") from None
                raise
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                # A failed COMMIT leaves the transaction open; an error such as SQLITE_FULL may
                # already have rolled it back. Either way the next BEGIN must find none open.
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        finally:
            self._local.writing = depth
            self._lock.release()

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        writing: int = getattr(self._local, "writing", 0)
        if self._path is None or writing:
            # In memory there is one connection; inside a write, reads must see its own rows.
            with self._lock:
                yield self.db.conn
            return
        yield self._reader()

    # -- the two reads of every lookup, answered from memory while nothing was committed ---------

    def key_revoked(self, key_id: int) -> bool:
        version = self._data_version()
        if version is not None and ("key", key_id) in self._settled(version):
            return False
        revoked = super().key_revoked(key_id)
        if version is not None and not revoked:
            self._settled(version).add(("key", key_id))
        return revoked

    def changes_since(self, seq: int, limit: int) -> list[Change]:
        version = self._data_version()
        if version is not None and limit >= 1 and ("changes", seq) in self._settled(version):
            return []
        changes = super().changes_since(seq, limit)
        if version is not None and not changes:
            self._settled(version).add(("changes", seq))
        return changes

    def _data_version(self) -> tuple[sqlite3.Connection, int] | None:
        """This thread's reader and SQLite's data_version on it, which changes whenever another
        connection (this process's writer, another process) commits; None where reads go
        through the writer (in memory, inside a write), whose own commits do not change it.

        Every request checks its key for revocation and every lookup asks the change log for
        changes since its index's last: each a query of about 14 us on a 2-core AMD machine,
        the same answer until something is committed. PRAGMA data_version costs about 5."""
        writing: int = getattr(self._local, "writing", 0)
        if self._path is None or writing:
            return None
        reader = self._reader()
        return reader, int(reader.execute("PRAGMA data_version").fetchone()[0])

    def _settled(self, version: tuple[sqlite3.Connection, int]) -> set[tuple[str, int]]:
        """The reads this thread found settled (a key not revoked, no change after a seq) at
        `version`: read with the version taken before them, so a commit during the read makes
        the next version differ and the read is asked again. A revocation or a retraction is
        a commit: it is seen from the next request on, as without this memory."""
        memo: tuple[tuple[sqlite3.Connection, int], set[tuple[str, int]]] | None = getattr(self._local, "settled", None)
        if memo is None or memo[0] != version or len(memo[1]) >= SETTLED_MAX:
            memo = self._local.settled = (version, set())
        return memo[1]

    def _reader(self) -> sqlite3.Connection:
        reader: sqlite3.Connection | None = getattr(self._local, "reader", None)
        if reader is not None and getattr(self._local, "pid", None) == os.getpid():
            return reader
        assert self._path is not None
        # check_same_thread=False only so close() may close it from another thread; it is
        # used by the thread that opened it alone.
        reader = sqlite3.connect(self._path, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000)
        reader.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        reader.execute(f"PRAGMA cache_size=-{READ_CACHE_KIB}")
        reader.execute("PRAGMA query_only=1")
        self._local.reader = reader
        self._local.pid = os.getpid()
        with self._readers_lock:
            self._readers.append(reader)
        return reader


def backup_file(source: Path, dest: Path) -> tuple[int, int]:
    """A consistent copy of the SQLite database at `source`, taken through SQLite's online
    backup while servers may be writing to it: the pages of the last commit, the ones still in
    the -wal file included (a copy of the main file alone missed them: 23 of 415 feed entries,
    and its shorter audit chain still verified). Written beside `dest` and renamed into place,
    so `dest` only ever holds a whole, checked copy. Returns its records and feed entries."""
    # Read-only: a backup never migrates or otherwise changes the database it copies.
    src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    try:
        src.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        if src.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'records'").fetchone() is None:
            raise InvalidInput(f"{source} is not a hashdb database (it has no records table)")
        out = sqlite3.connect(tmp)
        try:
            # All pages in one step, under one read transaction: a snapshot of one commit.
            # (In steps, every write in between would restart the copy of a busy database.)
            src.backup(out, pages=-1)
            check = out.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise StoreUnavailable(f"the copy of {source} failed its check ({check}); nothing written")
            counts = out.execute("SELECT (SELECT COUNT(*) FROM records), (SELECT COUNT(*) FROM changes)").fetchone()
        finally:
            out.close()
        with open(tmp, "rb") as written:
            os.fsync(written.fileno())
        os.replace(tmp, dest)
        directory = os.open(dest.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        return int(counts[0]), int(counts[1])
    except sqlite3.DatabaseError as exc:
        raise StoreUnavailable(f"cannot back up {source}: {exc}") from exc
    finally:
        src.close()
        tmp.unlink(missing_ok=True)
