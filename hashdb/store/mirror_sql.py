"""Store methods for a local mirror of another hashdb, in the SQL both dialects speak (see sql.py).

A mixin over SQLStore. A page of the source's feed, the source-id mapping and the source's
cursor commit in one write transaction, with the change-log rows the index replays and one
audit row. Entries arrive validated (hashdb/mirror.py); this layer decides what each changes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from itertools import count
from typing import Any

from hashdb.store.rows import check_record, check_text, labels_json, now
from hashdb.store.sql import Connection, Key, SQLStore, select_in
from hashdb.types import FeedEntry, HashValue, MirrorKeypoints, MirrorOutcome, NewRecord, Principal, Votes


class MirrorSQL(SQLStore):
    def apply_feed(self, source: str, org: str, entries: Sequence[FeedEntry], cursor: str | None,
                   actor: Principal) -> MirrorOutcome:
        for what, value in (("source", source), ("organisation name", org), ("cursor", cursor)):
            check_text(what, value)
        # Each source record's entries in feed order: only its newest state matters, and the
        # whole page commits at once, so intermediate states need not be replayed one by one.
        groups: dict[int, list[FeedEntry]] = {}
        for entry in sorted(entries, key=lambda e: e.seq):
            groups.setdefault(entry.id, []).append(entry)
        effects = {"added": 0, "changed": 0, "retracted": 0, "unchanged": 0}
        with self._write() as conn:
            rows = select_in(conn, "SELECT source_id, record_id, source_seq, agree, disagree, false_positive"
                                   " FROM mirror_records WHERE source = ? AND source_id IN ({marks})",
                             (source,), list(groups))
            mapped = {int(r["source_id"]): (int(r["record_id"]), int(r["source_seq"])) for r in rows}
            heard = {int(r["source_id"]): _votes(r) for r in rows}
            fresh: list[FeedEntry] = []
            for source_id, group in groups.items():
                latest = group[-1]
                if source_id not in mapped:
                    if latest.status == "retracted":
                        effects["unchanged"] += 1  # retracted before we held it: nothing to take back
                    else:
                        fresh.append(latest)
                    continue
                record_id, applied = mapped[source_id]
                if latest.seq <= applied:
                    effects["unchanged"] += 1  # already applied: a replayed page or an older file
                    continue
                effect = self._mirror_update(conn, record_id, latest)
                if latest.votes is not None and latest.votes != heard[source_id]:
                    signal, status, labels = self._locked_record(conn, record_id)
                    if effect == "unchanged" and status != "retracted":
                        # So this mirror's own feed carries the new counts on, as its source's did.
                        self._change(conn, "status", record_id, signal, status, labels)
                        effect = "changed"
                    conn.execute("UPDATE mirror_records SET agree = ?, disagree = ?, false_positive = ?"
                                 " WHERE source = ? AND source_id = ?", (*_counts(latest.votes), source, source_id))
                effects[effect] += 1
                conn.execute("UPDATE mirror_records SET source_seq = ? WHERE source = ? AND source_id = ?",
                             (latest.seq, source, source_id))
            effects["added"] = self._mirror_insert(conn, source, org, fresh)
            if cursor is not None:
                # Only when it moves: applying the same page twice writes nothing at all.
                conn.execute(
                    "INSERT INTO mirror_sources (source, cursor, updated_at) VALUES (?, ?, ?)"
                    " ON CONFLICT (source) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at"
                    " WHERE mirror_sources.cursor != excluded.cursor",
                    (source, cursor, now()),
                )
            if effects["added"] or effects["changed"] or effects["retracted"]:
                self._audit(conn, actor.org_id, actor.key_id, "mirror.apply", f"source:{source}",
                            json.dumps({**effects, "cursor": cursor}))
        return MirrorOutcome(**effects)

    def _mirror_update(self, conn: Connection, record_id: int, entry: FeedEntry) -> str:
        signal, status, old_labels = self._locked_record(conn, record_id)
        if status == "retracted":
            # Only the source's organisation sharing the hash again brings a tombstone back
            # (the source then sends an `add`); a live status after it means just that.
            if entry.status == "retracted":
                return "unchanged"
            labels = labels_json(entry.labels)
            conn.execute("UPDATE records SET status = ?, labels = ? WHERE id = ?", (entry.status, labels, record_id))
            self._take_details(conn, record_id, entry)
            self._change(conn, "add", record_id, signal, entry.status, labels)
            self._keep_keypoints(conn, record_id, entry.keypoints)
            return "changed"
        effect = "unchanged"
        # Before any change is logged: each logged change keeps the record's details as they are.
        details_changed = self._take_details(conn, record_id, entry)
        labels = labels_json(entry.labels)
        if labels != old_labels:
            conn.execute("UPDATE records SET labels = ? WHERE id = ?", (labels, record_id))
            self._change(conn, "labels", record_id, signal, status, labels)
            effect = "changed"
        if entry.status != status:
            conn.execute("UPDATE records SET status = ? WHERE id = ?", (entry.status, record_id))
            kind = "retract" if entry.status == "retracted" else "status"
            self._change(conn, kind, record_id, signal, entry.status, labels)
            effect = "retracted" if kind == "retract" else "changed"
        if details_changed and effect == "unchanged":
            # Retracted and shared again at the source within one page, labels and status as
            # before: a `status` change, as a vote's is, carries the new details to this
            # mirror's own partners (an `add` would put the live record in the index twice).
            self._change(conn, "status", record_id, signal, status, labels)
            effect = "changed"
        return effect

    @staticmethod
    def _take_details(conn: Connection, record_id: int, entry: FeedEntry) -> bool:
        """Give the record the entry's incident, quality and media type; whether they differed.
        They change at the source when its organisation shares the hash again after retracting
        it, possibly under another incident: the record came back with the new ones there."""
        wanted = (entry.incident, entry.quality, entry.media_type)
        held = conn.execute("SELECT incident, quality, media_type FROM records WHERE id = ?", (record_id,)).fetchone()
        if tuple(held) == wanted:
            return False
        conn.execute("UPDATE records SET incident = ?, quality = ?, media_type = ? WHERE id = ?", (*wanted, record_id))
        return True

    def _mirror_insert(self, conn: Connection, source: str, org: str, entries: Sequence[FeedEntry]) -> int:
        if not entries:
            return 0
        # A submission batch shares one created_at: grouping by it keeps the source's dates
        # (the transparency report counts by month) in a few set-at-a-time inserts.
        groups: dict[tuple[int, str], list[FeedEntry]] = {}
        for entry, org_id in zip(entries, self._mirror_orgs(conn, org, entries)):
            groups.setdefault((org_id, entry.created_at), []).append(entry)
        mapping: list[tuple[Any, ...]] = []
        for (org_id, created_at), group in groups.items():
            records = [NewRecord(HashValue(e.signal, e.hash, e.quality), e.media_type, e.labels, e.incident,
                                 frames=e.frames, status=e.status, derived=e.derived, tmk=e.tmk,
                                 keypoints=e.keypoints) for e in group]
            for record in records:
                check_record(record)
            outcomes = self._insert(conn, records, org_id, created_at)
            mapping += [(source, e.id, o.id, e.seq, *_counts(e.votes)) for e, o in zip(group, outcomes)]
        # record_id is UNIQUE: should two source records ever land on one local record, the
        # transaction fails rather than let one source record's changes rewrite the other.
        self._insert_rows(conn, "mirror_records", ("source", "source_id", "record_id", "source_seq", "agree",
                                                   "disagree", "false_positive"), mapping)
        return len(mapping)

    def _mirror_orgs(self, conn: Connection, org: str, entries: Sequence[FeedEntry]) -> list[int]:
        """The organisation each new record is held under.

        The source keeps one record per (hash, contributing organisation) and its feed names no
        organisation, while a record here is unique per (signal, hash, organisation): the n-th
        source record holding a hash goes under `org#n` (the first under `org`). Each record
        then keeps the support the source reports for it.
        """
        prefix = org + "#"
        ids: dict[str, int] = {str(name): int(org_id) for org_id, name in conn.execute(
            "SELECT id, name FROM orgs WHERE name = ? OR substr(name, 1, ?) = ?", (org, len(prefix), prefix)
        ).fetchall()}
        slot_of = {org_id: _slot(org, name) for name, org_id in ids.items()}
        taken: dict[Key, set[int]] = {}
        for row in self._holders(conn, [(e.signal, e.hash) for e in entries]):
            slot = slot_of.get(int(row["org_id"]))
            if slot is not None:
                taken.setdefault((row["signal"], row["value"]), set()).add(slot)
        out: list[int] = []
        for entry in entries:
            used = taken.setdefault((entry.signal, entry.hash), set())
            slot = next(n for n in count(1) if n not in used)
            used.add(slot)
            name = org if slot == 1 else f"{prefix}{slot}"
            if name not in ids:
                conn.execute("INSERT INTO orgs (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
                             (name, now()))
                (ids[name],) = conn.execute("SELECT id FROM orgs WHERE name = ?", (name,)).fetchone()
            out.append(int(ids[name]))
        return out

    @staticmethod
    def _holders(conn: Connection, keys: Sequence[Key]) -> list[dict[str, Any]]:
        by_signal: dict[str, list[str]] = {}
        for signal, value in dict.fromkeys(keys):
            by_signal.setdefault(signal, []).append(value)
        rows: list[dict[str, Any]] = []
        for signal, values in by_signal.items():
            rows += select_in(conn, "SELECT signal, value, org_id FROM records WHERE signal = ?"
                                    " AND value IN ({marks})", (signal,), values)
        return rows

    def mirror_cursor(self, source: str) -> str | None:
        rows = self._rows("SELECT cursor FROM mirror_sources WHERE source = ?", (source,))
        # '': a source known from an imported export only, which no sync has read yet.
        return str(rows[0]["cursor"]) or None if rows else None

    def mirror_source_of_feed(self, feed: str) -> str | None:
        rows = self._rows("SELECT source FROM mirror_sources WHERE feed = ? ORDER BY source LIMIT 1", (feed,))
        return str(rows[0]["source"]) if rows else None

    def mirror_feed(self, source: str) -> str | None:
        rows = self._rows("SELECT feed FROM mirror_sources WHERE source = ?", (source,))
        return str(rows[0]["feed"]) if rows and rows[0]["feed"] is not None else None

    def set_mirror_feed(self, source: str, feed: str) -> None:
        check_text("feed", feed)
        with self._write() as conn:
            # Only when it is new (a first sync, or the first from a server that names its
            # feed): a sync that finds nothing new writes nothing.
            conn.execute("INSERT INTO mirror_sources (source, cursor, updated_at, feed) VALUES (?, '', ?, ?)"
                         " ON CONFLICT (source) DO UPDATE SET feed = excluded.feed"
                         " WHERE mirror_sources.feed IS NULL OR mirror_sources.feed != excluded.feed",
                         (source, now(), feed))

    def mirror_origins(self, record_ids: Sequence[int]) -> dict[int, tuple[str, int]]:
        rows = self._rows_in("SELECT source, source_id, record_id FROM mirror_records WHERE record_id IN ({marks})",
                             (), list(dict.fromkeys(record_ids)))
        return {int(r["record_id"]): (str(r["source"]), int(r["source_id"])) for r in rows}

    def mirror_ids(self, source: str, source_ids: Sequence[int]) -> dict[int, int]:
        rows = self._rows_in("SELECT source_id, record_id FROM mirror_records WHERE source = ?"
                             " AND source_id IN ({marks})", (source,), list(dict.fromkeys(source_ids)))
        return {int(r["source_id"]): int(r["record_id"]) for r in rows}

    def mirror_keypoints(self, source: str) -> MirrorKeypoints:
        # Two probes that each stop at their first row, each table read in the order written
        # (CROSS JOIN keeps SQLite to it). Keypoints from their own table: a mirror holds few or
        # none of them, where it may hold millions of records from the source. Images from the
        # source's records, not every PDQ of a database that holds its own too.
        keypoints = self._rows("SELECT 1 FROM image_keypoints k CROSS JOIN mirror_records m"
                               " WHERE m.record_id = k.record_id AND m.source = ? LIMIT 1", (source,))
        images = self._rows("SELECT 1 FROM mirror_records m CROSS JOIN records r WHERE r.id = m.record_id"
                            " AND m.source = ? AND r.signal = 'pdq' AND r.media_type = 'image'"
                            " AND r.status != 'retracted' LIMIT 1", (source,))
        return MirrorKeypoints(images=bool(images), keypoints=bool(keypoints))


def _votes(row: dict[str, Any]) -> Votes | None:
    if row["agree"] is None:
        return None  # the source's feed has not said
    return Votes(int(row["agree"]), int(row["disagree"]), int(row["false_positive"]))


def _counts(votes: Votes | None) -> tuple[int | None, int | None, int | None]:
    return (None, None, None) if votes is None else (votes.agree, votes.disagree, votes.false_positive)


def _slot(org: str, name: str) -> int | None:
    if name == org:
        return 1
    suffix = name[len(org) + 1:]
    return int(suffix) if suffix.isascii() and suffix.isdigit() else None
