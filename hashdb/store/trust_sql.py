"""Store methods for the trust-and-safety features, in the SQL both dialects speak (see sql.py).

A mixin over SQLStore: it uses the same serialised write transaction, change log and audit
chain, so a quarantine commits with its change-log and audit rows or not at all.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from hashdb.errors import Conflict
from hashdb.store.rows import RECORD_COLUMNS, check_choice, now, record_from_row
from hashdb.store.sql import CHUNK, SQLStore, select_in
from hashdb.types import QUARANTINE_RULES, HashValue, Principal, Quarantine

# Statuses a quarantine may take a record from: a retracted record is already out.
QUARANTINABLE = ("active", "disputed")


def _who(actor: Principal | None) -> tuple[int | None, int | None]:
    return (actor.org_id, actor.key_id) if actor is not None else (None, None)


class TrustSQL(SQLStore):
    # safelist ---------------------------------------------------------------------------------

    def add_safelist(self, values: Sequence[HashValue], note: str, actor: Principal) -> int:
        """Add benign hashes; returns how many were new (a hash already listed is kept as is)."""
        at = now()
        added = 0
        with self._write() as conn:
            for value in dict.fromkeys((v.signal, v.hex) for v in values):
                cursor = conn.execute(
                    "INSERT INTO safelist (signal, value, note, org_id, created_at) VALUES (?, ?, ?, ?, ?)"
                    " ON CONFLICT (signal, value) DO NOTHING",
                    (value[0], value[1], note, actor.org_id, at),
                )
                added += max(cursor.rowcount, 0)
            self._audit(conn, actor.org_id, actor.key_id, "safelist.add", f"batch:{len(values)}",
                        json.dumps({"added": added, "note": note}))
        return added

    def safelist_version(self) -> tuple[int, int]:
        """Changes whenever the safelist does: callers cache the list against it."""
        row = self._rows("SELECT COUNT(*) AS n, COALESCE(MAX(id), 0) AS last FROM safelist")[0]
        return int(row["n"]), int(row["last"])

    def safelist_values(self, signal: str) -> list[tuple[int, str]]:
        rows = self._rows("SELECT id, value FROM safelist WHERE signal = ? ORDER BY id", (signal,))
        return [(int(r["id"]), str(r["value"])) for r in rows]

    # quarantine -------------------------------------------------------------------------------

    def note_quarantine(self, record_ids: Sequence[int], rule: str, reason: str,
                        actor: Principal | None) -> None:
        """Record why records stored as quarantined (at submission) were held, and audit it."""
        self._check_rule(rule)
        org_id, key_id = _who(actor)
        at = now()
        with self._write() as conn:
            for record_id in dict.fromkeys(record_ids):
                conn.execute(
                    "INSERT INTO quarantines (record_id, rule, reason, created_at) VALUES (?, ?, ?, ?)",
                    (record_id, rule, reason, at),
                )
                self._audit(conn, org_id, key_id, "quarantine.open", f"record:{record_id}",
                            json.dumps({"rule": rule, "reason": reason}))

    def quarantine(self, record_id: int, rule: str, reason: str, actor: Principal | None) -> bool:
        """Hold an active or disputed record out of members' lookups; False if it was not either."""
        self._check_rule(rule)
        org_id, key_id = _who(actor)
        with self._write() as conn:
            signal, old, labels = self._locked_record(conn, record_id)
            if old not in QUARANTINABLE:
                return False
            at = now()
            conn.execute("UPDATE records SET status = 'quarantined' WHERE id = ?", (record_id,))
            self._change(conn, "status", record_id, signal, "quarantined", labels)
            conn.execute(
                "INSERT INTO quarantines (record_id, rule, reason, created_at) VALUES (?, ?, ?, ?)",
                (record_id, rule, reason, at),
            )
            self._audit(conn, org_id, key_id, "quarantine.open", f"record:{record_id}",
                        json.dumps({"rule": rule, "reason": reason, "from": old}))
        return True

    def resolve_quarantine(self, record_id: int, release: bool, actor: Principal, reason: str) -> None:
        """Release (back to active, match counts reset) or confirm (retracted, with the reason)."""
        with self._write() as conn:
            signal, old, labels = self._locked_record(conn, record_id)
            if old != "quarantined":
                raise Conflict(f"hash record {record_id} is {old}, not quarantined")
            status, resolution = ("active", "released") if release else ("retracted", "confirmed")
            conn.execute("UPDATE records SET status = ? WHERE id = ?", (status, record_id))
            # A confirmed quarantine leaves as a retraction: the tombstone the index, the
            # export feed and every mirror already act on.
            self._change(conn, "status" if release else "retract", record_id, signal, status, labels)
            conn.execute(
                "UPDATE quarantines SET resolution = ?, resolved_at = ?, resolved_by = ?"
                " WHERE record_id = ? AND resolution IS NULL",
                (resolution, now(), actor.org_id, record_id),
            )
            if release:
                # Counting starts again from the release, or the spike that tripped the rule
                # would trip it again on the next match.
                conn.execute("DELETE FROM match_counts WHERE record_id = ?", (record_id,))
            self._audit(conn, actor.org_id, actor.key_id, f"quarantine.{'release' if release else 'confirm'}",
                        f"record:{record_id}", json.dumps({"to": status, "reason": reason}))

    def quarantined(self, after_id: int = 0, limit: int = 100) -> list[Quarantine]:
        """Quarantined records in id order, each with its latest open reason."""
        rows = self._rows(
            f"SELECT {RECORD_COLUMNS} FROM records r WHERE r.status = 'quarantined' AND r.id > ?"
            " ORDER BY r.id LIMIT ?",
            (after_id, limit),
        )
        reasons: dict[int, dict[str, Any]] = {}
        for q in self._rows_in(
            "SELECT record_id, rule, reason, created_at FROM quarantines"
            " WHERE resolution IS NULL AND record_id IN ({marks}) ORDER BY id", (), [r["id"] for r in rows]
        ):
            reasons[int(q["record_id"])] = q
        out = []
        for r in rows:
            q = reasons.get(int(r["id"]), {"rule": "manual", "reason": "", "created_at": ""})
            out.append(Quarantine(record_from_row(r), str(q["rule"]), str(q["reason"]), str(q["created_at"])))
        return out

    @staticmethod
    def _check_rule(rule: str) -> None:
        check_choice("quarantine rule", rule, QUARANTINE_RULES)

    # spike counters ---------------------------------------------------------------------------

    def count_matches(self, counts: Sequence[tuple[int, str, int, int]], since_bucket: str) -> dict[int, tuple[int, int]]:
        """Add (record id, hour bucket, org id, matches) and return, per record counted, its
        (matches, distinct organisations) in buckets >= since_bucket. Older buckets of those
        records are dropped: nothing reads them again."""
        record_ids = sorted({c[0] for c in counts})
        with self._write() as conn:
            conn.executemany(
                "INSERT INTO match_counts (record_id, bucket, org_id, n) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (record_id, bucket, org_id) DO UPDATE SET n = match_counts.n + excluded.n",
                counts,
            )
            for start in range(0, len(record_ids), CHUNK):
                chunk = record_ids[start:start + CHUNK]
                conn.execute(f"DELETE FROM match_counts WHERE bucket < ? AND record_id IN"
                             f" ({', '.join('?' for _ in chunk)})", [since_bucket, *chunk])
            rows = select_in(
                conn,
                "SELECT record_id, SUM(n) AS n, COUNT(DISTINCT org_id) AS orgs FROM match_counts"
                " WHERE bucket >= ? AND record_id IN ({marks}) GROUP BY record_id",
                (since_bucket,), record_ids,
            )
        return {int(r["record_id"]): (int(r["n"]), int(r["orgs"])) for r in rows}
