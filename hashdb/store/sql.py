"""Every HashStore method, written once in the SQL SQLite and PostgreSQL both speak.

A dialect (sqlite_store.py, postgres_store.py) supplies only connections, the serialised write
transaction and its schema; it never re-implements a query, so the two stores cannot drift.
SQL here uses `?` placeholders; the PostgreSQL connection wrapper translates them.
"""

from __future__ import annotations

import dataclasses
import json
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from hashdb.errors import Conflict, InvalidInput, NotFound
from hashdb.store.rows import (
    GENESIS_HASH,
    RECORD_COLUMNS,
    audit_from_row,
    audit_hash,
    change_from_row,
    change_mark,
    check_choice,
    check_record,
    check_text,
    now,
    outcomes_from_json,
    outcomes_to_json,
    record_from_row,
    record_values,
)
from hashdb.types import (
    STATUSES,
    VERDICTS,
    AuditEntry,
    Change,
    HashRecord,
    NewRecord,
    Principal,
    SubmitOutcome,
)

# The index key space of derived hashes (their row ids), beside the records' signals.
DERIVED_INDEX = "pdq_derived"
# Values per IN (...) list: far below SQLite's 32766 and PostgreSQL's 65535 bound parameters.
CHUNK = 500
# A change-log row: the change, then its record's details as the change left them (ChangeDetails).
CHANGE_COLUMNS = ("record_id", "kind", "signal", "status", "labels", "at", "incident", "quality", "media_type")
_INSERT_CHANGE = f"INSERT INTO changes ({', '.join(CHANGE_COLUMNS)}) VALUES ({', '.join('?' for _ in CHANGE_COLUMNS)})"

Key = tuple[str, str]  # (signal, value): with the org, what makes a record unique


class Cursor(Protocol):
    @property
    def description(self) -> Any: ...
    @property
    def rowcount(self) -> int: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    """What a dialect hands the shared code: DB-API cursors over `?`-style SQL."""

    def execute(self, sql: str, params: Sequence[Any] = (), /) -> Cursor: ...
    def executemany(self, sql: str, rows: Iterable[Sequence[Any]], /) -> Any: ...


def dicts(cursor: Cursor) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def select_in(conn: Connection, sql: str, before: Sequence[Any], values: Sequence[Any]) -> list[dict[str, Any]]:
    """Run `sql` (with `{marks}` where the IN list goes) over `values` in chunks."""
    out: list[dict[str, Any]] = []
    for start in range(0, len(values), CHUNK):
        chunk = values[start:start + CHUNK]
        out.extend(dicts(conn.execute(sql.format(marks=", ".join("?" for _ in chunk)), [*before, *chunk])))
    return out


def check_limit(name: str, value: int) -> None:
    # SQLite reads LIMIT -1 as "no limit" where PostgreSQL refuses it: one rule for both.
    if value < 1:
        raise InvalidInput(f"{name} must be at least 1, got {value}")


