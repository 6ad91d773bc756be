"""The `hashdb` command: a thin click adapter over HashDB. No hashing, SQL or FAISS here."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from hashdb import output
from hashdb.errors import HashDBError
from hashdb.formats import write_export
from hashdb.inputs import BadInput, FileInput, HashedInput, HashInput, Item, expand
from hashdb.service import HashDB
from hashdb.types import Principal, Query, Submission

if TYPE_CHECKING:
    from hashdb.client import Client

F = TypeVar("F", bound=Callable[..., Any])


def db_option(func: F) -> F:
    return click.option(
        "--db", "db_path", envvar="HASHDB_DB", default="hashdb.sqlite", show_default=True,
        help="SQLite file, or a postgresql:// DSN (env HASHDB_DB).",
    )(func)


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="One JSON object a line, for scripts.")(func)


def org_option(func: F) -> F:
    return click.option("--org", default="local", show_default=True,
                        help="Organisation acting in local mode.")(func)


def server_options(func: F) -> F:
    func = click.option("--api-key", envvar="HASHDB_API_KEY",
                        help="API key for --server (env HASHDB_API_KEY).")(func)
    return click.option("--server", envvar="HASHDB_SERVER", metavar="URL",
                        help="Use the HTTP API at URL instead of --db (env HASHDB_SERVER); "
                             "files are still hashed here and only hashes are sent.")(func)


def connect(server: str, api_key: str | None) -> Client:
    from hashdb.client import Client

    if not api_key:
        raise click.UsageError("--server needs --api-key (or HASHDB_API_KEY)")
    return Client(server, api_key)


def hashing_service() -> HashDB:
    """A service for hashing only: an in-memory store, nothing read or written on disk."""
    from hashdb.config import Settings
    from hashdb.store.sqlite_store import SQLiteStore

    return HashDB(Settings(), SQLiteStore(":memory:"))


def emit(as_json: bool, doc: dict[str, Any], text: str) -> None:
    click.echo(json.dumps(doc, ensure_ascii=False) if as_json else text)


def shown(text: str) -> str:
    """An input as it can be shown on one line: escaped when it holds control characters."""
    return text if text.isprintable() else json.dumps(text)


def open_service(db_path: str | Path) -> HashDB:
    from hashdb.local import open_database

    try:
        return open_database(db_path)
    except HashDBError as exc:
        raise click.ClickException(str(exc)) from exc


def local_principal(service: HashDB, org: str) -> Principal:
    organisation = service.store.ensure_org(org)
    # Local mode: whoever can write the database file runs it.
    return Principal(organisation.id, organisation.name, "admin")


def progress(items: Sequence[Item], label: str) -> Iterator[Item]:
    # tqdm draws only on a terminal, so scripts and --json pipes stay clean.
    from tqdm import tqdm

    yield from tqdm(items, desc=label, unit="file", file=sys.stderr, disable=None, leave=False,
                    mininterval=0.5) if len(items) > 20 else items


class HashdbGroup(click.Group):
    """Domain errors become one-line messages with exit status 1, never tracebacks."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except HashDBError as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=HashdbGroup)
@click.version_option(package_name="hashdb")
def cli() -> None:
    """hashdb: share and match hashes of known terrorist and violent extremist content.

    \b
    hashdb hash photo.jpg                      # local only: nothing leaves the machine
    hashdb submit photo.jpg --label glorification
    hashdb lookup --json pdq:9a3f...
    """


@cli.command("hash")
@click.argument("paths", nargs=-1, required=True)
@click.option("--signals", help="Comma-separated signals, e.g. pdq,phash,md5 (default: md5,sha256,pdq,phash).")
@json_option
def hash_command(paths: tuple[str, ...], signals: str | None, as_json: bool) -> None:
    """Hash images and videos locally; nothing leaves the machine.

    Directories are walked. A file that cannot be hashed is reported on its own line and
    the rest go on; the exit status is 1 if any failed.

    \b
    Example:
        hashdb hash --json photos/ clip.mp4 > hashes.jsonl
    """
    from hashdb.config import Settings
    from hashdb.service import HashDB as Service
    from hashdb.store.sqlite_store import SQLiteStore

    # Hashing needs no database: an in-memory store keeps the service constructor honest.
    service = Service(Settings(), SQLiteStore(":memory:"))
    wanted = [s.strip() for s in signals.split(",")] if signals else None
    failed = 0
    for item in progress(list(expand(paths)), "hashing"):
        if not isinstance(item, FileInput):
            failed += 1
            message = item.error.message if isinstance(item, BadInput) else "not a media file"
            emit(as_json, {"path": item.input, "error": message}, f"{shown(item.input)}: error: {message}")
            continue
        try:
            hashes = service.hash_file(item.path, wanted)
        except HashDBError as exc:
            failed += 1
            emit(as_json, {"path": item.input, "error": exc.message}, f"{shown(item.input)}: error: {exc.message}")
            continue
        doc = output.hashes_json(hashes)
        emit(as_json, doc, _hashes_text(doc))
    if failed:
        sys.exit(1)


