"""HashStore over SQLite through sqlite-utils: the embedded default. Returns domain types, never rows.

Durability: WAL with synchronous=FULL, so a COMMIT has reached the disk before we answer;
every write runs in BEGIN IMMEDIATE (the write lock is taken up front, so two writers
queue on busy_timeout instead of failing half-way), and a record commits with its
change-log and audit rows or not at all.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from hashdb.errors import Conflict, NotFound
from hashdb.store.migrations import migrations
from hashdb.store.rows import (
    GENESIS_HASH,
    RECORD_COLUMNS,
    audit_hash,
    now,
    outcomes_from_json,
    outcomes_to_json,
    record_from_row,
    record_values,
)
from hashdb.types import (
    ApiKey,
    AuditEntry,
    Change,
    HashRecord,
    NewRecord,
    Organisation,
    Principal,
    SubmitOutcome,
)

BUSY_TIMEOUT_MS = 30_000


class SQLiteStore:
    def __init__(self, db: str | Path | Database) -> None:
        if isinstance(db, Database):
            self.db = db
        else:
            # check_same_thread=False: one connection shared by a threaded server, serialised
            # by self._lock; SQLite itself serialises writers across processes.
            conn = sqlite3.connect(str(db), check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000)
            self.db = Database(conn, execute_plugins=False)
        self._lock = threading.RLock()
        conn = self.db.conn
        if not self.db.memory:
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys=ON")
        with self._lock:
            migrations.apply(self.db)

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self.db.conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._lock:
            cursor = self.db.conn.execute(sql, tuple(params))
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row)) for row in cursor.fetchall()]

    # organisations and keys -------------------------------------------------------------

    def ensure_org(self, name: str) -> Organisation:
        with self._write() as conn:
            conn.execute("INSERT OR IGNORE INTO orgs (name, created_at) VALUES (?, ?)", (name, now()))
            (org_id,) = conn.execute("SELECT id FROM orgs WHERE name = ?", (name,)).fetchone()
        return Organisation(int(org_id), name)

    def get_org(self, name: str) -> Organisation | None:
        rows = self._rows("SELECT id, name FROM orgs WHERE name = ?", (name,))
        return Organisation(int(rows[0]["id"]), rows[0]["name"]) if rows else None

    def create_api_key(self, org_id: int, role: str, prefix: str, secret_hash: str) -> ApiKey:
        with self._write() as conn:
            cursor = conn.execute(
                "INSERT INTO api_keys (org_id, role, prefix, secret_hash, created_at) VALUES (?, ?, ?, ?, ?)",
                (org_id, role, prefix, secret_hash, now()),
            )
            key_id = int(cursor.lastrowid or 0)
            self._audit(conn, org_id, None, "key.create", f"key:{key_id}", json.dumps({"role": role}))
        key = self._key_where("k.id = ?", (key_id,))
        assert key is not None  # just inserted in a committed transaction
        return key

    def _key_where(self, where: str, params: Sequence[Any]) -> ApiKey | None:
        rows = self._rows(
            f"SELECT k.*, o.name AS org_name FROM api_keys k JOIN orgs o ON o.id = k.org_id WHERE {where}",
            params,
        )
        if not rows:
            return None
        r = rows[0]
        return ApiKey(int(r["id"]), int(r["org_id"]), r["org_name"], r["role"], r["prefix"],
                      r["secret_hash"], r["created_at"], r["revoked_at"])

    def find_api_key(self, prefix: str) -> ApiKey | None:
        return self._key_where("k.prefix = ?", (prefix,))

    def list_api_keys(self) -> list[ApiKey]:
        rows = self._rows("SELECT k.id FROM api_keys k ORDER BY k.id")
        return [k for r in rows if (k := self._key_where("k.id = ?", (r["id"],))) is not None]

    def revoke_api_key(self, key_id: int, actor: Principal) -> ApiKey:
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?", (now(), key_id)
            )
            if cursor.rowcount == 0:
                raise NotFound(f"no API key with id {key_id}")
            self._audit(conn, actor.org_id, actor.key_id, "key.revoke", f"key:{key_id}", "")
        key = self._key_where("k.id = ?", (key_id,))
        assert key is not None
        return key

    # records ------------------------------------------------------------------------------

    def add_records(
        self,
        records: Sequence[NewRecord],
        actor: Principal,
        idempotency_key: str | None = None,
        request_digest: str = "",
    ) -> list[SubmitOutcome]:
        with self._write() as conn:
            if idempotency_key is not None:
                seen = conn.execute(
                    "SELECT request_digest, response FROM idempotency WHERE org_id = ? AND key = ?",
                    (actor.org_id, idempotency_key),
                ).fetchone()
                if seen is not None:
                    if seen[0] != request_digest:
                        raise Conflict("this idempotency key was already used for a different request")
                    return outcomes_from_json(seen[1])
            at = now()
            outcomes = [self._add_one(conn, record, actor, at) for record in records]
            if idempotency_key is not None:
                conn.execute(
                    "INSERT INTO idempotency (org_id, key, request_digest, response, created_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (actor.org_id, idempotency_key, request_digest, outcomes_to_json(outcomes), at),
                )
            added = sum(not o.duplicate for o in outcomes)
            self._audit(conn, actor.org_id, actor.key_id, "hashes.submit", f"batch:{len(records)}",
                        json.dumps({"added": added, "ids": [o.id for o in outcomes]}))
        return outcomes

    def _add_one(self, conn: sqlite3.Connection, record: NewRecord, actor: Principal, at: str) -> SubmitOutcome:
        existing = conn.execute(
            "SELECT id, status FROM records WHERE signal = ? AND value = ? AND org_id = ?",
            (record.hash.signal, record.hash.hex, actor.org_id),
        ).fetchone()
        if existing is not None:
            return SubmitOutcome(int(existing[0]), existing[1], duplicate=True)
        values = record_values(record, actor.org_id, at)
        cursor = conn.execute(
            f"INSERT INTO records ({', '.join(values)}) VALUES ({', '.join('?' for _ in values)})",
            tuple(values.values()),
        )
        record_id = int(cursor.lastrowid or 0)
        if record.frames:
            conn.executemany(
                "INSERT INTO video_frames (record_id, frame_number, timestamp, value, quality)"
                " VALUES (?, ?, ?, ?, ?)",
                [(record_id, f.frame_number, f.timestamp, f.hash.hex, f.hash.quality) for f in record.frames],
            )
        self._change(conn, "add", record_id, record.hash.signal, record.status, values["labels"], at)
        return SubmitOutcome(record_id, record.status, duplicate=False)

    def _change(self, conn: sqlite3.Connection, kind: str, record_id: int, signal: str,
                status: str, labels_json: str, at: str) -> None:
        conn.execute(
            "INSERT INTO changes (kind, record_id, signal, status, labels, at) VALUES (?, ?, ?, ?, ?, ?)",
            (kind, record_id, signal, status, labels_json, at),
        )

    def get_records(self, ids: Sequence[int]) -> dict[int, HashRecord]:
        found: dict[int, HashRecord] = {}
        unique = list(dict.fromkeys(int(i) for i in ids))
        for start in range(0, len(unique), 500):
            chunk = unique[start:start + 500]
            rows = self._rows(
                f"SELECT {RECORD_COLUMNS} FROM records r WHERE r.id IN ({', '.join('?' for _ in chunk)})",
                chunk,
            )
            found.update((int(r["id"]), record_from_row(r)) for r in rows)
        return found

    def _get(self, record_id: int) -> HashRecord:
        record = self.get_records([record_id]).get(record_id)
        if record is None:
            raise NotFound(f"no hash record with id {record_id}")
        return record

    def find_values(self, signal: str, values: Sequence[str]) -> list[HashRecord]:
        unique = list(dict.fromkeys(values))
        out: list[HashRecord] = []
        for start in range(0, len(unique), 500):
            chunk = unique[start:start + 500]
            rows = self._rows(
                f"SELECT {RECORD_COLUMNS} FROM records r WHERE r.signal = ? AND r.value IN"
                f" ({', '.join('?' for _ in chunk)}) ORDER BY r.id",
                [signal, *chunk],
            )
            out.extend(record_from_row(r) for r in rows)
        return out

    def set_status(self, record_id: int, status: str, actor: Principal, reason: str = "") -> HashRecord:
        with self._write() as conn:
            row = conn.execute("SELECT signal, status, labels FROM records WHERE id = ?", (record_id,)).fetchone()
            if row is None:
                raise NotFound(f"no hash record with id {record_id}")
            signal, old, labels = row
            if old != status:
                at = now()
                conn.execute("UPDATE records SET status = ? WHERE id = ?", (status, record_id))
                kind = "retract" if status == "retracted" else "status"
                self._change(conn, kind, record_id, signal, status, labels, at)
                self._audit(conn, actor.org_id, actor.key_id, f"hashes.{kind}", f"record:{record_id}",
                            json.dumps({"from": old, "to": status, "reason": reason}))
        return self._get(record_id)

    def set_labels(self, record_id: int, labels: Sequence[str], actor: Principal) -> HashRecord:
        labels_json = json.dumps(list(labels))
        with self._write() as conn:
            row = conn.execute("SELECT signal, status, labels FROM records WHERE id = ?", (record_id,)).fetchone()
            if row is None:
                raise NotFound(f"no hash record with id {record_id}")
            if row[2] != labels_json:
                conn.execute("UPDATE records SET labels = ? WHERE id = ?", (labels_json, record_id))
                self._change(conn, "labels", record_id, row[0], row[1], labels_json, now())
                self._audit(conn, actor.org_id, actor.key_id, "hashes.labels", f"record:{record_id}",
                            json.dumps({"from": json.loads(row[2]), "to": list(labels)}))
        return self._get(record_id)

    def set_feedback(self, record_id: int, actor: Principal, verdict: str, note: str) -> HashRecord:
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM records WHERE id = ?", (record_id,)).fetchone() is None:
                raise NotFound(f"no hash record with id {record_id}")
            conn.execute(
                "INSERT INTO feedback (record_id, org_id, verdict, note, updated_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (record_id, org_id) DO UPDATE SET verdict = excluded.verdict,"
                " note = excluded.note, updated_at = excluded.updated_at",
                (record_id, actor.org_id, verdict, note, now()),
            )
            self._audit(conn, actor.org_id, actor.key_id, "hashes.feedback", f"record:{record_id}",
                        json.dumps({"verdict": verdict}))
        return self._get(record_id)

    # what the index is built from --------------------------------------------------------

    def live_hashes(self, signal: str, batch: int = 100_000) -> Iterator[list[tuple[int, str]]]:
        if signal == "vpdq":
            sql = ("SELECT f.id, f.value FROM video_frames f JOIN records r ON r.id = f.record_id"
                   " WHERE r.status != 'retracted' AND f.id > ? ORDER BY f.id LIMIT ?")
        else:
            sql = ("SELECT id, value FROM records WHERE signal = ? AND status != 'retracted'"
                   " AND id > ? ORDER BY id LIMIT ?")
        last = 0
        while True:
            params: tuple[Any, ...] = (last, batch) if signal == "vpdq" else (signal, last, batch)
            with self._lock:
                rows = [(int(i), str(v)) for i, v in self.db.conn.execute(sql, params).fetchall()]
            if not rows:
                return
            yield rows
            last = rows[-1][0]

    def frame_records(self, frame_ids: Sequence[int]) -> dict[int, int]:
        unique = list(dict.fromkeys(int(i) for i in frame_ids))
        out: dict[int, int] = {}
        for start in range(0, len(unique), 500):
            chunk = unique[start:start + 500]
            rows = self._rows(
                f"SELECT id, record_id FROM video_frames WHERE id IN ({', '.join('?' for _ in chunk)})", chunk
            )
            out.update((int(r["id"]), int(r["record_id"])) for r in rows)
        return out

    def video_frames(self, record_ids: Sequence[int]) -> dict[int, list[tuple[int, str, int | None]]]:
        unique = list(dict.fromkeys(int(i) for i in record_ids))
        out: dict[int, list[tuple[int, str, int | None]]] = {i: [] for i in unique}
        for start in range(0, len(unique), 500):
            chunk = unique[start:start + 500]
            rows = self._rows(
                "SELECT id, record_id, value, quality FROM video_frames WHERE record_id IN"
                f" ({', '.join('?' for _ in chunk)}) ORDER BY id",
                chunk,
            )
            for r in rows:
                out[int(r["record_id"])].append((int(r["id"]), r["value"], r["quality"]))
        return out

    # change log and audit ----------------------------------------------------------------

    def last_seq(self) -> int:
        rows = self._rows("SELECT COALESCE(MAX(seq), 0) AS seq FROM changes")
        return int(rows[0]["seq"])

    def changes_since(self, seq: int, limit: int) -> list[Change]:
        rows = self._rows("SELECT * FROM changes WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit))
        return [
            Change(int(r["seq"]), r["kind"], int(r["record_id"]), r["signal"], str(r["at"]), r["status"],
                   tuple(json.loads(r["labels"])))
            for r in rows
        ]

    def audit(self, actor: Principal | None, action: str, target: str, detail: str = "") -> None:
        with self._write() as conn:
            self._audit(conn, actor.org_id if actor else None, actor.key_id if actor else None,
                        action, target, detail)

    def _audit(self, conn: sqlite3.Connection, org_id: int | None, key_id: int | None,
               action: str, target: str, detail: str) -> None:
        row = conn.execute("SELECT entry_hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
        prev = row[0] if row else GENESIS_HASH
        at = now()
        entry = audit_hash(prev, at, org_id, key_id, action, target, detail)
        conn.execute(
            "INSERT INTO audit (at, org_id, key_id, action, target, detail, prev_hash, entry_hash)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (at, org_id, key_id, action, target, detail, prev, entry),
        )

    def audit_entries(self, after_id: int = 0, limit: int = 1000) -> list[AuditEntry]:
        rows = self._rows("SELECT * FROM audit WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit))
        return [
            AuditEntry(int(r["id"]), r["at"], r["org_id"], r["key_id"], r["action"], r["target"],
                       r["detail"], r["prev_hash"], r["entry_hash"])
            for r in rows
        ]

    def counts(self) -> dict[str, dict[str, int]]:
        def group(column: str) -> dict[str, int]:
            rows = self._rows(f"SELECT {column} AS k, COUNT(*) AS n FROM records GROUP BY k ORDER BY k")
            return {str(r["k"]): int(r["n"]) for r in rows}

        labels: dict[str, int] = {}
        for r in self._rows("SELECT labels FROM records WHERE status != 'retracted'"):
            for label in json.loads(r["labels"]):
                labels[label] = labels.get(label, 0) + 1
        return {
            "signal": group("signal"),
            "status": group("status"),
            "month": group("substr(created_at, 1, 7)"),
            "label": dict(sorted(labels.items())),
        }