class SQLStore(ABC):
    """The shared implementation; see the HashStore Protocol in base.py for the contract."""

    @abstractmethod
    def _write(self) -> AbstractContextManager[Connection]:
        """One write transaction, serialised with every other writer of the database, so the
        change log's seq and the audit chain follow commit order."""

    @abstractmethod
    def _read(self) -> AbstractContextManager[Connection]:
        """A connection for reads outside any write transaction."""

    @abstractmethod
    def close(self) -> None: ...

    def _insert_rows(self, conn: Connection, table: str, columns: Sequence[str],
                     rows: Sequence[Sequence[Any]]) -> None:
        """Bulk insert inside a write; a dialect may override it with something faster."""
        conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})",
                         rows)

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._read() as conn:
            return dicts(conn.execute(sql, params))

    def _rows_in(self, sql: str, before: Sequence[Any], values: Sequence[Any]) -> list[dict[str, Any]]:
        if not values:  # most lookups match nothing: no read transaction for an empty IN list
            return []
        with self._read() as conn:
            return select_in(conn, sql, before, values)

    # records ------------------------------------------------------------------------------

    def add_records(
        self,
        records: Sequence[NewRecord],
        actor: Principal,
        idempotency_key: str | None = None,
        request_digest: str = "",
    ) -> list[SubmitOutcome]:
        for record in records:
            check_record(record)
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
            outcomes = self._withdraw_sharers_votes(conn, self._insert(conn, records, actor.org_id, at, actor),
                                                    records, actor)
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

    def _insert(self, conn: Connection, records: Sequence[NewRecord], org_id: int, at: str,
                actor: Principal | None = None) -> list[SubmitOutcome]:
        """Set-at-a-time: one lookup of the batch's existing keys, then bulk inserts. `actor`:
        who submits; None for a mirror, where the source decided what comes back."""
        keys = [(r.hash.signal, r.hash.hex) for r in records]
        known = self._existing(conn, org_id, keys)
        revived = self._revive(conn, known, dict(zip(keys, records)), at, org_id, actor)
        fresh: dict[Key, NewRecord] = {}
        for key, record in zip(keys, records):
            if key not in known and key not in revived:
                fresh.setdefault(key, record)
        created: dict[Key, tuple[int, str]] = {}
        if fresh:
            rows = [record_values(r, org_id, at) for r in fresh.values()]
            columns = list(rows[0])
            (top,) = conn.execute("SELECT COALESCE(MAX(id), 0) FROM records").fetchone()
            self._insert_rows(conn, "records", columns, [tuple(row.values()) for row in rows])
            # executemany reports no ids (and SQLite's RETURNING order is unspecified). Writers
            # are serialised, so every row above the old maximum is one of ours: a primary-key
            # range read instead of a second index probe per row. An engine that handed out a
            # lower id (SQLite does at the rowid ceiling) is caught by the lookup by key.
            above = conn.execute("SELECT id, signal, value, status FROM records WHERE id > ?", (top,))
            created = {(str(s), str(v)): (int(i), str(st)) for i, s, v, st in above.fetchall()}
            missing = [key for key in fresh if key not in created]
            if missing:
                created.update(self._existing(conn, org_id, missing))
            frames = [(created[key][0], f.frame_number, f.timestamp, f.hash.hex, f.hash.quality)
                      for key, record in fresh.items() for f in record.frames]
            if frames:
                self._insert_rows(conn, "video_frames",
                                  ("record_id", "frame_number", "timestamp", "value", "quality"), frames)
            derived = [(created[key][0], d.via, d.hash.hex, d.hash.quality, d.share, d.colours)
                       for key, record in fresh.items() for d in record.derived]
            if derived:
                self._insert_rows(conn, "derived_hashes", ("record_id", "via", "value", "quality", "share", "colours"),
                                  derived)
            tmks = [(created[key][0], record.tmk.average, record.tmk.features)
                    for key, record in fresh.items() if record.tmk is not None]
            if tmks:
                self._insert_rows(conn, "tmk_hashes", ("record_id", "average", "features"), tmks)
            keypoints = [(created[key][0], record.keypoints)
                         for key, record in fresh.items() if record.keypoints is not None]
            if keypoints:
                self._insert_rows(conn, "image_keypoints", ("record_id", "data"), keypoints)
            # In id order, so a partner replaying the log sees additions in insertion order.
            changes = sorted((created[key][0], "add", key[0], record.status, row["labels"], at, row["incident"],
                              row["quality"], row["media_type"])
                             for (key, record), row in zip(fresh.items(), rows))
            self._insert_rows(conn, "changes", CHANGE_COLUMNS, changes)
        outcomes: list[SubmitOutcome] = []
        reported: set[Key] = set()
        for key in keys:
            if key in revived and key not in reported:
                record_id, status = revived[key]
                outcomes.append(SubmitOutcome(record_id, status, duplicate=False))
                reported.add(key)
            elif key in known:
                record_id, status = known[key]
                outcomes.append(SubmitOutcome(record_id, status, duplicate=True))
            else:
                record_id, status = created[key]
                # The same hash twice in one batch is one record; the repeat is its duplicate.
                outcomes.append(SubmitOutcome(record_id, status, duplicate=key in reported))
                reported.add(key)
        return outcomes

    def _revive(self, conn: Connection, known: dict[Key, tuple[int, str]], wanted: dict[Key, NewRecord],
                at: str, org_id: int, actor: Principal | None) -> dict[Key, tuple[int, str]]:
        """An organisation sharing a hash it retracted shares it again: the same record (one per
        hash and organisation) comes back with the new labels, and the feed carries a fresh
        `add` for it: its own retraction was its own call to undo. Not a hash an admin took out,
        by confirming its quarantine or by retracting it (poisoning, abuse): that decision is
        over the organisation's, and its resubmission must not quietly reverse it."""
        retracted = {key: rid for key, (rid, status) in known.items() if status == "retracted"}
        if not retracted:
            return {}
        ids = list(retracted.values())
        confirmed = {int(r["record_id"]) for r in select_in(
            conn, "SELECT record_id FROM quarantines WHERE resolution = 'confirmed' AND record_id IN ({marks})",
            (), ids)}
        # Who retracted it last. Another organisation can only be an admin; an admin key of its
        # own organisation decided as an admin too, which only an admin may undo. A local
        # retraction (no key: whoever holds the file) is the organisation's own.
        by_admin: set[str] = set()
        if actor is not None and not actor.is_admin:
            for row in select_in(conn, "SELECT a.target, a.org_id, k.role FROM audit a"
                                       " LEFT JOIN api_keys k ON k.id = a.key_id"
                                       " WHERE a.action = 'hashes.retract' AND a.target IN ({marks}) ORDER BY a.id",
                                 (), [f"record:{i}" for i in ids]):
                if row["org_id"] != org_id or row["role"] == "admin":
                    by_admin.add(str(row["target"]))
                else:
                    by_admin.discard(str(row["target"]))
        revived: dict[Key, tuple[int, str]] = {}
        for key, record_id in retracted.items():
            if record_id in confirmed or f"record:{record_id}" in by_admin:
                continue
            record = wanted[key]
            labels = json.dumps(list(record.labels))
            conn.execute("UPDATE records SET status = ?, labels = ?, quality = ?, media_type = ?, incident = ?,"
                         " reference = ?, removed_at = ? WHERE id = ?",
                         (record.status, labels, record.hash.quality, record.media_type, record.incident,
                          record.reference, record.removed_at, record_id))
            self._log_change(conn, (record_id, "add", key[0], record.status, labels, at, record.incident,
                                    record.hash.quality, record.media_type))
            self._keep_keypoints(conn, record_id, record.keypoints)
            revived[key] = (record_id, record.status)
            del known[key]
        return revived

    def _withdraw_sharers_votes(self, conn: Connection, outcomes: list[SubmitOutcome], records: Sequence[NewRecord],
                                actor: Principal) -> list[SubmitOutcome]:
        """The submitter's votes on other organisations' records of a hash its own record of which
        has just become live (new, or shared again after its retraction) are withdrawn, each
        audited, and each outcome names the records it withdrew from. An organisation holding
        the hash may not vote on another's copy (policy.check_voter), and its own record counts
        in that copy's support: a vote cast before it shared the hash (or while its copy was
        retracted) counted it twice, and it could neither change nor withdraw it (found in
        trial). Submissions only: a mirror's records follow its source, whose feed carries the
        votes its own submissions withdrew."""
        live = {(r.hash.signal, r.hash.hex): o.id for o, r in zip(outcomes, records)
                if not o.duplicate and o.status != "retracted"}
        by_signal: dict[str, list[str]] = {}
        for signal, value in live:
            by_signal.setdefault(signal, []).append(value)
        withdrawn: dict[int, list[int]] = {}
        for signal, values in by_signal.items():
            votes = select_in(conn, "SELECT f.record_id, f.verdict, r.value FROM records r"
                                    " JOIN feedback f ON f.record_id = r.id AND f.org_id = ?"
                                    " WHERE r.signal = ? AND r.org_id != ? AND r.value IN ({marks})",
                              (actor.org_id, signal, actor.org_id), values)
            for vote in sorted(votes, key=lambda v: int(v["record_id"])):
                record_id, own = int(vote["record_id"]), live[(signal, str(vote["value"]))]
                self._withdraw_vote(conn, record_id, actor, str(vote["verdict"]), own)
                withdrawn.setdefault(own, []).append(record_id)
        return [dataclasses.replace(o, withdrawn=tuple(withdrawn[o.id])) if o.id in withdrawn and not o.duplicate
                else o for o in outcomes]

    def _withdraw_vote(self, conn: Connection, record_id: int, actor: Principal, verdict: str, own: int) -> None:
        conn.execute("DELETE FROM feedback WHERE record_id = ? AND org_id = ?", (record_id, actor.org_id))
        # The counts changed: a `status` change carries them to partners' mirrors, as a vote's does.
        signal, status, labels = self._locked_record(conn, record_id)
        self._change(conn, "status", record_id, signal, status, labels)
        self._audit(conn, actor.org_id, actor.key_id, "hashes.feedback.withdraw", f"record:{record_id}",
                    json.dumps({"verdict": verdict, "reason": f"its organisation shared the hash too: record {own}"}))

    def _existing(self, conn: Connection, org_id: int, keys: Sequence[Key]) -> dict[Key, tuple[int, str]]:
        by_signal: dict[str, list[str]] = {}
        for signal, value in dict.fromkeys(keys):
            by_signal.setdefault(signal, []).append(value)
        found: dict[Key, tuple[int, str]] = {}
        for signal, values in by_signal.items():
            rows = select_in(conn, "SELECT id, value, status FROM records WHERE signal = ? AND org_id = ?"
                                   " AND value IN ({marks})", (signal, org_id), values)
            found.update(((signal, r["value"]), (int(r["id"]), r["status"])) for r in rows)
        return found

    def get_records(self, ids: Sequence[int]) -> dict[int, HashRecord]:
        unique = list(dict.fromkeys(int(i) for i in ids))
        rows = self._rows_in(f"SELECT {RECORD_COLUMNS} FROM records r WHERE r.id IN ({{marks}})", (), unique)
        return {int(r["id"]): record_from_row(r) for r in rows}

    def _get(self, record_id: int) -> HashRecord:
        record = self.get_records([record_id]).get(record_id)
        if record is None:
            raise NotFound(f"no hash record with id {record_id}")
        return record

    def find_values(self, signal: str, values: Sequence[str]) -> list[HashRecord]:
        rows = self._rows_in(
            f"SELECT {RECORD_COLUMNS} FROM records r WHERE r.signal = ? AND r.value IN ({{marks}}) ORDER BY r.id",
            (signal,), list(dict.fromkeys(values)),
        )
        return [record_from_row(r) for r in rows]

    def _keep_keypoints(self, conn: Connection, record_id: int, data: bytes | None) -> None:
        """A record shared again after its retraction takes the keypoints it comes with (any left
        from before this store deleted them at retraction are replaced)."""
        if data is not None:
            conn.execute("DELETE FROM image_keypoints WHERE record_id = ?", (record_id,))
            conn.execute("INSERT INTO image_keypoints (record_id, data) VALUES (?, ?)", (record_id, data))

    def _locked_record(self, conn: Connection, record_id: int) -> tuple[str, str, str]:
        row = conn.execute("SELECT signal, status, labels FROM records WHERE id = ?", (record_id,)).fetchone()
        if row is None:
            raise NotFound(f"no hash record with id {record_id}")
        return str(row[0]), str(row[1]), str(row[2])

    def _change(self, conn: Connection, kind: str, record_id: int, signal: str, status: str,
                labels_json: str) -> None:
        """Log a change to a record whose row the write has already brought up to date: the
        entry keeps the incident, quality and media type it has now (ChangeDetails)."""
        incident, quality, media_type = conn.execute(
            "SELECT incident, quality, media_type FROM records WHERE id = ?", (record_id,)).fetchone()
        self._log_change(conn, (record_id, kind, signal, status, labels_json, now(), incident, quality, media_type))
        if kind == "retract":
            # Keypoints give away a sketch of the picture, and a retracted record matches and
            # exports nothing more: they go with the retraction (its hashes stay, the tombstone
            # the index and the feed act on). Shared again, the record takes the new ones.
            conn.execute("DELETE FROM image_keypoints WHERE record_id = ?", (record_id,))

    @staticmethod
    def _log_change(conn: Connection, row: tuple[Any, ...]) -> None:
        conn.execute(_INSERT_CHANGE, row)

    def set_status(self, record_id: int, status: str, actor: Principal, reason: str = "") -> HashRecord:
        check_choice("status", status, STATUSES)
        with self._write() as conn:
            signal, old, labels = self._locked_record(conn, record_id)
            if old != status:
                conn.execute("UPDATE records SET status = ? WHERE id = ?", (status, record_id))
                kind = "retract" if status == "retracted" else "status"
                self._change(conn, kind, record_id, signal, status, labels)
                self._audit(conn, actor.org_id, actor.key_id, f"hashes.{kind}", f"record:{record_id}",
                            json.dumps({"from": old, "to": status, "reason": reason}))
        return self._get(record_id)

    def set_labels(self, record_id: int, labels: Sequence[str], actor: Principal) -> HashRecord:
        labels_json = json.dumps(list(labels))
        with self._write() as conn:
            signal, status, old = self._locked_record(conn, record_id)
            if old != labels_json:
                conn.execute("UPDATE records SET labels = ? WHERE id = ?", (labels_json, record_id))
                self._change(conn, "labels", record_id, signal, status, labels_json)
                self._audit(conn, actor.org_id, actor.key_id, "hashes.labels", f"record:{record_id}",
                            json.dumps({"from": json.loads(old), "to": list(labels)}))
        return self._get(record_id)

    def set_feedback(self, record_id: int, actor: Principal, verdict: str, note: str) -> HashRecord:
        """Audited; a vote that changes the counts is a `status` change in the log, so partners'
        mirrors get the counts (their status may be unchanged: a reader from before votes were
        carried sees nothing to do, where a new kind of change would stop it)."""
        check_choice("verdict", verdict, VERDICTS)
        check_text("note", note)
        with self._write() as conn:
            signal, status, labels = self._locked_record(conn, record_id)
            before = conn.execute("SELECT verdict FROM feedback WHERE record_id = ? AND org_id = ?",
                                  (record_id, actor.org_id)).fetchone()
            if before is None or before[0] != verdict:
                self._change(conn, "status", record_id, signal, status, labels)
            # A vote cast again after an admin's ruling (uphold) is a judgement made after it: it
            # stands again, whatever it was before.
            conn.execute(
                "INSERT INTO feedback (record_id, org_id, verdict, note, updated_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (record_id, org_id) DO UPDATE SET verdict = excluded.verdict,"
                " note = excluded.note, updated_at = excluded.updated_at, overruled_at = NULL",
                (record_id, actor.org_id, verdict, note, now()),
            )
            self._audit(conn, actor.org_id, actor.key_id, "hashes.feedback", f"record:{record_id}",
                        json.dumps({"verdict": verdict}))
        return self._get(record_id)

    # what the index is built from --------------------------------------------------------

    def live_hashes(self, signal: str, batch: int = 100_000) -> Iterator[list[tuple[int, str]]]:
        check_limit("batch", batch)
        # A walk of one table's primary key in windows of `batch` ids, so that no plan can cost
        # more than its window. `id > ? ORDER BY id LIMIT ?` with a filter was planned as a read
        # of every row, sorted, once per page (SQLite took the unique key for the signal, and
        # PostgreSQL hash-joined all of records to a page of frames): quadratic, past an hour
        # at 10M. The signal is compared as an expression so that no planner takes the unique
        # key (led by signal) for the window; a frame's or derived hash's record is checked
        # against the retracted ids (an index range, few rows) instead of a join.
        if signal in ("vpdq", DERIVED_INDEX):
            table = "video_frames" if signal == "vpdq" else "derived_hashes"
            sql = f"SELECT id, value, record_id FROM {table} WHERE id > ? AND id <= ? ORDER BY id"
            retracted = {int(r["id"]) for r in self._rows("SELECT id FROM records WHERE status = 'retracted'")}
            extra: tuple[Any, ...] = ()
        else:
            # A signal no record has (phash and dhash, often) costs one probe of the unique
            # key, not a walk of every record.
            if not self._rows("SELECT id FROM records WHERE signal = ? LIMIT 1", (signal,)):
                return
            table = "records"
            sql = ("SELECT id, value, 0 FROM records WHERE id > ? AND id <= ? AND status != 'retracted'"
                   " AND (signal || '') = ? ORDER BY id")
            retracted, extra = set(), (signal,)
        # Rows added after this read are the change log's to replay (IndexSet.rebuild).
        top = int(self._rows(f"SELECT COALESCE(MAX(id), 0) AS top FROM {table}")[0]["top"])
        for low in range(0, top, batch):
            with self._read() as conn:
                found = conn.execute(sql, (low, low + batch, *extra)).fetchall()
            rows = [(int(i), str(v)) for i, v, record_id in found if record_id not in retracted]
            if rows:
                yield rows

    def index_entries(self, record_ids: Sequence[int]) -> dict[int, tuple[str, str, str]]:
        unique = list(dict.fromkeys(int(i) for i in record_ids))
        rows = self._rows_in("SELECT id, signal, value, status FROM records WHERE id IN ({marks})", (), unique)
        return {int(r["id"]): (str(r["signal"]), str(r["value"]), str(r["status"])) for r in rows}

    # change log and audit ----------------------------------------------------------------

    def last_seq(self) -> int:
        return int(self._rows("SELECT COALESCE(MAX(seq), 0) AS seq FROM changes")[0]["seq"])

    def database_id(self) -> str:
        return str(self._rows("SELECT id FROM database_identity")[0]["id"])

    def change_mark(self, seq: int) -> str | None:
        # Microseconds and a record id: another history (a restored older backup that has
        # written since) has the same seq, but not this change at it.
        rows = self._rows("SELECT at, record_id FROM changes WHERE seq = ?", (seq,))
        return change_mark(str(rows[0]["at"]), int(rows[0]["record_id"])) if rows else None

    def changes_since(self, seq: int, limit: int) -> list[Change]:
        check_limit("limit", limit)
        rows = self._rows("SELECT * FROM changes WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit))
        return [change_from_row(r) for r in rows]

    def audit(self, actor: Principal | None, action: str, target: str, detail: str = "") -> None:
        with self._write() as conn:
            self._audit(conn, actor.org_id if actor else None, actor.key_id if actor else None,
                        action, target, detail)

    def _audit(self, conn: Connection, org_id: int | None, key_id: int | None,
               action: str, target: str, detail: str) -> None:
        # Safe only inside _write: the serialised writer is what makes "the last entry" stable.
        row = conn.execute("SELECT entry_hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
        prev = row[0] if row else GENESIS_HASH
        at = now()
        conn.execute(
            "INSERT INTO audit (at, org_id, key_id, action, target, detail, prev_hash, entry_hash)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (at, org_id, key_id, action, target, detail, prev,
             audit_hash(prev, at, org_id, key_id, action, target, detail)),
        )

    def audit_entries(self, after_id: int = 0, limit: int = 1000) -> list[AuditEntry]:
        check_limit("limit", limit)
        rows = self._rows("SELECT * FROM audit WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit))
        return [audit_from_row(r) for r in rows]

    def counts(self) -> dict[str, dict[str, int]]:
        # Kept by triggers in every writing transaction (migration m006): one small read,
        # whatever the number of records.
        out: dict[str, dict[str, int]] = {"signal": {}, "status": {}, "month": {}, "label": {}}
        for r in self._rows("SELECT dim, key, n FROM record_counts WHERE n > 0"):
            out[str(r["dim"])][str(r["key"])] = int(r["n"])
        return {dim: dict(sorted(values.items())) for dim, values in out.items()}