def _hashes_text(doc: dict[str, Any]) -> str:
    parts = [doc["path"], doc["media_type"]]
    for key, value in doc.items():
        if key == "pdq":
            parts.append(f"pdq:{value['hash']} (quality {value['quality']})")
        elif key not in ("path", "media_type", "frames", "pdq_variants"):
            parts.append(f"{key}:{value}")
    if "frames" in doc:
        parts.append(f"{len(doc['frames'])} frames")
    return "  ".join(parts)


def _resolve(service: HashDB, items: Sequence[Item], dihedral: bool) -> list[tuple[str, Any]]:
    """Hash what needs hashing; any bad input stops the whole command before anything is sent."""
    resolved: list[tuple[str, Any]] = []
    for item in progress(items, "hashing"):
        if isinstance(item, BadInput):
            raise click.ClickException(f"{shown(item.input)}: {item.error.message}")
        if isinstance(item, HashInput):
            resolved.append((item.input, item.value))
        elif isinstance(item, HashedInput):
            resolved.append((item.input, item.hashes))
        else:
            try:
                resolved.append((item.input, service.hash_file(item.path, dihedral=dihedral)))
            except HashDBError as exc:
                raise click.ClickException(f"{shown(item.input)}: {exc.message}") from exc
    return resolved


@cli.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("--label", "labels", multiple=True, required=True, help="Taxonomy label id (repeatable).")
@click.option("--incident", help="Incident id (crisis protocol).")
@click.option("--ref", "reference", help="Your own reference id for this content (evidence pointer).")
@click.option("--idempotency-key", help="Makes a retried submit store the batch once.")
@db_option
@org_option
@server_options
@json_option
def submit(inputs: tuple[str, ...], labels: tuple[str, ...], incident: str | None, reference: str | None,
           idempotency_key: str | None, db_path: Path, org: str, server: str | None, api_key: str | None,
           as_json: bool) -> None:
    """Share hashes of content you removed: media files, SIGNAL:HEX, or hash files.

    The whole batch is checked first; if anything is invalid nothing is stored.

    \b
    Example:
        hashdb submit removed/ pdq:9a3f...e1 --label glorification --ref case-1234
        hashdb submit removed/ --label glorification --server https://hashdb.example.org --api-key "$KEY"
    """
    client = connect(server, api_key) if server else None
    service = hashing_service() if client else open_service(db_path)
    submissions = []
    for name, value in _resolve(service, list(expand(inputs)), dihedral=False):
        meta = {"incident": incident, "reference": reference}
        if hasattr(value, "media_type"):
            submissions.append(service.submission_for(value, labels, **meta))
        else:
            submissions.append(Submission(name, tuple(labels), (value,), **meta))  # type: ignore[arg-type]
    if client is not None:
        from hashdb.client import submit_submissions

        docs = submit_submissions(client, submissions, idempotency_key)
    else:
        docs = [output.submit_json(r) for r in service.submit(submissions, local_principal(service, org),
                                                              idempotency_key)]
    for doc in docs:
        state = "already shared" if doc["duplicate"] else doc["status"]
        note = f"; skipped {', '.join(doc['skipped'])}" if doc.get("skipped") else ""
        emit(as_json, doc, f"{doc['input']}: {state}, ids {', '.join(map(str, doc['ids']))}{note}")


@cli.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("--threshold", "thresholds", multiple=True, metavar="SIGNAL=N",
              help="Tighter match threshold for a signal, e.g. pdq=20 (never looser than the default).")
