"""Ordered, named schema migrations for the SQLite store (sqlite-utils' Migrations).

Never edit an applied migration: add a new one. PostgreSQL keeps its own DDL in
postgres_schema.py (its dialect differs: identities, BIGINT, a unique key's column order);
tests/store/test_schema_equal.py applies both to real databases and holds the resulting
schemas equal, table by table, so a change here needs its twin there.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Iterator

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from hashdb.errors import StoreUnavailable

migrations = Migrations("hashdb")


def statements(script: str) -> Iterator[str]:
    """Split a DDL script into whole statements (semicolons inside comments or strings stay put)."""
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            yield pending.strip()
            pending = ""
    if pending.strip():
        raise ValueError(f"incomplete SQL statement in migration: {pending.strip()[:60]!r}")


def run_script(db: Database, script: str) -> None:
    # Not db.executescript(): sqlite3 COMMITs any open transaction before a script, which would
    # take the migration out of the transaction that also records it as applied.
    for statement in statements(script):
        db.execute(statement)


def upgrade(db: Database) -> list[str]:
    """Apply what is pending; the names applied to a database an earlier hashdb made (none for a
    new file, whose whole schema is pending and nobody else's to lose)."""
    earlier = bool(migrations.applied(db))
    pending = [m.name for m in migrations.pending(db)]
    migrations.apply(db)
    return pending if earlier else []


def upgrade_notice(where: object, names: list[str]) -> str:
    """What an operator is told when opening a database upgraded it: from now on an older hashdb
    refuses it (refuse_newer), which otherwise they learn only when one does."""
    changes = names[0] if len(names) == 1 else f"{names[0]} to {names[-1]}"
    return (f"{where}: upgraded to this hashdb's schema ({changes}); an older hashdb refuses it from now on "
            "(a backup taken before the upgrade still opens there)")


def refuse_foreign(db: Database, path: object) -> None:
    """Refuse a database hashdb never migrated that holds tables (another program's): migrating
    it would write hashdb's twenty tables into it, which a mistyped --db must not do."""
    foreign = foreign_tables(db)
    if foreign:
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        raise StoreUnavailable(f"{path} is another program's SQLite database (tables: {shown}), "
                               "not a hashdb database: check --db or HASHDB_DB")


def refuse_newer(db: Database, path: object) -> None:
    """Refuse a database a newer hashdb migrated: this version does not know the tables and
    rules those migrations added (a column it never fills, a rule it never keeps), so writing
    to it could break what the newer version relies on, and reading it could miss what it
    holds. Said before anything is written."""
    if Migrations.migrations_table not in db.table_names():
        return
    known = {m.name for m in migrations._migrations}
    unknown = [str(row[0]) for row in db.execute(
        f"SELECT name FROM {Migrations.migrations_table} WHERE migration_set = ? ORDER BY rowid",
        [migrations.name]).fetchall() if str(row[0]) not in known]
    if unknown:
        raise StoreUnavailable(f"{path} was upgraded by a newer hashdb (its schema has {len(unknown)} change"
                               f"{'s' if len(unknown) > 1 else ''} this version does not know, first "
                               f"{unknown[0]}): run that version, or restore a backup taken before the upgrade")


def foreign_tables(db: Database) -> list[str]:
    """The tables of a database hashdb never migrated: none for a new file or one of ours."""
    names = [str(row[0]) for row in db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").fetchall()]
    if Migrations.migrations_table in names:
        ours = db.execute(f"SELECT 1 FROM {Migrations.migrations_table} WHERE migration_set = ? LIMIT 1",
                          [migrations.name]).fetchone()
        if ours:
            return []
    return sorted(name for name in names if name != Migrations.migrations_table)


@migrations()
def m001_core(db: Database) -> None:
    run_script(db, 
        """
        CREATE TABLE orgs (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL
        );
        CREATE TABLE api_keys (
            id INTEGER PRIMARY KEY,
            org_id INTEGER NOT NULL REFERENCES orgs(id),
            role TEXT NOT NULL CHECK (role IN ('consumer', 'contributor', 'partner', 'admin')),
            prefix TEXT NOT NULL UNIQUE,
            secret_hash TEXT NOT NULL,
            created_at TEXT NOT NULL,
            revoked_at TEXT
        );
        CREATE TABLE records (
            id INTEGER PRIMARY KEY,
            signal TEXT NOT NULL,
            value TEXT NOT NULL,
            quality INTEGER,
            media_type TEXT NOT NULL,
            labels TEXT NOT NULL,          -- JSON array of taxonomy ids
            incident TEXT,
            reference TEXT,                -- the contributor's own id: their evidence pointer
            removed_at TEXT,
            org_id INTEGER NOT NULL REFERENCES orgs(id),
            status TEXT NOT NULL CHECK (status IN ('active', 'disputed', 'quarantined', 'retracted')),
            created_at TEXT NOT NULL,
            UNIQUE (signal, value, org_id)
        );
        CREATE INDEX records_value ON records (signal, value);
        CREATE TABLE video_frames (
            id INTEGER PRIMARY KEY,
            record_id INTEGER NOT NULL REFERENCES records(id),
            frame_number INTEGER NOT NULL,
            timestamp REAL NOT NULL,
            value TEXT NOT NULL,
            quality INTEGER
        );
        CREATE INDEX video_frames_record ON video_frames (record_id);
        CREATE TABLE feedback (
            record_id INTEGER NOT NULL REFERENCES records(id),
            org_id INTEGER NOT NULL REFERENCES orgs(id),
            verdict TEXT NOT NULL CHECK (verdict IN ('agree', 'disagree', 'false_positive')),
            note TEXT NOT NULL DEFAULT '',
            updated_at TEXT NOT NULL,
            PRIMARY KEY (record_id, org_id)
        );
        CREATE TABLE idempotency (
            org_id INTEGER NOT NULL REFERENCES orgs(id),
            key TEXT NOT NULL,
            request_digest TEXT NOT NULL,
            response TEXT NOT NULL,        -- JSON of the outcomes first returned
            created_at TEXT NOT NULL,
            PRIMARY KEY (org_id, key)
        );
        -- AUTOINCREMENT: a sequence number is never reused, even after the last row is
        -- deleted, so a partner's cursor can never point at a different change.
        CREATE TABLE changes (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL,
            record_id INTEGER NOT NULL REFERENCES records(id),
            signal TEXT NOT NULL,
            status TEXT NOT NULL,
            labels TEXT NOT NULL,
            at TEXT NOT NULL
        );
        CREATE TABLE audit (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at TEXT NOT NULL,
            org_id INTEGER,
            key_id INTEGER,
            action TEXT NOT NULL,
            target TEXT NOT NULL,
            detail TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            entry_hash TEXT NOT NULL
        );
        """
    )


@migrations()
def m002_poisoning(db: Database) -> None:
    """Safelist of benign hashes, quarantine reasons, per-hour match counters (spike rule)."""
    run_script(db,
        """
        CREATE TABLE safelist (
            id INTEGER PRIMARY KEY,
            signal TEXT NOT NULL,
            value TEXT NOT NULL,
            note TEXT NOT NULL DEFAULT '',
            org_id INTEGER REFERENCES orgs(id),
            created_at TEXT NOT NULL,
            UNIQUE (signal, value)
        );
        CREATE TABLE quarantines (
            id INTEGER PRIMARY KEY,
            record_id INTEGER NOT NULL REFERENCES records(id),
            rule TEXT NOT NULL CHECK (rule IN ('safelist', 'spike', 'manual')),
            reason TEXT NOT NULL,
            created_at TEXT NOT NULL,
            resolution TEXT CHECK (resolution IN ('released', 'confirmed')),
            resolved_at TEXT,
            resolved_by INTEGER REFERENCES orgs(id)
        );
        CREATE INDEX quarantines_record ON quarantines (record_id);
        -- Partial: only the few quarantined rows, so listing them never scans every record.
        CREATE INDEX records_quarantined ON records (id) WHERE status = 'quarantined';
        CREATE TABLE match_counts (
            record_id INTEGER NOT NULL REFERENCES records(id),
            bucket TEXT NOT NULL,          -- UTC hour, YYYY-MM-DDTHH
            org_id INTEGER NOT NULL REFERENCES orgs(id),
            n INTEGER NOT NULL,
            PRIMARY KEY (record_id, bucket, org_id)
        );
        """
    )


@migrations()
def m003_incidents_webhooks(db: Database) -> None:
    """Crisis incidents, member webhooks, their delivery outbox and every delivery attempt."""
    run_script(db,
        """
        CREATE TABLE incidents (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            description TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL CHECK (status IN ('open', 'closed')),
            opened_at TEXT NOT NULL,
            closed_at TEXT
        );
        CREATE TABLE webhooks (
            id INTEGER PRIMARY KEY,
            org_id INTEGER NOT NULL REFERENCES orgs(id),
            url TEXT NOT NULL,
            salt TEXT NOT NULL,            -- the signing secret is HMAC(server secret, salt)
            created_at TEXT NOT NULL,
            disabled_at TEXT
        );
        -- Written right after the records it announces; the delivery worker drains it.
        CREATE TABLE webhook_outbox (
            id INTEGER PRIMARY KEY,
            webhook_id INTEGER NOT NULL REFERENCES webhooks(id),
            record_id INTEGER NOT NULL REFERENCES records(id),
            payload TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_at TEXT NOT NULL,         -- due time, or the end of a worker's claim on it
            created_at TEXT NOT NULL,
            UNIQUE (webhook_id, record_id)
        );
        CREATE INDEX webhook_outbox_due ON webhook_outbox (next_at) WHERE state = 'pending';
        CREATE TABLE webhook_attempts (
            id INTEGER PRIMARY KEY,
            outbox_id INTEGER NOT NULL REFERENCES webhook_outbox(id),
            at TEXT NOT NULL,
            status_code INTEGER,
            error TEXT NOT NULL DEFAULT '',
            duration_ms INTEGER NOT NULL
        );
        CREATE INDEX webhook_attempts_outbox ON webhook_attempts (outbox_id);
        """
    )


@migrations()
def m004_drop_records_value(db: Database) -> None:
    # UNIQUE (signal, value, org_id) already gives an index led by (signal, value): this one
    # served no query the unique key does not, and cost a second random B-tree insert per row.
    db.execute("DROP INDEX IF EXISTS records_value")


@migrations()
def m005_mirror(db: Database) -> None:
    """A local mirror of another hashdb: which local record holds each of the source's records,
    and how far its change feed has been applied."""
    run_script(db,
        """
        -- source_seq: the source's last change applied to the record, so a page applied twice
        -- (or an older file imported after a newer one) changes nothing.
        CREATE TABLE mirror_records (
            source TEXT NOT NULL,
            source_id INTEGER NOT NULL,
            record_id INTEGER NOT NULL UNIQUE REFERENCES records(id),
            source_seq INTEGER NOT NULL,
            PRIMARY KEY (source, source_id)
        );
        -- The cursor commits with the page it follows: a sync stopped at any moment resumes exactly.
        CREATE TABLE mirror_sources (
            source TEXT PRIMARY KEY,
            cursor TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        """
    )


# Each count a record contributes to `record_counts`, as (dim, key) rows selected from a
# records row named R: what /v1/stats and /metrics read instead of scanning every record.
# Labels count only while the record is live (not retracted), as the transparency report says.
_CONTRIBUTIONS = """
    SELECT 'signal' AS dim, {r}.signal AS key
    UNION ALL SELECT 'status', {r}.status
    UNION ALL SELECT 'month', substr({r}.created_at, 1, 7)
    UNION ALL SELECT 'label', j.value FROM json_each({r}.labels) AS j WHERE {r}.status != 'retracted'
"""


def _bump(row: str, sign: str) -> str:
    # `WHERE true`: SQLite needs it to parse an upsert whose rows come from a SELECT.
    return (f"INSERT INTO record_counts (dim, key, n) SELECT dim, key, {sign}1 FROM ("
            f"{_CONTRIBUTIONS.format(r=row)}) WHERE true "
            f"ON CONFLICT (dim, key) DO UPDATE SET n = n {sign} 1;")


@migrations()
def m006_record_counts(db: Database) -> None:
    """Counts by signal, status, month and label kept by triggers in the writing transaction,
    so reading them costs the same at a thousand records as at ten million."""
    run_script(db, f"""
        CREATE TABLE record_counts (
            dim TEXT NOT NULL,
            key TEXT NOT NULL,
            n INTEGER NOT NULL,
            PRIMARY KEY (dim, key)
        ) WITHOUT ROWID;
        INSERT INTO record_counts (dim, key, n)
            SELECT 'signal', signal, COUNT(*) FROM records GROUP BY signal
            UNION ALL SELECT 'status', status, COUNT(*) FROM records GROUP BY status
            UNION ALL SELECT 'month', substr(created_at, 1, 7), COUNT(*) FROM records GROUP BY 2
            UNION ALL SELECT 'label', j.value, COUNT(*) FROM records, json_each(records.labels) AS j
                WHERE records.status != 'retracted' GROUP BY j.value;
        CREATE TRIGGER record_counts_insert AFTER INSERT ON records BEGIN
            {_bump("NEW", "+")}
        END;
        CREATE TRIGGER record_counts_update AFTER UPDATE OF signal, status, labels, created_at ON records BEGIN
            {_bump("OLD", "-")}
            {_bump("NEW", "+")}
        END;
        CREATE TRIGGER record_counts_delete AFTER DELETE ON records BEGIN
            {_bump("OLD", "-")}
        END;
        """)


@migrations()
def m007_console(db: Database) -> None:
    """The web console: indexes led by each records filter and then id, so a page of records is
    an index range read at any size; a record's history by target; one-time sign-in links."""
    run_script(db,
        """
        CREATE INDEX records_status_id ON records (status, id);
        CREATE INDEX records_org_id ON records (org_id, id);
        CREATE INDEX records_incident_id ON records (incident, id) WHERE incident IS NOT NULL;
        CREATE INDEX records_signal_id ON records (signal, id);
        CREATE INDEX changes_record ON changes (record_id);
        CREATE INDEX audit_target ON audit (target);
        CREATE TABLE signin_links (
            token_hash TEXT PRIMARY KEY,   -- HMAC of the token under the server secret
            key_id INTEGER NOT NULL REFERENCES api_keys(id),
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            used_at TEXT
        );
        """
    )


@migrations()
def m008_drop_records_signal_id(db: Database) -> None:
    # With (signal, id) present, SQLite planned `signal = ? AND value IN (...) ORDER BY id` (an
    # exact-hash lookup) as a walk over every record of the signal instead of a probe of the
    # unique key: 0.5 s at 1M. The console's signal filter reads a bounded id window instead.
    db.execute("DROP INDEX IF EXISTS records_signal_id")


@migrations()
def m009_safelist_removal(db: Database) -> None:
    """Safelist entries can be removed: kept with the time, so the list's version (newest add
    and newest removal) changes on every add and every removal."""
    db.execute("ALTER TABLE safelist ADD COLUMN removed_at TEXT")


@migrations()
def m010_derived_hashes(db: Database) -> None:
    """Derived hashes (PDQs of an image's content region) of a record: same id, labels and
    status as the record; they match and leave with it."""
    run_script(db,
        """
        CREATE TABLE derived_hashes (
            id INTEGER PRIMARY KEY,
            record_id INTEGER NOT NULL REFERENCES records(id),
            via TEXT NOT NULL,
            value TEXT NOT NULL,
            quality INTEGER
        );
        CREATE INDEX derived_hashes_record ON derived_hashes (record_id);
        """
    )


@migrations()
def m011_tmk_hashes(db: Database) -> None:
    """A tmk record's TMK+PDQF features (the `.tmk` file, 263 KB) and, apart, its pure-average
    feature scaled to length 1 (1 KB): an index loads the small vectors, and reads a whole file
    only for the few candidates its first level finds. The record's value is the file's sha256."""
    run_script(db,
        """
        CREATE TABLE tmk_hashes (
            id INTEGER PRIMARY KEY,
            record_id INTEGER NOT NULL REFERENCES records(id),
            average BLOB NOT NULL,
            features BLOB NOT NULL
        );
        CREATE UNIQUE INDEX tmk_hashes_record ON tmk_hashes (record_id);
        """
    )


@migrations()
def m012_derived_share(db: Database) -> None:
    """A derived hash's region as a share of the image's area (NULL for rows stored before):
    matching asks more of two derived hashes of regions of the same share (matching.py)."""
    db.execute("ALTER TABLE derived_hashes ADD COLUMN share REAL")


@migrations()
def m013_mirror_votes(db: Database) -> None:
    """The votes a mirror's source reports for each record (NULL: its feed did not say), which
    the mirror's answers count as if cast here."""
    for column in ("agree", "disagree", "false_positive"):
        db.execute(f"ALTER TABLE mirror_records ADD COLUMN {column} INTEGER")


@migrations()
def m014_mirror_feed(db: Database) -> None:
    """The identity a source's server gives its feed (GET /v1/export's "feed"; NULL from older
    servers): the same server under another URL is then known, not mirrored twice."""
    db.execute("ALTER TABLE mirror_sources ADD COLUMN feed TEXT")


@migrations()
def m015_database_identity(db: Database) -> None:
    """A random identity made once with the database: what an index snapshot records as the
    database it was saved from, so a snapshot beside a replaced database is not trusted."""
    run_script(db, "CREATE TABLE database_identity (id TEXT PRIMARY KEY);")
    db.execute("INSERT INTO database_identity (id) VALUES (?)", [secrets.token_hex(16)])


@migrations()
def m016_derived_colours(db: Database) -> None:
    """A derived hash's region's colour layout (hashing/colour.py; NULL for rows stored before):
    PDQ reads brightness only, and matching compares the layouts of two derived hashes that match."""
    db.execute("ALTER TABLE derived_hashes ADD COLUMN colours TEXT")


@migrations()
def m017_webhook_pacing(db: Database) -> None:
    """Each webhook's own claim and backoff: one worker sends to a subscriber at a time, in order,
    and one that fails waits out its backoff as a whole (next_at), by its failures in a row."""
    run_script(db,
        """
        ALTER TABLE webhooks ADD COLUMN next_at TEXT;
        ALTER TABLE webhooks ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
        CREATE INDEX webhook_outbox_pending ON webhook_outbox (webhook_id, next_at) WHERE state = 'pending';
        """
    )


@migrations()
def m018_image_keypoints(db: Database) -> None:
    """An image PDQ record's keypoints (hashing/keypoints.py's stored format, 7 KB at most):
    what finds a crop no PDQ does. Exported only when asked for, by an operator who shares them."""
    run_script(db,
        """
        CREATE TABLE image_keypoints (
            id INTEGER PRIMARY KEY,
            record_id INTEGER NOT NULL REFERENCES records(id),
            data BLOB NOT NULL
        );
        CREATE UNIQUE INDEX image_keypoints_record ON image_keypoints (record_id);
        """
    )


@migrations()
def m019_keypoint_ids_kept(db: Database) -> None:
    """Keypoint row ids never given again (AUTOINCREMENT): SQLite otherwise reuses the highest id
    once a retraction deletes its row, and a keypoint index, following the rows by id
    (service/appended_rows.py) or saved up to one (keypoint_snapshot.py), would never read the
    row stored under it. PostgreSQL's identity column never reuses one."""
    run_script(db,
        """
        CREATE TABLE image_keypoints_kept (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            record_id INTEGER NOT NULL REFERENCES records(id),
            data BLOB NOT NULL
        );
        INSERT INTO image_keypoints_kept (id, record_id, data) SELECT id, record_id, data FROM image_keypoints;
        DROP TABLE image_keypoints;
        ALTER TABLE image_keypoints_kept RENAME TO image_keypoints;
        CREATE UNIQUE INDEX image_keypoints_record ON image_keypoints (record_id);
        """
    )


@migrations()
def m020_vote_rulings(db: Database) -> None:
    """When an admin's ruling that a disputed record stands took each vote out of the dispute
    count (NULL: the vote stands). The vote stays, in the record's counts too; one cast again
    after the ruling stands again (service/trust.py, uphold)."""
    db.execute("ALTER TABLE feedback ADD COLUMN overruled_at TEXT")


@migrations()
def m021_safelist_key(db: Database) -> None:
    """The key that listed each safelist entry (NULL for entries listed before, and locally):
    a submission the entry holds later is audited as that admin's hold, with its key, as a
    record held when the entry is added is."""
    db.execute("ALTER TABLE safelist ADD COLUMN key_id INTEGER")


@migrations()
def m022_change_details(db: Database) -> None:
    """Each change-log row keeps its record's incident, quality and media type as the change left
    them: a hash shared again after its retraction may come back under another incident, and the
    feed's earlier entries, read from the record, then described it as it stands now. NULL in
    rows logged before: the feed reads those from the record, as it did."""
    run_script(db,
        """
        ALTER TABLE changes ADD COLUMN incident TEXT;
        ALTER TABLE changes ADD COLUMN quality INTEGER;
        ALTER TABLE changes ADD COLUMN media_type TEXT;
        """
    )
