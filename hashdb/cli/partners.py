"""Partner commands: export the change feed, import an export or a ThreatExchange file, sync a mirror."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from hashdb.cli.common import (
    chosen_server,
    cli,
    connect,
    db_option,
    emit,
    json_option,
    local_principal,
    open_service,
    org_option,
    pdq_quality_option,
    server_options,
    stopped_by_sigterm,
    warn,
)


@cli.command()
@click.option("--since", help="Cursor printed by the previous export (default: from the start).")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv", "te"]), default="jsonl", show_default=True,
              help="jsonl: every change, what `hashdb import` and mirrors read; csv: one row a change; "
                   "te: python-threatexchange's local-file format (`<signal> <hash>` lines).")
@click.option("--limit", type=click.IntRange(1, 2**63 - 1), default=None, help="At most this many changes (default: all).")
@click.option("--keypoints", is_flag=True,
              help="Image entries carry their stored keypoints, so a mirror imported from the file finds "
                   "crops (jsonl only; the database must share them: HASHDB_SHARE_KEYPOINTS=1).")
@db_option
@server_options
def export(since: str | None, fmt: str, limit: int | None, keypoints: bool, db_path: str, server: str | None,
           api_key: str | None) -> None:
    """Write the change feed (additions, label and status changes, retractions) to stdout.

    The cursor for the next incremental export is printed on stderr.

    \b
    Example:
        hashdb export --format csv > hashes.csv
        hashdb export --since "$CURSOR" >> feed.jsonl
    """
    from hashdb.partners.formats import write_export

    if keypoints and fmt != "jsonl":
        raise click.UsageError(f"--keypoints goes with --format jsonl only: {fmt} files never carry keypoints")
    server = chosen_server(server)
    if server:
        from hashdb.partners.client import KEY_DECIDES, RemoteFeed

        cursor = write_export(RemoteFeed(connect(server, api_key)), KEY_DECIDES, sys.stdout, fmt, since, limit,
                              keypoints)
        click.echo(f"next cursor: {cursor}", err=True)
        return
    service = open_service(db_path)
    actor = local_principal(service, "local")
    cursor = write_export(service, actor, sys.stdout, fmt, since, limit, keypoints)
    click.echo(f"next cursor: {cursor}", err=True)


@cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--label", "labels", multiple=True,
              help="Labels for ThreatExchange hashes (a pytx dataset CSV's tags that are labels count too); "
                   "refused with an export, which keeps its source's labels.")
@click.option("--source", metavar="NAME_OR_URL",
              help="Where an export file came from (default: file); its records are held under the "
                   "organisation mirror:NAME. The server's URL continues the mirror `hashdb sync` keeps.")
@pdq_quality_option
@db_option
@org_option
@json_option
def import_command(file: Path, labels: tuple[str, ...], source: str | None, pdq_quality: int | None, db_path: str,
                   org: str, as_json: bool) -> None:
    """Import what `hashdb export` wrote (JSONL or CSV) as a mirror, or ThreatExchange hashes.

    An export is applied in order, keeping the source's statuses and retractions; importing
    it again, or an overlapping one, changes nothing. ThreatExchange hashes (pytx's
    `<type> <signal>` lines, or `threatexchange dataset -P --csv`) are submitted as --org with
    the labels given; of a dataset, only rows pytx holds to be the collaboration's content
    (POSITIVE_CLASS) are shared: false positives, investigation seeds and disputed rows are
    skipped, counted and noted. An option
    that does not apply to the file is refused: --label and --pdq-quality with an export,
    --source with ThreatExchange hashes.

    JSONL lines may carry images' "keypoints" (what `hashdb export --keypoints` writes): each
    is read strictly (a malformed one, or one of another picture than its line's hashes,
    refuses the file) and stored with the record the line adds, so that a lookup of a file
    against the mirror finds crops of it. Records held before keep none; with
    HASHDB_KEYPOINTS=0 none are stored, and a note says so.

    \b
    Example:
        hashdb import --db mirror.sqlite feed.jsonl
        hashdb import --db mirror.sqlite keypoints.jsonl   # from `hashdb export --keypoints`
        hashdb import --label glorification --pdq-quality 50 te-hashes.txt
        threatexchange dataset -P --csv > tx.csv && hashdb import --pdq-quality 50 tx.csv
    """
    from hashdb.partners.formats import import_file

    service = open_service(db_path, create=True)
    summary = import_file(service, local_principal(service, org), file, labels, source, pdq_quality)
    service.rebuild_index()
    text = ", ".join(f"{k}: {v}" for k, v in summary.items() if k != "notes")
    emit(as_json, summary, text + "".join(f" (note: {note})" for note in summary.get("notes", [])))


@cli.command()
@click.option("--from", "url", required=True, metavar="URL", help="The hashdb server to mirror.")
@click.option("--api-key", envvar="HASHDB_API_KEY", help="A partner key for URL (env HASHDB_API_KEY).")
@click.option("--batch", type=click.IntRange(1, 10_000), default=1000, show_default=True,
              help="Changes per request, each page one local transaction.")
@click.option("--follow", is_flag=True, help="Keep running, pulling new changes every --interval seconds.")
@click.option("--interval", type=click.FloatRange(min=0.1), default=60.0, show_default=True,
              help="Seconds between pulls with --follow.")
@click.option("--keypoints", is_flag=True,
              help="Also fetch the stored keypoints of the images added, so lookups of files against the "
                   "mirror find crops (the server must share them; --batch at most 1000).")
@db_option
@json_option
def sync(url: str, api_key: str | None, batch: int, follow: bool, interval: float, keypoints: bool, db_path: str,
         as_json: bool) -> None:
    """Keep a local mirror of a hashdb server; lookups against it never leave this machine.

    With --follow it runs until Ctrl-C or SIGTERM, and stops between pages.

    Pulls the change feed from where the last run stopped (the cursor is kept in the mirror,
    committed with each page, so an interrupted sync resumes exactly) and applies additions,
    label and status changes and retractions. Records are held under mirror:HOST. The same
    server under another URL (localhost after 127.0.0.1) is refused, naming the URL to use.

    With --keypoints each image added brings its stored keypoints, with which a lookup of a
    file against the mirror finds crops of it; a server that does not share them refuses
    (403). Records the mirror held before keep none.

    \b
    Example:
        hashdb sync --from https://hashdb.example.org --api-key "$KEY" --db mirror.sqlite
        hashdb lookup --db mirror.sqlite upload.jpg
    """
    from hashdb.partners import mirror

    if not api_key:
        raise click.UsageError("sync needs --api-key (or HASHDB_API_KEY): a partner key for the server")
    source = mirror.Source.from_url(url)
    client = connect(url, api_key)
    service = open_service(db_path, create=True)
    if service.holds_key(api_key):
        # A mirror never holds its source's keys: this is the source's own database, and every
        # record would be copied into it again, on every run.
        raise click.ClickException(f"--db {db_path} is the database the server at {url} serves (--api-key is one "
                                   "of its keys): a mirror needs a database of its own")
    actor = local_principal(service, "local")
    warn(mirror.keypoints_note(service, source, keypoints))
    shown_pages = 0

    def report(page: mirror.PageReport) -> None:
        nonlocal shown_pages
        if follow and shown_pages and not page.changes:
            return  # polling an idle source: say nothing until something changes
        shown_pages += 1
        done = page.outcome
        emit(as_json, {"page": page.number, "changes": page.changes, "added": done.added, "changed": done.changed,
                       "retracted": done.retracted, "unchanged": done.unchanged, "cursor": page.cursor},
             # Effects are per record: a record added and retracted in one page is one of them.
             f"page {page.number}: {page.changes} changes to {done.added + done.changed + done.retracted + done.unchanged}"
             f" records: {done.added} added, {done.changed} changed, {done.retracted} retracted, "
             f"{done.unchanged} unchanged; cursor {page.cursor}")

    if follow:
        try:
            with stopped_by_sigterm():
                mirror.follow(service, client, source, actor, batch, interval, report,
                              lambda exc: click.echo(f"{source.key}: {exc.message}; trying again in {interval:g} s",
                                                     err=True), keypoints=keypoints)
        except KeyboardInterrupt:
            click.echo("stopped; the next sync resumes from the last page applied", err=True)
        return
    mirror.sync(service, client, source, actor, batch, report, keypoints)
    mirror.refresh_index(service)
    if not as_json:
        click.echo(f"{source.key}: up to date; mirror in {db_path}")