@click.option("--no-dihedral", is_flag=True, help="Do not also match rotated and mirrored copies of images.")
@db_option
@server_options
@json_option
def lookup(inputs: tuple[str, ...], thresholds: tuple[str, ...], no_dihedral: bool, db_path: Path,
           server: str | None, api_key: str | None, as_json: bool) -> None:
    """Check media or hashes against the database. Exits 0 whatever matched; --json says.

    \b
    Example:
        hashdb lookup --json upload.jpg pdq:9a3f...e1
        hashdb lookup upload.jpg --server https://hashdb.example.org --api-key "$KEY"
    """
    limits = _parse_thresholds(thresholds)
    client = connect(server, api_key) if server else None
    service = hashing_service() if client else open_service(db_path)
    queries = []
    for name, value in _resolve(service, list(expand(inputs)), dihedral=not no_dihedral):
        if hasattr(value, "media_type"):
            query = service.query_for(value)
            queries.append(Query(name, query.hashes, query.frames))
        else:
            queries.append(Query(name, (value,)))
    if client is not None:
        from hashdb.client import lookup_queries

        docs = lookup_queries(client, queries, limits)
    else:
        service.load_index()
        docs = [output.lookup_json(r) for r in service.lookup(queries, local_principal(service, "local"), limits)]
    for doc in docs:
        if not doc["matched"]:
            text = f"{doc['input']}: no match"
        else:
            text = f"{doc['input']}: MATCH " + "; ".join(
                f"id {m['id']} {m['signal']} distance {m['distance']} [{', '.join(m['labels'])}] "
                f"{m['status']}, {m['support']} org(s), {m['agree']} agree / {m['disagree']} disagree"
                for m in doc["matches"]
            )
        emit(as_json, doc, text)


