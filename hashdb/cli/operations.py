"""Operator commands: API keys, the derived index, the HTTP server, and the demo."""

from __future__ import annotations

import dataclasses
from contextlib import closing
from pathlib import Path

import click

from hashdb.cli.common import (
    RECORD_ID,
    check_port,
    cli,
    db_option,
    emit,
    emit_rows,
    json_option,
    local_principal,
    open_service,
    warn,
)


@cli.group()
def keys() -> None:
    """API keys: create (shown once), list, revoke.

    \b
    Example:
        hashdb keys create --org example-platform --role partner
        hashdb keys list
    """


@keys.command("create")
@click.option("--org", required=True,
              help="Organisation the key acts for (created if new; names starting mirror: are reserved).")
@click.option("--role", type=click.Choice(["consumer", "contributor", "partner", "admin"]), required=True)
@db_option
@json_option
def keys_create(org: str, role: str, db_path: str, as_json: bool) -> None:
    """Create an API key. It is printed once and stored only as a keyed hash.

    Roles: consumer (look up, feedback), contributor (also submit, retract its own), partner
    (also export and mirror: what `hashdb sync` and the python-threatexchange exchange need),
    admin (everything, operators).

    \b
    Example:
        hashdb keys create --org example-platform --role contributor
    """
    from hashdb.service.local import is_dsn, is_empty_file

    new = not is_dsn(db_path) and (not Path(db_path).exists() or is_empty_file(db_path))
    service = open_service(db_path, create=True)
    key, record = service.create_key(org, role, local_principal(service, "local"))
    if new:
        # A key made in a mistyped database is refused by the real server later, far from here.
        click.echo(f"new database at {db_path} (the server must use the same --db)", err=True)
    emit(as_json, {"id": record.id, "org": record.org_name, "role": record.role, "prefix": record.prefix,
                   "key": key},
         f"{key}\n(key {record.id} for {record.org_name}, role {record.role}: store it now, it is not shown again)")


@keys.command("list")
@db_option
@json_option
def keys_list(db_path: str, as_json: bool) -> None:
    """List keys (prefix, organisation, role, revoked or not); secrets are never shown.

    \b
    Example:
        hashdb keys list --json
    """
    service = open_service(db_path)
    emit_rows(as_json, (({"id": key.id, "org": key.org_name, "role": key.role, "prefix": key.prefix,
                          "created_at": key.created_at, "revoked_at": key.revoked_at},
                         f"{key.id}  hdb_{key.prefix}_…  {key.org_name}  {key.role}  "
                         + (f"revoked {key.revoked_at}" if key.revoked_at else "active"))
                        for key in service.list_keys(local_principal(service, "local"))),
              "no keys (hashdb keys create makes one)")


@keys.command("revoke")
@click.argument("key_id", type=RECORD_ID)
@db_option
@json_option
def keys_revoke(key_id: int, db_path: str, as_json: bool) -> None:
    """Revoke a key; it is refused from the next request on.

    \b
    Example:
        hashdb keys revoke 3
    """
    service = open_service(db_path)
    key = service.revoke_key(key_id, local_principal(service, "local"))
    emit(as_json, {"id": key.id, "revoked_at": key.revoked_at}, f"{key.id}: revoked")


@cli.group()
def index() -> None:
    """The derived near-duplicate index (rebuilt from the database, never the other way round).

    \b
    Example:
        hashdb index rebuild --db hashdb.sqlite
    """


@index.command("rebuild")
@db_option
@json_option
def index_rebuild(db_path: str, as_json: bool) -> None:
    """Rebuild every index from the database and save a snapshot, which the server's workers
    load at start instead of each rebuilding. A SQLite file's is saved beside it, in DB.index
    (HASHDB_INDEX_DIR does not apply to it); a PostgreSQL database's in HASHDB_INDEX_DIR, which
    it needs (without it this is refused).

    \b
    Example:
        hashdb index rebuild --db hashdb.sqlite
        HASHDB_INDEX_DIR=/var/lib/hashdb/index hashdb index rebuild --db postgresql://db/hashdb
    """
    from hashdb.service.local import unused_index_dir

    service = open_service(db_path)
    warn(unused_index_dir(db_path))
    saved = service.rebuild_saved_index()
    emit(as_json, {"indexed": saved.indexed, "saved": str(saved.folder)},
         ", ".join(f"{s}: {n}" for s, n in saved.indexed.items()) + f"; saved in {saved.folder}")


@cli.command()
@db_option
@click.argument("dest", type=click.Path(dir_okay=True, file_okay=True, path_type=Path))
@json_option
def backup(db_path: str, dest: Path, as_json: bool) -> None:
    """Copy the database to DEST, safely while `hashdb serve` writes to it.

    SQLite's online backup copies one commit's pages, those still in the -wal file included;
    copying the .sqlite file alone loses them. The server secret file (DB.secret) is copied to
    DEST.secret: without it the copy authenticates no API key. DEST must not exist yet (a
    folder: the copy is made in it under the database's name). The index is not copied: it is
    rebuilt from the copy when opened. Restore by stopping the server and putting both files
    back under the database's names.

    \b
    Example:
        hashdb backup --db hashdb.sqlite backups/hashdb-$(date +%F).sqlite
    """
    from hashdb.service.local import backup_database

    done = backup_database(db_path, dest)
    secret = (f"; the server secret to {done.secret}" if done.secret else
              "; no .secret file beside the database: keep HASHDB_SECRET with the backup")
    emit(as_json, dataclasses.asdict(done),
         f"backed up {db_path} to {done.path}: {done.records} records, {done.feed_entries} feed entries, "
         f"{done.bytes:,} bytes{secret}")


