"""The SQLite and PostgreSQL schemas are the same schema: each store's migrations are applied to
a real database, each database is asked what it holds (SQLite's PRAGMAs, PostgreSQL's catalog),
and the two answers, put in one vocabulary, must be equal: tables, columns in order with their
types, NOT NULL and defaults, primary keys, how ids are generated, unique keys, foreign keys,
CHECK constraints and every other index with its columns and WHERE clause.

Types compare by SQLite's storage class: INTEGER and BIGINT are INTEGER (SQLite's INTEGER is
64-bit either way), DOUBLE PRECISION is REAL. A unique key compares as a set of columns: its
column order is a per-engine choice of index lookup order (see postgres_schema.M001_CORE), not
a different constraint. The migration bookkeeping tables differ by design and are left out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from sqlite_utils import Database

from hashdb.store import postgres_schema
from hashdb.store.migrations import migrations

pytestmark = pytest.mark.postgres

BOOKKEEPING = {"_sqlite_migrations", "sqlite_sequence", "schema_migrations"}
TYPES = {"integer": "INTEGER", "bigint": "INTEGER", "text": "TEXT", "real": "REAL", "double precision": "REAL",
         "blob": "BLOB", "bytea": "BLOB"}


@dataclass
class Table:
    columns: list[tuple[str, str, bool, str | None]] = field(default_factory=list)  # name, type, not null, default
    primary_key: tuple[str, ...] = ()
    generated: dict[str, str] = field(default_factory=dict)  # column -> "always" | "by default"
    unique: set[frozenset[str]] = field(default_factory=set)
    foreign_keys: set[tuple[str, str, str]] = field(default_factory=set)
    checks: set[tuple[frozenset[str], frozenset[str]]] = field(default_factory=set)  # columns, literals
    indexes: dict[str, tuple[tuple[str, ...], str]] = field(default_factory=dict)  # name -> columns, where


def _default(text: str | None) -> str | None:
    return None if text is None else re.sub(r"::[a-z ]+", "", text).strip()


def _where(text: str) -> str:
    text = re.sub(r"::[a-z ]+", "", text)
    return " ".join(text.replace("(", " ").replace(")", " ").split()).lower()


def _check(text: str, columns: list[str]) -> tuple[frozenset[str], frozenset[str]]:
    """A CHECK as (columns it names, string literals it allows): every check here is `col IN (...)`."""
    words = set(re.findall(r"[a-z_]+", re.sub(r"'[^']*'", "", text)))
    return frozenset(c for c in columns if c in words), frozenset(re.findall(r"'([^']*)'", text))


def sqlite_schema(path: Path) -> dict[str, Table]:
    db = Database(path)
    migrations.apply(db)
    tables: dict[str, Table] = {}
    for name, sql in db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'").fetchall():
        if name in BOOKKEEPING:
            continue
        table = tables[name] = Table()
        info = db.execute(f"PRAGMA table_info({name})").fetchall()
        for _, col, ctype, notnull, default, pk in info:
            table.columns.append((col, TYPES[ctype.lower()], bool(notnull or pk), _default(default)))
        table.primary_key = tuple(col for *_, col, _t, _n, _d, pk in sorted(info, key=lambda r: r[5]) if pk)
        if len(table.primary_key) == 1 and dict((r[1], r[2]) for r in info)[table.primary_key[0]] == "INTEGER":
            # An INTEGER PRIMARY KEY is the rowid; AUTOINCREMENT also forbids reusing a number.
            table.generated[table.primary_key[0]] = "always" if "AUTOINCREMENT" in sql.upper() else "by default"
        for fk in db.execute(f"PRAGMA foreign_key_list({name})").fetchall():
            table.foreign_keys.add((fk[3], fk[2], fk[4]))
        columns = [r[1] for r in info]
        for body in re.findall(r"CHECK \(((?:[^()]|\([^()]*\))*)\)", sql):
            table.checks.add(_check(body, columns))
        for _, index, unique, origin, _partial in db.execute(f"PRAGMA index_list({name})").fetchall():
            cols = tuple(r[2] for r in db.execute(f"PRAGMA index_info({index})").fetchall())
            if origin == "u":
                table.unique.add(frozenset(cols))
            elif origin == "c":
                create = db.execute("SELECT sql FROM sqlite_master WHERE name = ?", [index]).fetchone()[0]
                where = create.split(" WHERE ", 1)[1] if " WHERE " in create else ""
                table.indexes[index] = (cols, _where(where))
    db.close()
    return tables


def postgres_schema_of(dsn: str) -> dict[str, Table]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        postgres_schema.apply(conn)
        tables: dict[str, Table] = {}
        rows = conn.execute(
            "SELECT table_name, column_name, data_type, is_nullable, column_default, identity_generation"
            " FROM information_schema.columns WHERE table_schema = current_schema()"
            " ORDER BY table_name, ordinal_position").fetchall()
        for name, col, ctype, nullable, default, identity in rows:
            if name in BOOKKEEPING:
                continue
            table = tables.setdefault(name, Table())
            table.columns.append((col, TYPES[ctype], nullable == "NO", _default(default)))
            if identity:
                table.generated[col] = identity.lower()
        constraints = conn.execute(
            "SELECT c.conrelid::regclass::text, c.contype, pg_get_constraintdef(c.oid),"
            " ARRAY(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY AS k(n, i)"
            "       JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.i)"
            " FROM pg_constraint c JOIN pg_namespace s ON s.oid = c.connamespace"
            " WHERE s.nspname = current_schema()").fetchall()
        for name, kind, definition, cols in constraints:
            if name in BOOKKEEPING:
                continue
            table = tables[name]
            if kind == "p":
                table.primary_key = tuple(cols)
            elif kind == "u":
                table.unique.add(frozenset(cols))
            elif kind == "f":
                ref = re.fullmatch(r"FOREIGN KEY \((\w+)\) REFERENCES (\w+)\((\w+)\)", definition)
                assert ref is not None, definition
                table.foreign_keys.add((ref[1], ref[2], ref[3]))
            elif kind == "c":
                table.checks.add(_check(definition, [c[0] for c in table.columns]))
        indexes = conn.execute(
            "SELECT t.relname, i.relname, pg_get_indexdef(i.oid) FROM pg_index x"
            " JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid"
            " JOIN pg_namespace s ON s.oid = t.relnamespace"
            " WHERE s.nspname = current_schema()"
            " AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)").fetchall()
        for name, index, definition in indexes:
            if name in BOOKKEEPING:
                continue
            shape = re.fullmatch(r"CREATE (?:UNIQUE )?INDEX \w+ ON [\w.]+ USING btree \(([^)]*)\)(?: WHERE (.*))?",
                                 definition)
            assert shape is not None, definition
            tables[name].indexes[index] = (tuple(c.strip() for c in shape[1].split(",")), _where(shape[2] or ""))
    return tables


def differences(a: dict[str, Table], b: dict[str, Table]) -> list[str]:
    out = [f"table {t} only in {'SQLite' if t in a else 'PostgreSQL'}" for t in sorted(a.keys() ^ b.keys())]
    for name in sorted(a.keys() & b.keys()):
        for part in Table.__dataclass_fields__:
            left, right = getattr(a[name], part), getattr(b[name], part)
            if left != right:
                out.append(f"{name}.{part}: SQLite {left!r} != PostgreSQL {right!r}")
    return out


def test_sqlite_and_postgres_schemas_are_equal(tmp_path: Path, postgres_dsn: str) -> None:
    sqlite = sqlite_schema(tmp_path / "schema.sqlite")
    postgres = postgres_schema_of(postgres_dsn)
    assert differences(sqlite, postgres) == []
    # The comparison saw the whole schema, not an empty or partial one.
    # with record_counts (m006), signin_links (m007), derived_hashes (m010), tmk_hashes (m011), image_keypoints (m018)
    assert len(sqlite) == 23
    assert {"record_counts", "signin_links", "derived_hashes", "tmk_hashes", "database_identity",
            "image_keypoints"} <= set(sqlite)
    assert [c[:2] for c in sqlite["image_keypoints"].columns] == [
        ("id", "INTEGER"), ("record_id", "INTEGER"), ("data", "BLOB")]
    assert [c[:2] for c in sqlite["tmk_hashes"].columns] == [
        ("id", "INTEGER"), ("record_id", "INTEGER"), ("average", "BLOB"), ("features", "BLOB")]
    assert sqlite["records"].checks == {(frozenset({"status"}),
                                         frozenset({"active", "disputed", "quarantined", "retracted"}))}
    assert sqlite["changes"].generated == {"seq": "always"}
    assert sqlite["webhook_outbox"].indexes == {"webhook_outbox_due": (("next_at",), "state = 'pending'"),
                                                "webhook_outbox_pending": (("webhook_id", "next_at"),
                                                                           "state = 'pending'")}


@pytest.mark.parametrize("change", [
    "ALTER TABLE webhooks ADD COLUMN note TEXT",
    "ALTER TABLE records ALTER COLUMN quality TYPE TEXT",
    "ALTER TABLE feedback ALTER COLUMN note DROP DEFAULT",
    "ALTER TABLE orgs DROP CONSTRAINT orgs_name_key",
    "ALTER TABLE incidents DROP CONSTRAINT incidents_status_check,"
    " ADD CHECK (status IN ('open', 'closed', 'archived'))",
    "DROP INDEX video_frames_record; CREATE INDEX video_frames_record ON video_frames (record_id, value)",
    "DROP INDEX records_quarantined; CREATE INDEX records_quarantined ON records (id) WHERE status = 'retracted'",
    "ALTER TABLE mirror_records DROP CONSTRAINT mirror_records_record_id_fkey",
])
def test_any_drift_is_found(tmp_path: Path, postgres_dsn: str, change: str) -> None:
    sqlite = sqlite_schema(tmp_path / "schema.sqlite")
    postgres_schema_of(postgres_dsn)
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(change.encode())
    assert differences(sqlite, postgres_schema_of(postgres_dsn)) != []