def _parse_thresholds(pairs: Sequence[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for pair in pairs:
        signal, sep, value = pair.partition("=")
        if not sep or not value.isascii() or not value.isdigit():
            raise click.UsageError(f"--threshold takes SIGNAL=N, got {pair!r}")
        out[signal.strip().lower()] = int(value)
    return out


@cli.command()
@click.argument("ids", nargs=-1, required=True, type=int)
@click.option("--reason", default="", help="Why (kept in the audit log).")
@db_option
@org_option
@server_options
@json_option
def retract(ids: tuple[int, ...], reason: str, db_path: Path, org: str, server: str | None, api_key: str | None,
            as_json: bool) -> None:
    """Retract your own submissions: they stop matching at once and leave a tombstone in exports.

    \b
    Example:
        hashdb retract 42 43 --reason "benign meme, submitted by mistake"
    """
    if server:
        client = connect(server, api_key)
        for record_id in ids:
            doc = client.retract(record_id, reason)
            emit(as_json, doc, f"{doc['id']}: {doc['status']}")
        return
    service = open_service(db_path)
    actor = local_principal(service, org)
    for record_id in ids:
        record = service.retract(record_id, actor, reason)
        emit(as_json, output.record_json(record), f"{record.id}: {record.status}")


@cli.command()
@click.argument("record_id", type=int)
@click.option("--agree", "verdict", flag_value="agree", help="The label is right.")
@click.option("--disagree", "verdict", flag_value="disagree", help="The label is wrong.")
@click.option("--false-positive", "verdict", flag_value="false_positive", help="It matched benign content.")
@click.option("--note", default="", help="Optional note for the contributor.")
@db_option
@org_option
@server_options
@json_option
def feedback(record_id: int, verdict: str | None, note: str, db_path: Path, org: str, server: str | None,
             api_key: str | None, as_json: bool) -> None:
    """Vote on a shared hash (one vote per organisation, changeable).

    \b
    Example:
        hashdb feedback 42 --false-positive --note "matches a news photo"
    """
    if verdict is None:
        raise click.UsageError("give one of --agree, --disagree, --false-positive")
    if server:
        doc = connect(server, api_key).feedback(record_id, verdict, note)
    else:
        service = open_service(db_path)
        doc = output.record_json(service.feedback(record_id, local_principal(service, org), verdict, note))
    emit(as_json, doc, f"{doc['id']}: {doc['status']}, {doc['agree']} agree / {doc['disagree']} disagree / "
                       f"{doc['false_positive']} false positive")


@cli.command()
@click.option("--since", help="Cursor printed by the previous export (default: from the start).")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv", "te"]), default="jsonl", show_default=True)
@click.option("--limit", type=int, default=None, help="At most this many changes (default: all).")
@db_option
@server_options
def export(since: str | None, fmt: str, limit: int | None, db_path: Path, server: str | None,
           api_key: str | None) -> None:
    """Write the change feed (additions, label and status changes, retractions) to stdout.

    The cursor for the next incremental export is printed on stderr.

    \b
    Example:
        hashdb export --format csv > hashes.csv
        hashdb export --since "$CURSOR" >> feed.jsonl
    """
    if server:
        from hashdb.client import KEY_DECIDES, RemoteFeed

        cursor = write_export(RemoteFeed(connect(server, api_key)), KEY_DECIDES, sys.stdout, fmt, since, limit)
        click.echo(f"next cursor: {cursor}", err=True)
        return
    service = open_service(db_path)
    actor = local_principal(service, "local")
    cursor = write_export(service, actor, sys.stdout, fmt, since, limit)
    click.echo(f"next cursor: {cursor}", err=True)


@cli.command()
@db_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Worker processes (about one per core).")
@click.option("--threads", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Threads per worker (more than 1 uses gunicorn's gthread workers).")
@click.option("--access-log", default="-", show_default=True, help="Access log file, '-' for stderr, 'off' for none.")
def serve(db_path: Path, host: str, port: int, workers: int, threads: int, access_log: str) -> None:
    """Serve the HTTP API (gunicorn) over the database; Ctrl-C stops it.

    Settings come from HASHDB_* variables too (HASHDB_RATE_LIMIT, HASHDB_MAX_BATCH, ...).

    \b
    Example:
        hashdb serve --db hashdb.sqlite --host 0.0.0.0 --port 8000 --workers 2
    """
    # Imported here only: `import hashdb` never pulls in Flask or gunicorn.
    from api.server import ServeOptions
    from api.server import serve as run_server

    run_server(ServeOptions(str(db_path), host, port, workers, threads,
                            None if access_log == "off" else access_log))


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
    import tempfile

    from hashdb import demo as demo_run

    if db_path is None:
        db_path = Path(tempfile.mkdtemp(prefix="hashdb-demo-")) / "demo.sqlite"
    elif db_path.exists():
        raise click.UsageError(f"{db_path} exists; the demo builds a fresh database")
    demo_run.run(open_service(db_path), db_path, media or demo_run.default_media_dir(), host, port, 1, once,
                 click.echo)


@cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--label", "labels", multiple=True, help="Labels for a file that carries none (ThreatExchange).")
@click.option("--source", metavar="NAME_OR_URL",
              help="Where an export file came from (default: file); its records are held under the "
                   "organisation mirror:NAME. The server's URL continues the mirror `hashdb sync` keeps.")
@db_option
@org_option
@json_option
def import_command(file: Path, labels: tuple[str, ...], source: str | None, db_path: Path, org: str,
                   as_json: bool) -> None:
    """Import what `hashdb export` wrote (JSONL) as a mirror, or a ThreatExchange hash file.

    An export is applied in order, keeping the source's statuses and retractions; importing
    it again, or an overlapping one, changes nothing. A ThreatExchange file is submitted as
    --org with the labels given.

    \b
    Example:
        hashdb import --db mirror.sqlite feed.jsonl
        hashdb import --label glorification te-hashes.txt
    """
    from hashdb.formats import import_file

    service = open_service(db_path)
    summary = import_file(service, local_principal(service, org), file, labels, source)
    service.rebuild_index()
    emit(as_json, summary, ", ".join(f"{k}: {v}" for k, v in summary.items()))


@cli.command()
@click.option("--from", "url", required=True, metavar="URL", help="The hashdb server to mirror.")
@click.option("--api-key", envvar="HASHDB_API_KEY", help="A partner key for URL (env HASHDB_API_KEY).")
@click.option("--batch", type=click.IntRange(1, 10_000), default=1000, show_default=True,
              help="Changes per request, each page one local transaction.")
@click.option("--follow", is_flag=True, help="Keep running, pulling new changes every --interval seconds.")
@click.option("--interval", type=click.FloatRange(min=0.1), default=60.0, show_default=True,
              help="Seconds between pulls with --follow.")
@db_option
@json_option
def sync(url: str, api_key: str | None, batch: int, follow: bool, interval: float, db_path: str,
         as_json: bool) -> None:
    """Keep a local mirror of a hashdb server; lookups against it never leave this machine.

    Pulls the change feed from where the last run stopped (the cursor is kept in the mirror,
    committed with each page, so an interrupted sync resumes exactly) and applies additions,
    label and status changes and retractions. Records are held under mirror:HOST.

    \b
    Example:
        hashdb sync --from https://hashdb.example.org --api-key "$KEY" --db mirror.sqlite
        hashdb lookup --db mirror.sqlite upload.jpg
    """
    from hashdb import mirror

    if not api_key:
        raise click.UsageError("sync needs --api-key (or HASHDB_API_KEY): a partner key for the server")
    source = mirror.Source.from_url(url)
    client = connect(url, api_key)
    service = open_service(db_path)
    actor = local_principal(service, "local")
    shown_pages = 0

    def report(page: mirror.PageReport) -> None:
        nonlocal shown_pages
        if follow and shown_pages and not page.changes:
            return  # polling an idle source: say nothing until something changes
        shown_pages += 1
        done = page.outcome
        emit(as_json, {"page": page.number, "changes": page.changes, "added": done.added, "changed": done.changed,
                       "retracted": done.retracted, "unchanged": done.unchanged, "cursor": page.cursor},
             f"page {page.number}: {page.changes} changes: {done.added} added, {done.changed} changed, "
             f"{done.retracted} retracted, {done.unchanged} unchanged; cursor {page.cursor}")

    if follow:
        try:
            mirror.follow(service, client, source, actor, batch, interval, report,
                          lambda exc: click.echo(f"{source.key}: {exc.message}; trying again in {interval:g} s",
                                                 err=True))
        except KeyboardInterrupt:
            click.echo("stopped; the next sync resumes from the last page applied", err=True)
        return
    mirror.sync(service, client, source, actor, batch, report)
    mirror.refresh_index(service)
    if not as_json:
        click.echo(f"{source.key}: up to date; mirror in {db_path}")


@cli.group()
def index() -> None:
    """The derived near-duplicate index (rebuilt from the database, never the other way round)."""


@index.command("rebuild")
@db_option
@json_option
def index_rebuild(db_path: Path, as_json: bool) -> None:
    """Rebuild every index from the database and save a snapshot.

    \b
    Example:
        hashdb index rebuild --db hashdb.sqlite
    """
    service = open_service(db_path)
    sizes = service.rebuild_index()
    emit(as_json, {"indexed": sizes}, ", ".join(f"{s}: {n}" for s, n in sizes.items()))


@cli.group()
def keys() -> None:
    """API keys: create (shown once), list, revoke."""


@keys.command("create")
@click.option("--org", required=True, help="Organisation the key acts for (created if new).")
@click.option("--role", type=click.Choice(["consumer", "contributor", "partner", "admin"]), required=True)
@db_option
@json_option
def keys_create(org: str, role: str, db_path: Path, as_json: bool) -> None:
    """Create an API key. It is printed once and stored only as a keyed hash.

    \b
    Example:
        hashdb keys create --org example-platform --role contributor
    """
    service = open_service(db_path)
    key, record = service.create_key(org, role, local_principal(service, "local"))
    emit(as_json, {"id": record.id, "org": record.org_name, "role": record.role, "prefix": record.prefix,
                   "key": key},
         f"{key}\n(key {record.id} for {record.org_name}, role {record.role}: store it now, it is not shown again)")


@keys.command("list")
@db_option
@json_option
def keys_list(db_path: Path, as_json: bool) -> None:
    """List keys (prefix, organisation, role, revoked or not); secrets are never shown.

    \b
    Example:
        hashdb keys list --json
    """
    service = open_service(db_path)
    for key in service.list_keys(local_principal(service, "local")):
        doc = {"id": key.id, "org": key.org_name, "role": key.role, "prefix": key.prefix,
               "created_at": key.created_at, "revoked_at": key.revoked_at}
        state = f"revoked {key.revoked_at}" if key.revoked_at else "active"
        emit(as_json, doc, f"{key.id}  hdb_{key.prefix}_…  {key.org_name}  {key.role}  {state}")


@keys.command("revoke")
@click.argument("key_id", type=int)
@db_option
@json_option
def keys_revoke(key_id: int, db_path: Path, as_json: bool) -> None:
    """Revoke a key; it is refused from the next request on.

    \b
    Example:
        hashdb keys revoke 3
    """
    service = open_service(db_path)
    key = service.revoke_key(key_id, local_principal(service, "local"))
    emit(as_json, {"id": key.id, "revoked_at": key.revoked_at}, f"{key.id}: revoked")


@cli.group()
def audit() -> None:
    """The append-only, hash-chained audit log of every write (admins)."""


@audit.command("verify")
@click.option("--anchor", "anchors", multiple=True, metavar="ID:HASH",
              help="An entry hash recorded earlier outside the database (repeatable); catches a "
                   "truncated or wholly rewritten tail, which the chain alone cannot.")
@db_option
@json_option
def audit_verify(anchors: tuple[str, ...], db_path: Path, as_json: bool) -> None:
    """Recompute every entry's hash and link; exit 1 naming the first entry that was changed.

    Prints the head (ID:HASH): keep it elsewhere and pass it as --anchor next time.

    \b
    Example:
        hashdb audit verify --anchor 1200:5f0c...e9
    """
    from hashdb.audit import parse_anchor

    parsed = [parse_anchor(a) for a in anchors]
    service = open_service(db_path)
    verdict = service.verify_audit(local_principal(service, "local"), parsed)
    doc: dict[str, Any] = {"ok": verdict.ok, "checked": verdict.checked,
                           "head": {"id": verdict.head_id, "hash": verdict.head_hash}}
    if verdict.broken is None:
        emit(as_json, doc, f"audit log intact: {verdict.checked} entries; head {verdict.head_id}:{verdict.head_hash}")
        return
    bad = verdict.broken
    doc["broken"] = {"id": bad.entry_id, "action": bad.action, "problem": bad.problem}
    emit(as_json, doc, f"audit log BROKEN at entry {bad.entry_id} ({bad.action or 'missing'}): {bad.problem}; "
                       f"the {verdict.checked} entries before it hold")
    sys.exit(1)


@audit.command("list")
@click.option("--after", "after_id", type=int, default=0, show_default=True, help="Entries after this id.")
@click.option("--limit", type=int, default=100, show_default=True)
@db_option
@json_option
def audit_list(after_id: int, limit: int, db_path: Path, as_json: bool) -> None:
    """List audit entries in order: when, which organisation and key, what, on what.

    \b
    Example:
        hashdb audit list --after 1000 --limit 50 --json
    """
    service = open_service(db_path)
    for entry in service.audit_log(local_principal(service, "local"), after_id, limit):
        doc = {"id": entry.id, "at": entry.at, "org_id": entry.org_id, "key_id": entry.key_id,
               "action": entry.action, "target": entry.target, "detail": entry.detail,
               "entry_hash": entry.entry_hash}
        emit(as_json, doc, f"{entry.id}  {entry.at}  org {entry.org_id}  key {entry.key_id}  "
                           f"{entry.action}  {entry.target}  {entry.detail}")


@cli.group()
def safelist() -> None:
    """Benign hashes no one may share: a submission near one is quarantined (admins)."""


@safelist.command("add")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--note", default="", help="Why these are benign (kept in the audit log).")
@db_option
@json_option
def safelist_add(inputs: tuple[str, ...], note: str, db_path: Path, as_json: bool) -> None:
    """Safelist media files, SIGNAL:HEX hashes or hash files; live records near them are quarantined.

    \b
    Example:
        hashdb safelist add viral-meme.jpg pdq:9a3f...e1 --note "news photo, not TVEC"
    """
    service = open_service(db_path)
    items = [value for _, value in _resolve(service, list(expand(inputs)), dihedral=False)]
    added, held = service.add_safelist(items, local_principal(service, "local"), note)
    emit(as_json, {"added": added, "quarantined": held},
         f"{added} hash(es) added to the safelist; quarantined {len(held)} live record(s)"
         + (f": {', '.join(map(str, held))}" if held else ""))


@cli.group()
def quarantine() -> None:
    """Records held out of members' lookups pending review: list, add, release, confirm (admins)."""


def _quarantine_json(item: Any) -> dict[str, Any]:
    return {**output.record_json(item.record), "rule": item.rule, "reason": item.reason, "since": item.at}


@quarantine.command("list")
@click.option("--after", "after_id", type=int, default=0, show_default=True, help="Records after this id.")
@click.option("--limit", type=int, default=100, show_default=True)
@db_option
@json_option
def quarantine_list(after_id: int, limit: int, db_path: Path, as_json: bool) -> None:
    """List quarantined records with the rule that held them and why.

    \b
    Example:
        hashdb quarantine list --json
    """
    service = open_service(db_path)
    for item in service.quarantined(local_principal(service, "local"), after_id, limit):
        doc = _quarantine_json(item)
        emit(as_json, doc, f"{doc['id']}  {doc['signal']}  [{', '.join(doc['labels'])}]  {item.rule}: {item.reason}")


@quarantine.command("add")
@click.argument("record_id", type=int)
@click.option("--reason", required=True, help="Why (kept in the audit log).")
@db_option
@json_option
def quarantine_add(record_id: int, reason: str, db_path: Path, as_json: bool) -> None:
    """Quarantine an active or disputed record by hand.

    \b
    Example:
        hashdb quarantine add 42 --reason "reported as a news photo"
    """
    service = open_service(db_path)
    record = service.quarantine(record_id, local_principal(service, "local"), reason)
    emit(as_json, output.record_json(record), f"{record.id}: {record.status}")


@quarantine.command("release")
@click.argument("record_id", type=int)
@click.option("--reason", default="", help="Why (kept in the audit log).")
@db_option
@json_option
def quarantine_release(record_id: int, reason: str, db_path: Path, as_json: bool) -> None:
    """Release a quarantined record: it matches for members again.

    \b
    Example:
        hashdb quarantine release 42 --reason "reviewed: genuine propaganda"
    """
    service = open_service(db_path)
    record = service.release(record_id, local_principal(service, "local"), reason)
    emit(as_json, output.record_json(record), f"{record.id}: {record.status}")


@quarantine.command("confirm")
@click.argument("record_id", type=int)
@click.option("--reason", required=True, help="Why it stays out (members and partners see a retraction).")
@db_option
@json_option
def quarantine_confirm(record_id: int, reason: str, db_path: Path, as_json: bool) -> None:
    """Confirm a quarantine: the record is retracted for good, with the reason.

    \b
    Example:
        hashdb quarantine confirm 42 --reason "benign meme, poisoning attempt"
    """
    service = open_service(db_path)
    record = service.confirm_quarantine(record_id, local_principal(service, "local"), reason)
    emit(as_json, output.record_json(record), f"{record.id}: {record.status}")


@cli.group()
def incident() -> None:
    """Crisis incidents: submissions may be tagged with an open one; subscribers are notified."""


@incident.command("open")
@click.argument("name")
@click.option("--description", default="", help="What happened, for members.")
@db_option
@json_option
def incident_open(name: str, description: str, db_path: Path, as_json: bool) -> None:
    """Open an incident (admins). Submissions then name it with --incident NAME or its id.

    \b
    Example:
        hashdb incident open attack-2026-03 --description "live-streamed attack, Example City"
    """
    service = open_service(db_path)
    item = service.open_incident(name, local_principal(service, "local"), description)
    emit(as_json, output.incident_json(item), f"incident {item.id} {item.name!r} open")


@incident.command("close")
@click.argument("incident_id", type=int)
@db_option
@json_option
def incident_close(incident_id: int, db_path: Path, as_json: bool) -> None:
    """Close an incident: new submissions may no longer name it.

    \b
    Example:
        hashdb incident close 3
    """
    service = open_service(db_path)
    item = service.close_incident(incident_id, local_principal(service, "local"))
    emit(as_json, output.incident_json(item), f"incident {item.id} {item.name!r} closed")


@incident.command("list")
@click.option("--open", "open_only", is_flag=True, help="Only open incidents.")
@db_option
@json_option
def incident_list(open_only: bool, db_path: Path, as_json: bool) -> None:
    """List incidents.

    \b
    Example:
        hashdb incident list --open --json
    """
    service = open_service(db_path)
    for item in service.list_incidents(local_principal(service, "local"), open_only):
        emit(as_json, output.incident_json(item), f"{item.id}  {item.name}  {item.status}  {item.description}")


@cli.group()
def webhook() -> None:
    """Webhooks: new hashes under an open incident are POSTed, signed, to each subscriber."""


# Both spellings work: `hashdb webhook add ...`, `hashdb webhooks deliver`.
cli.add_command(webhook, "webhooks")


@webhook.command("add")
@click.argument("url")
@click.option("--org", required=True, help="Subscribing organisation.")
@db_option
@json_option
def webhook_add(url: str, org: str, db_path: Path, as_json: bool) -> None:
    """Subscribe an organisation; prints the signing secret once.

    Verify each request: HMAC-SHA256(secret, X-Hashdb-Timestamp + "." + body) must equal
    X-Hashdb-Signature (sha256=<hex>); refuse timestamps older than 5 minutes.

    \b
    Example:
        hashdb webhook add --org example-platform https://hooks.example.com/hashdb
    """
    service = open_service(db_path)
    secret, hook = service.add_webhook(org, url, local_principal(service, "local"))
    emit(as_json, {"id": hook.id, "org": hook.org_name, "url": hook.url, "secret": secret},
         f"{secret}\n(webhook {hook.id} for {hook.org_name}: store the secret now, it is not shown again)")


@webhook.command("list")
@db_option
@json_option
def webhook_list(db_path: Path, as_json: bool) -> None:
    """List webhooks (secrets are never shown).

    \b
    Example:
        hashdb webhook list --json
    """
    service = open_service(db_path)
    for hook in service.list_webhooks(local_principal(service, "local")):
        state = f"removed {hook.disabled_at}" if hook.disabled_at else "active"
        emit(as_json, {"id": hook.id, "org": hook.org_name, "url": hook.url, "created_at": hook.created_at,
                       "disabled_at": hook.disabled_at}, f"{hook.id}  {hook.org_name}  {hook.url}  {state}")


@webhook.command("remove")
@click.argument("webhook_id", type=int)
@db_option
@json_option
def webhook_remove(webhook_id: int, db_path: Path, as_json: bool) -> None:
    """Stop delivering to a webhook (its pending deliveries are dropped).

    \b
    Example:
        hashdb webhook remove 2
    """
    service = open_service(db_path)
    hook = service.remove_webhook(webhook_id, local_principal(service, "local"))
    emit(as_json, {"id": hook.id, "disabled_at": hook.disabled_at}, f"{hook.id}: removed")


@webhook.command("deliver")
@db_option
@json_option
def webhook_deliver(db_path: Path, as_json: bool) -> None:
    """Send every delivery that is due, once (a server does this in the background).

    \b
    Example:
        hashdb webhooks deliver
    """
    service = open_service(db_path)
    done = service.deliver_webhooks()
    emit(as_json, {"attempted": done.attempted, "delivered": done.delivered, "retrying": done.retrying,
                   "failed": done.failed},
         f"{done.attempted} attempted: {done.delivered} delivered, {done.retrying} to retry, {done.failed} gave up")


@webhook.command("log")
@click.option("--after", "after_id", type=int, default=0, show_default=True, help="Attempts after this id.")
@click.option("--limit", type=int, default=100, show_default=True)
@db_option
@json_option
def webhook_log(after_id: int, limit: int, db_path: Path, as_json: bool) -> None:
    """Every delivery attempt: when, which webhook and record, the HTTP status or the error.

    \b
    Example:
        hashdb webhook log --json
    """
    service = open_service(db_path)
    for a in service.delivery_log(local_principal(service, "local"), after_id, limit):
        emit(as_json, {"delivery": a.delivery_id, "webhook": a.webhook_id, "record": a.record_id, "at": a.at,
                       "status_code": a.status_code, "error": a.error, "ms": a.duration_ms},
             f"{a.at}  webhook {a.webhook_id}  record {a.record_id}  {a.status_code or '-'}  {a.error}")


@cli.command("report")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default="report",
              show_default=True, help="Directory for report.md and its chart.")
@click.option("--admin", "named", is_flag=True, help="Name contributing organisations (not for publication).")
@db_option
@json_option
def report_command(out_dir: Path, named: bool, db_path: Path, as_json: bool) -> None:
    """Write the transparency report: Markdown counts by signal, label, status and month, and a chart.

    \b
    Example:
        hashdb report --out public/2026-q1
    """
    from hashdb import report

    service = open_service(db_path)
    data = service.transparency_report(local_principal(service, "local"), named)
    paths = report.write(data, out_dir)
    emit(as_json, {"files": [str(p) for p in paths]}, "\n".join(f"wrote {p}" for p in paths))
