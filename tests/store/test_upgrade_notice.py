"""Opening a database an earlier hashdb made upgrades its schema, and says so once: from then on
an older hashdb refuses it (migrations.refuse_newer), which an operator otherwise learns only
when one does. A new database, or one already up to date, says nothing. SQLite and PostgreSQL."""

from __future__ import annotations

import logging
from pathlib import Path

import psycopg
import pytest
from sqlite_utils import Database

from hashdb.store import postgres_schema
from hashdb.store.migrations import migrations
from hashdb.store.postgres_store import PostgresStore
from hashdb.store.sqlite_store import SQLiteStore

LAST = postgres_schema.MIGRATIONS[-1][0]


def _notices(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "upgraded" in r.getMessage()]


def test_sqlite_an_earlier_database_is_upgraded_and_says_so_once(tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    assert migrations._migrations[-1].name == LAST  # both stores end with the same migration
    path = tmp_path / "earlier.sqlite"
    earlier = Database(path)
    migrations.apply(earlier, stop_before=LAST)  # what the hashdb before LAST left
    earlier.close()
    with caplog.at_level(logging.WARNING):
        SQLiteStore(path).close()
        assert _notices(caplog) == [f"{path}: upgraded to this hashdb's schema ({LAST}); an older hashdb refuses "
                                    "it from now on (a backup taken before the upgrade still opens there)"]
        caplog.clear()
        SQLiteStore(path).close()  # up to date now
        SQLiteStore(tmp_path / "new.sqlite").close()
        assert _notices(caplog) == []


@pytest.mark.postgres
def test_postgres_an_earlier_database_is_upgraded_and_says_so_once(postgres_dsn: str,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:  # what the hashdb before LAST left
        conn.execute("CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
        for name, ddl in postgres_schema.MIGRATIONS[:-1]:
            conn.execute(ddl.encode())
            conn.execute("INSERT INTO schema_migrations (name, applied_at) VALUES (%s, 'then')", (name,))
    with caplog.at_level(logging.WARNING):
        for _ in range(2):  # the schema is applied with a store's first connection
            store = PostgresStore(postgres_dsn)
            store.counts()
            store.close()
        notices = _notices(caplog)  # once: the second store found it up to date
        assert len(notices) == 1 and notices[0].startswith("PostgreSQL database ")
        assert f"upgraded to this hashdb's schema ({LAST}); an older hashdb refuses it from now on" in notices[0]


@pytest.mark.postgres
def test_postgres_a_new_database_says_nothing(postgres_dsn: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        store = PostgresStore(postgres_dsn)
        store.counts()
        store.close()
    assert _notices(caplog) == []
