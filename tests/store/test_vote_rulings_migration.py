"""A database made before rulings on disputes (migration m020) keeps its votes, every one of
them standing, and its disputed records can be upheld from then on: SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest
from store_helpers import actor, pdq, record

from hashdb.store.postgres_store import PostgresStore
from hashdb.store.sql import SQLStore
from hashdb.store.sqlite_store import SQLiteStore
from hashdb.types import Votes


def _disputed_with_votes(store: SQLStore) -> int:
    acme = actor(store, "Acme")
    rid = store.add_records([record(pdq(1))], acme)[0].id
    store.set_feedback(rid, actor(store, "Globex"), "disagree", "not ours")
    store.set_feedback(rid, actor(store, "Initech"), "false_positive", "")
    store.set_status(rid, "disputed", acme, "votes")
    return rid


def _back_to_m019_sqlite(path: Path) -> None:
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("ALTER TABLE feedback DROP COLUMN overruled_at")
        conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm020_vote_rulings'")
    conn.close()


def _back_to_m019_postgres(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("ALTER TABLE feedback DROP COLUMN overruled_at")
        conn.execute("DELETE FROM schema_migrations WHERE name = 'm020_vote_rulings'")


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_an_existing_databases_votes_all_stand_and_its_disputes_can_be_upheld(kind, request, tmp_path):
    if kind == "sqlite":
        path = tmp_path / "db.sqlite"

        def opened() -> SQLStore:
            return SQLiteStore(path)

        def downgrade() -> None:
            _back_to_m019_sqlite(path)
    else:
        dsn = request.getfixturevalue("postgres_dsn")

        def opened() -> SQLStore:
            return PostgresStore(dsn)

        def downgrade() -> None:
            _back_to_m019_postgres(dsn)

    store = opened()
    rid = _disputed_with_votes(store)
    votes = store.votes([rid])[rid]
    store.close()
    downgrade()
    store = opened()
    try:
        assert store.votes([rid])[rid] == votes
        assert all(v.overruled_at is None for v in votes)
        assert store.standing_votes(rid) == Votes(0, 1, 1)
        upheld = store.uphold(rid, actor(store, "Root", "admin"), "reviewed")
        assert (upheld.status, upheld.disagree, upheld.false_positive) == ("active", 1, 1)
        assert store.standing_votes(rid) == Votes()
    finally:
        store.close()
