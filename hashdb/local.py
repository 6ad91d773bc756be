"""Building a HashDB over a local database file: what the CLI, the server and tests share."""

from __future__ import annotations

import os
from pathlib import Path

from hashdb import keys
from hashdb.config import Settings
from hashdb.indexes import IndexSet
from hashdb.service import HashDB
from hashdb.store.sqlite_store import SQLiteStore
from hashdb.taxonomy import Taxonomy


def index_dir(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".index")


def open_database(db_path: str | Path, settings: Settings | None = None,
                  taxonomy_path: str | None = None) -> HashDB:
    """Open (creating if needed) the SQLite database at `db_path`, with its index snapshots beside it."""
    path = Path(db_path)
    store = SQLiteStore(path)
    secret = keys.load_server_secret(os.environ.get("HASHDB_SECRET"), path.with_name(path.name + ".secret"))
    return HashDB(
        settings or Settings(),
        store,
        IndexSet(store, index_dir(path)),
        Taxonomy.load(taxonomy_path or os.environ.get("HASHDB_TAXONOMY") or None),
        server_secret=secret,
    )
