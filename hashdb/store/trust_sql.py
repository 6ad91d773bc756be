"""Store methods for the trust-and-safety features, in the SQL both dialects speak (see sql.py).

A mixin over SQLStore: it uses the same serialised write transaction, change log and audit
chain, so a quarantine commits with its change-log and audit rows or not at all.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from hashdb.errors import Conflict, NotFound
from hashdb.store.rows import RECORD_COLUMNS, check_choice, labels_from_json, now, record_from_row, vote_counts
from hashdb.store.sql import CHUNK, SQLStore, dicts, select_in
from hashdb.types import (
    QUARANTINE_RULES,
    Delivery,
    DeliveryAttempt,
    HashRecord,
    HashValue,
    Incident,
    Principal,
    Quarantine,
    SafelistEntry,
    Subscriber,
    Votes,
    Webhook,
)

# Statuses a quarantine may take a record from: a retracted record is already out.
QUARANTINABLE = ("active", "disputed")


def _who(actor: Principal | None) -> tuple[int | None, int | None]:
    return (actor.org_id, actor.key_id) if actor is not None else (None, None)


# Whether webhook `w`'s organisation holds a live key that may read the feed (policy's "export"
# roles): a webhook carries hash values, so only such an organisation is sent to.
_RECEIVES = ("EXISTS (SELECT 1 FROM api_keys k WHERE k.org_id = w.org_id AND k.revoked_at IS NULL"
             " AND k.role IN ('partner', 'admin'))")


class TrustSQL(SQLStore):
    # safelist ---------------------------------------------------------------------------------

    def add_safelist(self, values: Sequence[HashValue], note: str, actor: Principal) -> int:
        """Add benign hashes; returns how many were new (a hash already listed is kept as is)."""
        at = now()
        added = 0
        with self._write() as conn:
            for value in dict.fromkeys((v.signal, v.hex) for v in values):
                # A removed entry listed again comes back (same id); a listed one stays as it is.
                cursor = conn.execute(
                    "INSERT INTO safelist (signal, value, note, org_id, key_id, created_at) VALUES (?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (signal, value) DO UPDATE SET removed_at = NULL, note = excluded.note,"
                    " org_id = excluded.org_id, key_id = excluded.key_id, created_at = excluded.created_at"
                    " WHERE safelist.removed_at IS NOT NULL",
                    (value[0], value[1], note, actor.org_id, actor.key_id, at),
                )
                added += max(cursor.rowcount, 0)
            self._audit(conn, actor.org_id, actor.key_id, "safelist.add", f"batch:{len(values)}",
                        json.dumps({"added": added, "note": note}))
        return added

    def safelist_version(self) -> tuple[int, int, str, str]:
        """Changes whenever the safelist does: callers cache the list against it."""
        # Every add (or re-add of a removed entry) moves the newest created_at, every removal the
        # newest removed_at: a cache keyed on this never misses a change.
        row = self._rows("SELECT COUNT(*) AS n, COALESCE(MAX(id), 0) AS last, COALESCE(MAX(created_at), '') AS added,"
                         " COALESCE(MAX(removed_at), '') AS removed FROM safelist")[0]
        return int(row["n"]), int(row["last"]), str(row["added"]), str(row["removed"])

    def safelist_values(self, signal: str) -> list[tuple[int, str]]:
        rows = self._rows("SELECT id, value FROM safelist WHERE signal = ? AND removed_at IS NULL ORDER BY id",
                          (signal,))
        return [(int(r["id"]), str(r["value"])) for r in rows]

    def safelist_entries(self, after_id: int = 0, limit: int = 100) -> list[SafelistEntry]:
        rows = self._rows("SELECT id, signal, value, note, created_at FROM safelist WHERE removed_at IS NULL"
                          " AND id > ? ORDER BY id LIMIT ?", (after_id, limit))
        return [SafelistEntry(int(r["id"]), str(r["signal"]), str(r["value"]), str(r["note"]), str(r["created_at"]))
                for r in rows]

    def safelist_listers(self, entry_ids: Sequence[int]) -> dict[int, Principal]:
        """Who listed each of these entries (the admin's organisation and key; no key for an entry
        listed locally or before keys were kept), by entry id. Entries without an organisation
        are left out."""
        rows = self._rows_in("SELECT s.id, s.org_id, s.key_id, o.name FROM safelist s JOIN orgs o ON o.id = s.org_id"
                             " WHERE s.id IN ({marks})", (), list(dict.fromkeys(entry_ids)))
        return {int(r["id"]): Principal(int(r["org_id"]), str(r["name"]), "admin",
                                        None if r["key_id"] is None else int(r["key_id"])) for r in rows}

    def remove_safelist(self, entry_ids: Sequence[int], actor: Principal, note: str) -> list[int]:
        """Take entries off the safelist; returns the ids that were on it. Records it held stay
        quarantined until an admin releases them."""
        at = now()
        removed: list[int] = []
        with self._write() as conn:
            for entry_id in dict.fromkeys(entry_ids):
                cursor = conn.execute("UPDATE safelist SET removed_at = ? WHERE id = ? AND removed_at IS NULL",
                                      (at, entry_id))
                if cursor.rowcount > 0:
                    removed.append(entry_id)
            if removed:
                self._audit(conn, actor.org_id, actor.key_id, "safelist.remove", f"batch:{len(removed)}",
                            json.dumps({"ids": removed, "note": note}))
        return removed

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

    # disputes ---------------------------------------------------------------------------------

    def uphold(self, record_id: int, actor: Principal, reason: str) -> HashRecord:
        """An admin's ruling that a disputed record stands: active again, and the votes against it
        cast so far (disagree, false_positive) overruled: kept, and counted in disagree and
        false_positive, but no longer in standing_votes. Agree votes are what the ruling says:
        they stay standing, or members who agreed would have to vote again to outweigh the next
        two dissenters (found in trial)."""
        with self._write() as conn:
            signal, old, labels = self._locked_record(conn, record_id)
            if old != "disputed":
                raise Conflict(f"hash record {record_id} is {old}, not disputed")
            at = now()
            overruled = conn.execute("UPDATE feedback SET overruled_at = ? WHERE record_id = ?"
                                     " AND overruled_at IS NULL AND verdict != 'agree'", (at, record_id)).rowcount
            conn.execute("UPDATE records SET status = 'active' WHERE id = ?", (record_id,))
            self._change(conn, "status", record_id, signal, "active", labels)
            self._audit(conn, actor.org_id, actor.key_id, "dispute.uphold", f"record:{record_id}",
                        json.dumps({"from": old, "to": "active", "reason": reason, "overruled": overruled}))
        return self._get(record_id)

    def standing_votes(self, record_id: int) -> Votes:
        """The votes a record's dispute status is decided by: those cast here since the last
        ruling that it stands, and any its mirror's source reports (rows.vote_counts, as
        RECORD_COLUMNS counts them)."""
        rows = self._rows(f"SELECT {vote_counts(standing=True)} FROM records r WHERE r.id = ?", (record_id,))
        return Votes(*(int(rows[0][v]) for v in ("agree", "disagree", "false_positive"))) if rows else Votes()

    @staticmethod
    def _check_rule(rule: str) -> None:
        check_choice("quarantine rule", rule, QUARANTINE_RULES)

    # spike counters ---------------------------------------------------------------------------

    def count_matches(self, counts: Sequence[tuple[int, str, int, int]],
                      since_bucket: str) -> dict[int, tuple[int, ...]]:
        """Add (record id, hour bucket, org id, matches) and return, per record counted, each
        matching organisation's matches in buckets >= since_bucket, largest first. Older
        buckets of those records are dropped: nothing reads them again."""
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
                "SELECT record_id, SUM(n) AS n FROM match_counts"
                " WHERE bucket >= ? AND record_id IN ({marks}) GROUP BY record_id, org_id",
                (since_bucket,), record_ids,
            )
        per_org: dict[int, list[int]] = {}
        for r in rows:
            if int(r["n"]) > 0:
                per_org.setdefault(int(r["record_id"]), []).append(int(r["n"]))
        return {record_id: tuple(sorted(ns, reverse=True)) for record_id, ns in per_org.items()}

    # incidents --------------------------------------------------------------------------------

    def open_incident(self, name: str, description: str, actor: Principal) -> Incident:
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM incidents WHERE name = ?", (name,)).fetchone() is not None:
                raise Conflict(f"an incident named {name!r} already exists")
            (incident_id,) = conn.execute(
                "INSERT INTO incidents (name, description, status, opened_at) VALUES (?, ?, 'open', ?) RETURNING id",
                (name, description, now()),
            ).fetchone()
            self._audit(conn, actor.org_id, actor.key_id, "incident.open", f"incident:{incident_id}",
                        json.dumps({"name": name, "description": description}))
        return self._incidents("id = ?", (incident_id,))[0]

    def close_incident(self, incident_id: int, actor: Principal) -> Incident:
        with self._write() as conn:
            row = conn.execute("SELECT status FROM incidents WHERE id = ?", (incident_id,)).fetchone()
            if row is None:
                raise NotFound(f"no incident with id {incident_id}")
            if row[0] == "open":
                conn.execute("UPDATE incidents SET status = 'closed', closed_at = ? WHERE id = ?",
                             (now(), incident_id))
                self._audit(conn, actor.org_id, actor.key_id, "incident.close", f"incident:{incident_id}", "")
        return self._incidents("id = ?", (incident_id,))[0]

    def incidents(self, open_only: bool = False) -> list[Incident]:
        return self._incidents("status = 'open'" if open_only else "1 = 1", ())

    def find_incident(self, name: str) -> Incident | None:
        found = self._incidents("name = ?", (name,))
        return found[0] if found else None

    def get_incident(self, incident_id: int) -> Incident | None:
        found = self._incidents("id = ?", (incident_id,))
        return found[0] if found else None

    def _incidents(self, where: str, params: Sequence[Any]) -> list[Incident]:
        rows = self._rows(f"SELECT * FROM incidents WHERE {where} ORDER BY id", params)
        return [Incident(int(r["id"]), r["name"], r["description"], r["status"], str(r["opened_at"]),
                         r["closed_at"]) for r in rows]

    # webhooks and their outbox ----------------------------------------------------------------

    def add_webhook(self, org_id: int, url: str, salt: str, actor: Principal) -> Webhook:
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM orgs WHERE id = ?", (org_id,)).fetchone() is None:
                raise NotFound(f"no organisation with id {org_id}")
            (webhook_id,) = conn.execute(
                "INSERT INTO webhooks (org_id, url, salt, created_at) VALUES (?, ?, ?, ?) RETURNING id",
                (org_id, url, salt, now()),
            ).fetchone()
            self._audit(conn, actor.org_id, actor.key_id, "webhook.add", f"webhook:{webhook_id}",
                        json.dumps({"org_id": org_id, "url": url}))
        return self._webhooks("w.id = ?", (webhook_id,))[0]

    def remove_webhook(self, webhook_id: int, actor: Principal) -> Webhook:
        with self._write() as conn:
            cursor = conn.execute("UPDATE webhooks SET disabled_at = COALESCE(disabled_at, ?) WHERE id = ?",
                                  (now(), webhook_id))
            if cursor.rowcount == 0:
                raise NotFound(f"no webhook with id {webhook_id}")
            self._audit(conn, actor.org_id, actor.key_id, "webhook.remove", f"webhook:{webhook_id}", "")
        return self._webhooks("w.id = ?", (webhook_id,))[0]

    def webhooks(self, active_only: bool = True) -> list[Webhook]:
        return self._webhooks("w.disabled_at IS NULL" if active_only else "1 = 1", ())

    def _webhooks(self, where: str, params: Sequence[Any]) -> list[Webhook]:
        rows = self._rows(f"SELECT w.*, o.name AS org_name, {_RECEIVES} AS receives"
                          " FROM webhooks w JOIN orgs o ON o.id = w.org_id"
                          f" WHERE {where} ORDER BY w.id", params)
        return [Webhook(int(r["id"]), int(r["org_id"]), r["org_name"], r["url"], r["salt"], str(r["created_at"]),
                        r["disabled_at"], bool(r["receives"])) for r in rows]

    def enqueue_deliveries(self, payloads: Sequence[tuple[int, str]], again: bool = False) -> int:
        """One outbox row per (record, active webhook of an organisation holding a live partner or
        admin key: the payload carries hash values, which only those roles may read in bulk);
        a pair already queued is left alone, except with `again` one that failed or was not sent
        (a record released from quarantine): due again, with its attempts from 0. Returns how
        many pairs were offered."""
        if not payloads:
            return 0
        at = now()
        with self._write() as conn:
            hooks = [int(r[0]) for r in conn.execute(
                f"SELECT w.id FROM webhooks w WHERE w.disabled_at IS NULL AND {_RECEIVES}").fetchall()]
            rows = [(hook, record_id, payload, at, at) for record_id, payload in payloads for hook in hooks]
            if rows:
                conn.executemany(
                    "INSERT INTO webhook_outbox (webhook_id, record_id, payload, state, attempts, next_at, created_at)"
                    " VALUES (?, ?, ?, 'pending', 0, ?, ?) ON CONFLICT (webhook_id, record_id) "
                    + ("DO UPDATE SET state = 'pending', attempts = 0, next_at = excluded.next_at,"
                       " payload = excluded.payload WHERE webhook_outbox.state = 'failed'" if again else "DO NOTHING"),
                    rows,
                )
        return len(rows)

    def claim_subscribers(self, at: str, lease_until: str, limit: int, skip: Sequence[int] = ()) -> list[Subscriber]:
        """Active webhooks with a delivery due and neither a worker's claim nor a backoff on them,
        held until `lease_until` so no other worker sends to them meanwhile (a worker that dies
        leaves them due again when the lease ends). `skip`: webhooks this pass already served."""
        claimable = ("SELECT w.id, w.url, w.salt, w.failures FROM webhooks w"
                     " WHERE w.disabled_at IS NULL AND (w.next_at IS NULL OR w.next_at <= ?)"
                     f"{''.join(f' AND w.id != {int(i)}' for i in skip)}"
                     " AND EXISTS (SELECT 1 FROM webhook_outbox o"
                     " WHERE o.webhook_id = w.id AND o.state = 'pending' AND o.next_at <= ?)"
                     " ORDER BY w.id LIMIT ?")
        # A read first: with nothing due (the usual case), or only subscribers waiting out a
        # backoff, a poll takes no write lock, so it never queues behind another writer.
        if not self._rows(claimable, (at, at, 1)):
            return []
        with self._write() as conn:
            rows = dicts(conn.execute(claimable, (at, at, limit)))
            ids = [int(r["id"]) for r in rows]
            if ids:
                conn.execute(f"UPDATE webhooks SET next_at = ? WHERE id IN ({', '.join('?' for _ in ids)})",
                             [lease_until, *ids])
        return [Subscriber(int(r["id"]), r["url"], r["salt"], int(r["failures"])) for r in rows]

    def due_deliveries(self, webhook_id: int, at: str, limit: int) -> list[Delivery]:
        """A claimed subscriber's due deliveries, oldest due first (a retry waits its turn)."""
        rows = self._rows(
            "SELECT o.id, o.webhook_id, o.payload, o.attempts, r.status, r.labels FROM webhook_outbox o"
            " JOIN records r ON r.id = o.record_id"
            " WHERE o.webhook_id = ? AND o.state = 'pending' AND o.next_at <= ? ORDER BY o.next_at, o.id LIMIT ?",
            (webhook_id, at, limit),
        )
        return [Delivery(int(r["id"]), int(r["webhook_id"]), r["payload"], int(r["attempts"]), str(r["status"]),
                         labels_from_json(r["labels"])) for r in rows]

    def finish_delivery(self, delivery_id: int, at: str, status_code: int | None, error: str, duration_ms: int,
                        delivered: bool, retry_at: str | None, hold_until: str, failures: int) -> None:
        """Log the attempt; the row is delivered, due again at `retry_at`, or (None) given up.
        Its webhook is held until `hold_until` (the sender's renewed claim, or its backoff) with
        `failures` in a row."""
        state = "delivered" if delivered else ("pending" if retry_at is not None else "failed")
        with self._write() as conn:
            conn.execute(
                "INSERT INTO webhook_attempts (outbox_id, at, status_code, error, duration_ms) VALUES (?, ?, ?, ?, ?)",
                (delivery_id, at, status_code, error, duration_ms),
            )
            conn.execute(
                "UPDATE webhook_outbox SET state = ?, attempts = attempts + 1, next_at = ? WHERE id = ?",
                (state, retry_at or at, delivery_id),
            )
            conn.execute(
                "UPDATE webhooks SET next_at = ?, failures = ?"
                " WHERE id = (SELECT webhook_id FROM webhook_outbox WHERE id = ?)",
                (hold_until, failures, delivery_id),
            )

    def release_subscriber(self, webhook_id: int, at: str) -> None:
        """End a sender's claim: the webhook is due again from `at` (for records queued since)."""
        with self._write() as conn:
            conn.execute("UPDATE webhooks SET next_at = ? WHERE id = ?", (at, webhook_id))

    def delivery_attempts(self, after_id: int = 0, limit: int = 100) -> list[DeliveryAttempt]:
        rows = self._rows(
            "SELECT a.id, a.outbox_id, o.webhook_id, o.record_id, a.at, a.status_code, a.error, a.duration_ms"
            " FROM webhook_attempts a JOIN webhook_outbox o ON o.id = a.outbox_id WHERE a.id > ? ORDER BY a.id LIMIT ?",
            (after_id, limit),
        )
        return [DeliveryAttempt(int(r["outbox_id"]), int(r["webhook_id"]), int(r["record_id"]), str(r["at"]),
                                None if r["status_code"] is None else int(r["status_code"]), r["error"],
                                int(r["duration_ms"]), int(r["id"])) for r in rows]

    def delivery_states(self) -> dict[str, int]:
        rows = self._rows("SELECT state, COUNT(*) AS n FROM webhook_outbox GROUP BY state ORDER BY state")
        return {str(r["state"]): int(r["n"]) for r in rows}

    # transparency report ----------------------------------------------------------------------

    def contributor_counts(self) -> dict[str, int]:
        """Records not retracted, per contributing organisation (named only in an admin report)."""
        rows = self._rows("SELECT o.name AS k, COUNT(*) AS n FROM records r JOIN orgs o ON o.id = r.org_id"
                          " WHERE r.status != 'retracted' GROUP BY o.name ORDER BY o.name")
        return {str(r["k"]): int(r["n"]) for r in rows}

    def integrity_counts(self) -> dict[str, dict[str, int]]:
        """Quarantines by rule and by outcome, incidents by status, safelist size."""
        def group(sql: str) -> dict[str, int]:
            return {str(r["k"]): int(r["n"]) for r in self._rows(sql)}

        return {
            "quarantine_rule": group("SELECT rule AS k, COUNT(*) AS n FROM quarantines GROUP BY rule ORDER BY rule"),
            # An open quarantine of a record its organisation retracted was withdrawn, not pending.
            "quarantine_outcome": group(
                "SELECT COALESCE(q.resolution, CASE WHEN r.status = 'retracted' THEN 'withdrawn' ELSE 'pending' END)"
                " AS k, COUNT(*) AS n FROM quarantines q JOIN records r ON r.id = q.record_id GROUP BY k ORDER BY k"),
            "incident": group("SELECT status AS k, COUNT(*) AS n FROM incidents GROUP BY status ORDER BY status"),
            "safelist": group("SELECT signal AS k, COUNT(*) AS n FROM safelist WHERE removed_at IS NULL"
                              " GROUP BY signal ORDER BY signal"),
        }
