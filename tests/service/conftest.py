from __future__ import annotations

import pytest

from hashdb.config import Settings
from hashdb.index.indexset import IndexSet
from hashdb.service import HashDB
from hashdb.store.sqlite_store import SQLiteStore
from support import INDEX_FACTORY


@pytest.fixture
def service(tmp_path):
    store = SQLiteStore(tmp_path / "db.sqlite")
    db = HashDB(Settings(), store, IndexSet(store, tmp_path / "index", factory=INDEX_FACTORY), server_secret=b"s" * 32)
    db.load_index()
    yield db
    store.close()




@pytest.fixture
def any_service(each_store, tmp_path):
    """The service over each store in turn: a rule that reads or writes the store holds on both."""
    db = HashDB(Settings(), each_store, IndexSet(each_store, tmp_path / "index", factory=INDEX_FACTORY),
                server_secret=b"s" * 32)
    db.load_index()
    return db
