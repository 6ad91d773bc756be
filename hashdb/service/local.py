"""Building a HashDB over a database: a SQLite file (the embedded default) or a PostgreSQL DSN
(several API replicas sharing one store). What the CLI, the server and tests share.

Only open_database imports the stores and the service: the CLI checks --db (is_dsn) and reads
the settings before a folder's hashing workers start, which everything imported here would delay."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hashdb.config import Settings
from hashdb.errors import InvalidInput, StoreUnavailable
from hashdb.service.environment import is_dsn as is_dsn  # where the CLI finds it
from hashdb.service.environment import read

if TYPE_CHECKING:
    from hashdb.service import HashDB


DEFAULT_DB = "hashdb.sqlite"


@dataclass(frozen=True, slots=True)
class DatabaseChoice:
    """The database a command opens and what named it (for the line `hashdb serve` prints)."""

    target: str
    source: str  # "--db", "HASHDB_DSN", "HASHDB_DB" or "default"


def choose_database(option: str | Path | None, environ: dict[str, str] | None = None) -> DatabaseChoice:
    """The one rule every command (serve and the rest) follows: `--db` typed on the command line
    (an option beats the environment), else HASHDB_DSN (a PostgreSQL deployment sets it once for
    the server and its operators' commands alike), else HASHDB_DB, else ./hashdb.sqlite.
    `option`: --db when given on the command line, else None."""
    if option is not None:
        return DatabaseChoice(str(option), "--db")
    for variable in ("HASHDB_DSN", "HASHDB_DB"):
        value = read(variable, environ)
        if value:
            return DatabaseChoice(str(value), variable)
    return DatabaseChoice(DEFAULT_DB, "default")


def describe_database(target: str | Path) -> str:
    """The database in words, for a log line: a DSN's host, port, database and user, never its
    password; a SQLite file's full path."""
    if not is_dsn(target):
        return f"SQLite database {Path(target).resolve()}"
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts = conninfo_to_dict(str(target))
    except Exception:  # psycopg's ProgrammingError: the connection will say what is wrong
        return "PostgreSQL database (a DSN libpq cannot parse)"
    where = f"{parts.get('host') or 'localhost'}:{parts.get('port') or 5432}"
    return f"PostgreSQL database {parts.get('dbname') or parts.get('user') or '?'} at {where} as user {parts.get('user') or '?'}"


def index_dir(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".index")


def unused_index_dir(target: str | Path) -> str | None:
    """What to tell an operator who set HASHDB_INDEX_DIR for a SQLite database, or None: it is
    read for PostgreSQL only (open_database), a SQLite file's snapshots are always beside it,
    and nothing else would say the setting went unused."""
    if is_dsn(target) or not read("HASHDB_INDEX_DIR"):
        return None
    return (f"HASHDB_INDEX_DIR applies to a PostgreSQL database only: the index snapshots of {target} are kept "
            f"beside it, in {index_dir(Path(target))}")


def is_empty_file(target: str | Path) -> bool:
    """A zero-byte file (what `touch` or a shell's `: > FILE` leaves): SQLite opens it as an
    empty database, so it holds no database any more than a missing file does."""
    path = Path(target)
    return not is_dsn(target) and path.is_file() and path.stat().st_size == 0


def require_database(target: str | Path, creates: str) -> None:
    """Refuse a SQLite --db that names no file, or an empty one, in one line that says which
    command `creates` one. Opening either would make a new, empty database: a mistyped --db
    would then be answered "no match" by a lookup, or served to clients as if it were the list."""
    if is_dsn(target):
        return
    if not Path(target).exists():
        raise StoreUnavailable(f"no database at {target} (check --db or HASHDB_DB; {creates})")
    if is_empty_file(target):
        raise StoreUnavailable(f"no database at {target}: the file is empty (check --db or HASHDB_DB; {creates})")


def settings_from_env() -> Settings:
    """Defaults, with the operator settings the environment may change."""
    return Settings(webhook_allow_loopback=bool(read("HASHDB_WEBHOOK_ALLOW_LOOPBACK")),
                    share_keypoints=bool(read("HASHDB_SHARE_KEYPOINTS")),
                    # on unless set off: a member that may not keep keypoints stores and matches none
                    keypoints=read("HASHDB_KEYPOINTS") is not False)


def open_database(target: str | Path, settings: Settings | None = None,
                  taxonomy_path: str | None = None, write_timeout: float | None = None) -> HashDB:
    """Open (creating the schema if needed) a SQLite file, index snapshots beside it, or a
    PostgreSQL DSN, index snapshots in HASHDB_INDEX_DIR if set (else rebuilt at start)."""
    import sqlite3

    from hashdb.index.indexset import IndexSet
    from hashdb.service import HashDB
    from hashdb.store.sqlite_store import SQLiteStore
    from hashdb.trust import keys
    from hashdb.trust.taxonomy import Taxonomy

    taxonomy = Taxonomy.load(taxonomy_path or read("HASHDB_TAXONOMY"))
    secret_setting = read("HASHDB_SECRET")
    if is_dsn(target):
        from hashdb.store.postgres_store import PostgresStore

        # Replicas must agree on the secret that API keys are hashed under, so no per-file default.
        if not secret_setting:
            raise InvalidInput("set HASHDB_SECRET (the same on every replica) to use PostgreSQL")
        try:
            pg = PostgresStore(str(target))
        except Exception as exc:  # psycopg's errors: imported only with the PostgreSQL store
            raise StoreUnavailable(f"cannot open the PostgreSQL database: {exc}".strip()) from exc
        directory = read("HASHDB_INDEX_DIR")
        return HashDB(settings or settings_from_env(), pg, IndexSet(pg, Path(directory) if directory else None),
                      taxonomy, server_secret=keys.load_server_secret(secret_setting, Path()))
    path = Path(target)
    try:
        store = SQLiteStore(path) if write_timeout is None else SQLiteStore(path, write_timeout)
    except sqlite3.DatabaseError as exc:
        raise StoreUnavailable(f"cannot open the database {path}: {exc}") from exc
    secret = keys.load_server_secret(secret_setting, path.with_name(path.name + ".secret"))
    return HashDB(settings or settings_from_env(), store, IndexSet(store, index_dir(path)), taxonomy,
                  server_secret=secret)


@dataclass(frozen=True, slots=True)
class Backup:
    """What `hashdb backup` wrote."""

    path: str
    bytes: int
    records: int
    feed_entries: int
    secret: str | None  # the server secret's copy beside it, when the database has a .secret file


def backup_database(target: str | Path, dest: str | Path) -> Backup:
    """A consistent copy of a SQLite database, safe while `hashdb serve` writes to it, and a
    copy of its `.secret` file beside it: without the secret the copy authenticates no key."""
    from hashdb.store.sqlite_store import backup_file

    if is_dsn(target):
        raise InvalidInput("a PostgreSQL database is backed up with its own tools (pg_dump), not hashdb backup")
    require_database(target, "`hashdb keys create` or `hashdb submit --db` creates one")
    source, out = Path(target), Path(dest)
    if out.is_dir():
        out = out / source.name
    secret, secret_out = source.with_name(source.name + ".secret"), out.with_name(out.name + ".secret")
    # Never over an existing file: a backup that replaced the last good one, or the database itself.
    for path in (out, secret_out):
        if path.exists() or path.is_symlink():
            raise InvalidInput(f"{path} already exists: name a new file for the backup")
    if not out.parent.is_dir():
        raise InvalidInput(f"no folder {out.parent} to write the backup in")
    records, entries = backup_file(source, out)
    copied = None
    if secret.is_file():
        # Created private (0600), as the server makes it: never readable by others for a moment.
        fd = os.open(secret_out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(secret.read_bytes())
            handle.flush()
            os.fsync(handle.fileno())
        copied = str(secret_out)
    return Backup(str(out), out.stat().st_size, records, entries, copied)
