"""Shared fixtures. External resources (../shared/vectors, PostgreSQL) skip with a reason on a
developer's fresh clone, but are required when CI=true so CI can never pass by skipping them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures" / "media"
VECTORS = ROOT.parent / "shared" / "vectors"
from support import IN_CI, require_or_skip  # noqa: F401  (IN_CI: read by test modules)


@pytest.fixture(scope="session")
def vectors() -> Path:
    require_or_skip(VECTORS.is_dir(), f"reference vectors at {VECTORS}")
    return VECTORS


@pytest.fixture(scope="session")
def media() -> Path:
    return FIXTURES


POSTGRES_DSN = os.environ.get("HASHDB_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@cache
def postgres_available() -> bool:
    import psycopg

    try:
        psycopg.connect(POSTGRES_DSN, connect_timeout=3).close()
    except psycopg.OperationalError:
        return False
    return True


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def each_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[object]:
    """A new store of each kind in turn (a SQLite file, a throwaway PostgreSQL schema), closed
    afterwards: for services a rule must hold on with either store."""
    if request.param == "sqlite":
        from hashdb.store.sqlite_store import SQLiteStore

        store: Any = SQLiteStore(tmp_path / "db.sqlite")
    else:
        from hashdb.store.postgres_store import PostgresStore

        store = PostgresStore(request.getfixturevalue("postgres_dsn"))
    yield store
    store.close()


@pytest.fixture
def postgres_dsn() -> Iterator[str]:
    """A DSN whose search_path is a fresh schema, dropped afterwards, so parallel runs and tests
    never see each other's rows. Skips without PostgreSQL; fails in CI."""
    require_or_skip(postgres_available(), f"PostgreSQL at {POSTGRES_DSN} (set HASHDB_TEST_POSTGRES)")
    from hashdb.store.postgres_schema import temporary_schema

    with temporary_schema(POSTGRES_DSN, "hashdb_test") as dsn:
        yield dsn
