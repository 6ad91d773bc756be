"""Store queries the web console needs: keyset pages of records by index-backed filters, a
record's history and votes, delivery attempts for given records, one key by id, and one-time
sign-in links. Written once for SQLite and PostgreSQL, like sql.py."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from hashdb.store.rows import api_key_from_row, audit_from_row
from hashdb.store.sql import SQLStore
from hashdb.types import ApiKey, AuditEntry, DeliveryAttempt, HashRecord, HistoryEvent, RecordQuery, Vote


def _like_label(label: str) -> str:
    # labels is a JSON array of taxonomy ids; `_` is a LIKE wildcard, so escape it.
    quoted = json.dumps(label).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{quoted}%"


class ConsoleSQL(SQLStore):
    def max_record_id(self) -> int:
        return int(self._rows("SELECT COALESCE(MAX(id), 0) AS n FROM records")[0]["n"])

    def search_records(self, query: RecordQuery) -> list[HashRecord]:
        """Newest first, ids below `before` and at or above `floor`. Status, organisation and
        incident have an index led by them and then id (m007), so a page reads about `limit`
        index entries; for a label or a signal the caller bounds the read with `floor`."""
        where = ["1 = 1"]
        params: list[Any] = []
        if query.floor > 0:
            # Only when asked: PostgreSQL without statistics reads `id >= 0 AND org_id = ?` as
            # rare and fetches all the organisation's rows to sort them (220 ms at 1M) instead
            # of reading (org_id, id) backwards (2 ms).
            where.append("r.id >= ?")
            params.append(query.floor)
        if query.before is not None:
            where.append("r.id < ?")
            params.append(query.before)
        for column, value in (("status", query.status), ("value", query.value),
                              ("incident", query.incident), ("org_id", query.org_id)):
            if value is not None:
                where.append(f"r.{column} = ?")
                params.append(value)
        if query.signal is not None:
            # Without a value, as an expression: the unique key leads with signal, and a planner
            # that took it would read every record of the signal and sort them, not the window.
            where.append("r.signal = ?" if query.value is not None else "(r.signal || '') = ?")
            params.append(query.signal)
        if query.label is not None:
            where.append("r.labels LIKE ? ESCAPE '\\'")
            params.append(_like_label(query.label))
        # Ids first (index only), then the full rows with their computed counts for one page.
        ids = [int(r["id"]) for r in self._rows(
            f"SELECT r.id FROM records r WHERE {' AND '.join(where)} ORDER BY r.id DESC LIMIT ?",
            [*params, query.limit])]
        if not ids:
            return []
        found = self.get_records(ids)
        return [found[i] for i in ids if i in found]

    def record_history(self, record_id: int) -> list[HistoryEvent]:
        """The record's addition (from the change log) and every audit entry naming it, oldest first."""
        events: list[HistoryEvent] = []
        # MIN, not ORDER BY seq LIMIT 1: that could be planned as a walk of the whole log by seq.
        for r in self._rows("SELECT MIN(c.at) AS at, MIN(o.name) AS name FROM changes c"
                            " JOIN records r ON r.id = c.record_id JOIN orgs o ON o.id = r.org_id"
                            " WHERE c.record_id = ? AND c.kind = 'add'", (record_id,)):
            if r["at"] is not None:
                events.append(HistoryEvent(str(r["at"]), "hashes.submit", str(r["name"]), ""))
        for r in self._rows("SELECT a.at, a.action, a.detail, o.name FROM audit a LEFT JOIN orgs o ON o.id = a.org_id"
                            " WHERE a.target = ? ORDER BY a.id", (f"record:{record_id}",)):
            events.append(HistoryEvent(str(r["at"]), str(r["action"]), str(r["name"] or "(system)"),
                                       str(r["detail"])))
        return events

    def votes(self, record_ids: Sequence[int]) -> dict[int, list[Vote]]:
        unique = list(dict.fromkeys(int(i) for i in record_ids))
        out: dict[int, list[Vote]] = {i: [] for i in unique}
        for r in self._rows_in("SELECT f.record_id, o.name, f.verdict, f.note, f.updated_at, f.overruled_at"
                               " FROM feedback f JOIN orgs o ON o.id = f.org_id WHERE f.record_id IN ({marks})"
                               " ORDER BY f.updated_at", (), unique):
            out[int(r["record_id"])].append(Vote(str(r["name"]), str(r["verdict"]), str(r["note"]),
                                                 str(r["updated_at"]), r["overruled_at"]))
        return out

    def open_quarantine(self, record_id: int) -> tuple[str, str, str] | None:
        """(rule, reason, at) of the record's unresolved quarantine, if any."""
        rows = self._rows("SELECT rule, reason, created_at FROM quarantines WHERE record_id = ?"
                          " AND resolution IS NULL ORDER BY id DESC LIMIT 1", (record_id,))
        return (str(rows[0]["rule"]), str(rows[0]["reason"]), str(rows[0]["created_at"])) if rows else None

    def org_names(self, org_ids: Sequence[int]) -> dict[int, str]:
        unique = list(dict.fromkeys(int(i) for i in org_ids))
        return {int(r["id"]): str(r["name"]) for r in self._rows_in(
            "SELECT id, name FROM orgs WHERE id IN ({marks})", (), unique)}

    def attempts_for_records(self, record_ids: Sequence[int], limit: int = 200) -> list[DeliveryAttempt]:
        """Webhook delivery attempts announcing these records, newest first."""
        unique = list(dict.fromkeys(int(i) for i in record_ids))
        rows = self._rows_in(
            "SELECT a.id, a.outbox_id, o.webhook_id, o.record_id, a.at, a.status_code, a.error, a.duration_ms"
            " FROM webhook_outbox o JOIN webhook_attempts a ON a.outbox_id = o.id"
            " WHERE o.record_id IN ({marks})", (), unique)
        rows.sort(key=lambda r: -int(r["id"]))
        return [DeliveryAttempt(int(r["outbox_id"]), int(r["webhook_id"]), int(r["record_id"]), str(r["at"]),
                                None if r["status_code"] is None else int(r["status_code"]), str(r["error"]),
                                int(r["duration_ms"])) for r in rows[:limit]]

    def pending_deliveries(self, record_ids: Sequence[int]) -> dict[int, int]:
        """Per webhook: how many announcements of these records still wait to be delivered."""
        unique = list(dict.fromkeys(int(i) for i in record_ids))
        out: dict[int, int] = {}
        for r in self._rows_in("SELECT webhook_id FROM webhook_outbox WHERE state = 'pending'"
                               " AND record_id IN ({marks})", (), unique):
            out[int(r["webhook_id"])] = out.get(int(r["webhook_id"]), 0) + 1
        return out

    def get_api_key(self, key_id: int) -> ApiKey | None:
        rows = self._rows("SELECT k.*, o.name AS org_name FROM api_keys k JOIN orgs o ON o.id = k.org_id"
                          " WHERE k.id = ?", (key_id,))
        return api_key_from_row(rows[0]) if rows else None

    def add_signin_link(self, token_hash: str, key_id: int, created_at: str, expires_at: str) -> None:
        with self._write() as conn:
            conn.execute("INSERT INTO signin_links (token_hash, key_id, created_at, expires_at)"
                         " VALUES (?, ?, ?, ?)", (token_hash, key_id, created_at, expires_at))

    def use_signin_link(self, token_hash: str, at: str) -> int | None:
        """Mark the link used and return its key id; None if unknown, used or expired. One
        UPDATE, so two workers racing on one link cannot both sign in with it."""
        with self._write() as conn:
            row = conn.execute("UPDATE signin_links SET used_at = ? WHERE token_hash = ? AND used_at IS NULL"
                               " AND expires_at > ? RETURNING key_id", (at, token_hash, at)).fetchone()
        return None if row is None else int(row[0])


    def audit_tail(self, limit: int) -> list[AuditEntry]:
        """The newest `limit` audit entries, newest first (primary-key order, read backwards)."""
        rows = self._rows("SELECT * FROM audit ORDER BY id DESC LIMIT ?", (limit,))
        return [audit_from_row(r) for r in rows]
