"""Fixtures for the trust-and-safety tests."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from trust_helpers import Run


@pytest.fixture
def run(tmp_path: Path) -> Run:
    return Run(tmp_path / "db.sqlite")


@pytest.fixture
def make_service(tmp_path: Path):
    """HashDB over a fresh SQLite file with the given Settings overrides."""
    from hashdb.config import Settings
    from hashdb.index.indexset import IndexSet
    from hashdb.service import HashDB
    from hashdb.store.sqlite_store import SQLiteStore
    from support import INDEX_FACTORY

    stores = []

    def make(**overrides):
        store = SQLiteStore(tmp_path / f"db{len(stores)}.sqlite")
        stores.append(store)
        # Test receivers listen on loopback, which an operator must allow (webhook_allow_loopback).
        service = HashDB(Settings(**{"webhook_allow_loopback": True, **overrides}), store,
                         IndexSet(store, tmp_path / f"index{len(stores)}", factory=INDEX_FACTORY),
                         server_secret=b"s" * 32)
        service.load_index()
        return service

    yield make
    for store in stores:
        store.close()


POSTGRES_DSN = os.environ.get("HASHDB_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def _postgres_up() -> bool:
    try:
        import psycopg

        psycopg.connect(POSTGRES_DSN, connect_timeout=3).close()
        return True
    except Exception:  # any reason at all means "not available here"
        return False


@pytest.fixture(params=["sqlite", "postgres"])
def any_store(request, tmp_path: Path):
    """Each store in turn; PostgreSQL in a throwaway schema (skipped outside CI when absent)."""
    if request.param == "sqlite":
        from hashdb.store.sqlite_store import SQLiteStore

        store = SQLiteStore(tmp_path / "store.sqlite")
        yield store
        store.close()
        return
    if not _postgres_up():
        # The same rule as tests/conftest.py: required in CI, skipped with a reason elsewhere.
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"PostgreSQL at {POSTGRES_DSN} is required in CI but is not available")
        pytest.skip(f"PostgreSQL at {POSTGRES_DSN} not available")
    import psycopg
    from psycopg.conninfo import make_conninfo

    from hashdb.store.postgres_store import PostgresStore

    schema = f"hashdb_trust_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}".encode())
    store = PostgresStore(make_conninfo(POSTGRES_DSN, options=f"-c search_path={schema}"))
    try:
        yield store
    finally:
        store.close()
        with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE".encode())