@cli.command()
@db_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Worker processes (about one per core).")
@click.option("--threads", type=click.IntRange(1, 64), default=4, show_default=True,
              help="Threads per worker answering requests (slow clients never hold one).")
@click.option("--max-connections", type=click.IntRange(8, 100_000), default=1000, show_default=True,
              help="Open connections per worker; past it the worker stops accepting until one closes.")
@click.option("--access-log", default="-", show_default=True, help="Access log file, '-' for stderr, 'off' for none.")
def serve(db_path: str, host: str, port: int, workers: int, threads: int, max_connections: int,
          access_log: str) -> None:
    """Serve the HTTP API (gunicorn) over the database; Ctrl-C stops it.

    Connections are kept alive between requests. A request reaches a worker thread only
    once it has arrived whole (head within 10 s, body within 30 s), so slow or stalled
    clients cannot hold the threads.

    The database must exist (a mistyped --db, or an empty file, is refused, not served empty):
    `hashdb keys create --db PATH` makes it with its first key.

    Settings come from HASHDB_* variables too (HASHDB_RATE_LIMIT, HASHDB_MAX_BATCH, ...);
    a bad value stops serve before it starts, with a line naming the variable. Slow clients:
    a request's head must arrive within 10 s and its body (a length or chunked) within
    HASHDB_BODY_TIMEOUT seconds of it (30 by default), or the connection is closed.

    Images' keypoints (what finds crops no hash does): HASHDB_KEYPOINTS=0 stores, computes and
    matches none (on by default). HASHDB_SHARE_KEYPOINTS=1 lets the export feed carry them to
    partners who ask (GET /v1/export?keypoints=true, `hashdb sync --keypoints`); off by
    default, since with their positions they give away a rough sketch of the picture.

    \b
    Example:
        hashdb serve --db hashdb.sqlite --host 0.0.0.0 --port 8000 --workers 2
        HASHDB_SHARE_KEYPOINTS=1 hashdb serve --db hashdb.sqlite   # partners may sync keypoints
    """
    check_servable(db_path, host, port)
    # Imported here only: `import hashdb` never pulls in Flask or gunicorn.
    from hashdb.api.server import ServeOptions
    from hashdb.api.server import serve as run_server
    from hashdb.service.local import describe_database

    # Which database, in one line before gunicorn's banner: with --db, HASHDB_DSN and HASHDB_DB
    # all in play an operator should not have to find out from the answers.
    click.echo(f"serving the {describe_database(db_path)}", err=True)

    run_server(ServeOptions(str(db_path), host, port, workers, threads,
                            None if access_log == "off" else access_log, max_connections=max_connections))


def check_servable(db_path: str, host: str, port: int) -> None:
    """Say what is wrong with --db, --port or a HASHDB_* setting in one line before gunicorn
    starts: past that point a bad database or setting is only "Worker failed to boot" and a
    busy port five seconds of retries that never name the option."""
    import sqlite3

    from sqlite_utils import Database

    from hashdb.service.environment import misspelt, server_config
    from hashdb.service.local import is_dsn, require_database, unused_index_dir
    from hashdb.store.migrations import refuse_foreign

    # The same checks create_app makes in each worker.
    server_config()
    for warning in misspelt():
        warn(warning)

    # db_path is already the one database (--db, else HASHDB_DSN, else HASHDB_DB): the workers
    # are handed it and open nothing else. A PostgreSQL deployment keeps no SQLite file to check.
    if not is_dsn(db_path):
        # A server over a new, empty database has no keys, so it could only answer 401: a
        # missing file is a mistyped --db. `keys create` makes the database with its first key.
        require_database(db_path, f"`hashdb keys create --db {db_path} ...` creates one with its first key")
        path = Path(db_path)
        try:
            with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as connection:
                refuse_foreign(Database(connection), path)
        except sqlite3.Error as exc:
            raise click.ClickException(f"{path} is not a hashdb database: {exc} (--db)") from exc
        warn(unused_index_dir(db_path))
    check_port(host, port)


@cli.command()
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="0 picks a free port.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--media", type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="Media to share (default: fixtures/media).")
@click.option("--db", "db_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to build the demo database (default: a new temporary folder).")
@click.option("--once", is_flag=True, help="Print the example lookup and its answer, then stop.")
def demo(port: int, host: str, media: Path | None, db_path: Path | None, once: bool) -> None:
    """Build a demo database from fixtures/media, serve it, and show a lookup to paste.

    \b
    Example:
        hashdb demo --port 8000
    """
    import shutil
    import tempfile

    from hashdb.cli import demo as demo_run

    media = media or demo_run.default_media_dir()
    if port:
        check_port(host, port)
    scratch = None
    if db_path is None:
        # Removed when the demo stops: --db keeps a database to look at afterwards.
        scratch = Path(tempfile.mkdtemp(prefix="hashdb-demo-"))
        db_path = scratch / "demo.sqlite"
    elif db_path.exists():
        raise click.UsageError(f"{db_path} exists; the demo builds a fresh database")
    try:
        demo_run.run(open_service(db_path, create=True), db_path, media, host, port, 1, once, click.echo,
                     kept=scratch is None)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
