"""The `store` fixture: every HashStore implementation in turn, each fresh for one test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlite_utils import Database

from hashdb.store.sql import SQLStore

STORES = ["sqlite", "sqlite-memory", pytest.param("postgres", marks=pytest.mark.postgres)]


def open_store(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> SQLStore:
    from hashdb.store.postgres_store import PostgresStore
    from hashdb.store.sqlite_store import SQLiteStore

    if kind == "sqlite":
        return SQLiteStore(tmp_path / "store.sqlite")
    if kind == "sqlite-memory":
        return SQLiteStore(Database(memory=True))
    return PostgresStore(request.getfixturevalue("postgres_dsn"))


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SQLStore]:
    opened = open_store(request.param, request, tmp_path)
    yield opened
    opened.close()
