"""Sharing commands: submit, lookup, retract, feedback (locally, or with --server over the API)."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from hashdb.cli.common import (
    RECORD_ID,
    LabelOption,
    _resolve,
    _resolving,
    chosen_server,
    cli,
    connect,
    db_option,
    emit,
    hashing_server_options,
    hashing_service,
    jobs_option,
    json_option,
    local_principal,
    located,
    open_service,
    org_option,
    pdq_quality_option,
    require_database,
    server_options,
    shown,
    with_pdq_quality,
    without_skipped,
)
from hashdb.errors import HashDBError, UnknownLabel

if TYPE_CHECKING:
    from hashdb.service import HashDB
    from hashdb.types import Principal, Query

# The end of a refused submit's one-line error: a batch is all or nothing, and the error alone
# (after a long folder was hashed) left open whether the other files were stored.
NOTHING_SUBMITTED = "nothing was submitted (a batch is refused whole)"


@cli.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("--label", "labels", multiple=True, required=True, cls=LabelOption,
              help="Taxonomy label id (repeatable). The default taxonomy's: {labels} (HASHDB_TAXONOMY names another).")
@click.option("--incident", help="Incident id (crisis protocol).")
@click.option("--ref", "reference", help="Your own reference id for this content (evidence pointer).")
@click.option("--idempotency-key", help="Makes a retried submit store the batch once.")
@pdq_quality_option
@db_option
@org_option
@hashing_server_options
@json_option
def submit(inputs: tuple[str, ...], labels: tuple[str, ...], incident: str | None, reference: str | None,
           idempotency_key: str | None, pdq_quality: int | None, db_path: str, org: str, server: str | None,
           api_key: str | None, as_json: bool) -> None:
    """Share hashes of content you removed: media files, SIGNAL:HEX, or hash files.

    An image file also stores its keypoints (README, "Crops: keypoints"), with which a lookup of
    a file in this database finds crops of it; they are kept in the database they are stored
    in, and a server sends them on only to partners who ask where its operator shares them.

    The whole batch is checked first; if anything is invalid nothing is stored. With --server,
    more than 1,000 items (the server's limit) are sent in parts, each all-or-nothing; the
    parts stored before one is refused are printed, then the error. A part the server asks
    to send later (429/503 Retry-After) is sent again after the wait (6 times, waits to 30 s).

    \b
    Example:
        hashdb submit removed/ --label glorification --ref case-1234
        hashdb submit pdq:9a3f...e1 te-hashes.txt --pdq-quality 50 --label glorification
        hashdb submit removed/ --label glorification --server https://hashdb.example.org --api-key "$KEY"
    """
    from hashdb.io import output
    from hashdb.io.inputs import expand
    from hashdb.types import Submission

    server = chosen_server(server)
    client = connect(server, api_key) if server else None
    service = hashing_service() if client else open_service(db_path, create=True)
    submissions = []
    for name, value in _resolve(service, without_skipped(expand(inputs)), dihedral=False, refused=NOTHING_SUBMITTED):
        value = with_pdq_quality(value, pdq_quality)
        meta = {"incident": incident, "reference": reference}
        if hasattr(value, "media_type"):
            submissions.append(service.submission_for(value, labels, **meta))
        else:
            submissions.append(Submission(name, tuple(labels), (value,), **meta))  # type: ignore[arg-type]
    if client is not None:
        from hashdb.partners.client import PartlySubmitted, submit_submissions

        def waiting(exc: HashDBError, seconds: int) -> None:
            click.echo(f"{exc.message}: sending again in {seconds} s", err=True)

        try:
            docs = submit_submissions(client, submissions, idempotency_key, on_wait=waiting)
        except PartlySubmitted as partly:
            # The parts stored are printed as any result is, then the error: a script reading
            # --json learns the ids it has to keep (or retract) as well as what failed.
            _print_submitted(partly.results, as_json)
            raise  # its message says how many went in
        except HashDBError as exc:
            # Refused by its first request, each all or nothing on the server. --label is every
            # item's, so the item the server names for a refused label tells nothing: said as
            # a local submit says it.
            message = str(exc)
            if isinstance(exc, UnknownLabel) and message.startswith("items["):
                message = message.split(": ", 1)[-1]
            raise click.ClickException(f"{message}; {NOTHING_SUBMITTED}") from exc
    else:
        try:
            results = service.submit(submissions, local_principal(service, org), idempotency_key)
        except HashDBError as exc:
            # One transaction: a refused or failed batch stored none of it.
            raise click.ClickException(f"{exc}; {NOTHING_SUBMITTED}") from exc
        docs = [output.submit_json(r) for r in results]
    _print_submitted(docs, as_json)


def _print_submitted(docs: list[dict[str, Any]], as_json: bool) -> None:
    for doc in docs:
        state = "already shared" if doc["duplicate"] else doc["status"]
        note = f"; skipped {', '.join(doc['skipped'])}" if doc.get("skipped") else ""
        if doc.get("duplicate_ids") and not doc["duplicate"]:
            note += f"; already shared: ids {', '.join(map(str, doc['duplicate_ids']))}"
        note += "".join(f"; {n}" for n in doc.get("notes", []))
        emit(as_json, doc, f"{shown(doc['input'])}: {state}, ids {', '.join(map(str, doc['ids']))}{note}")


@cli.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("--threshold", "thresholds", multiple=True, metavar="SIGNAL=N",
              help="Tighter match threshold for a signal, e.g. pdq=20 (never looser than the default).")
@click.option("--no-dihedral", is_flag=True, help="Do not also match rotated and mirrored copies of images.")
@click.option("--admin", "as_admin", is_flag=True,
              help="Local database: see what an admin sees (quarantined records too). By default a local "
                   "lookup sees what a member sees over the API.")
@jobs_option
@db_option
@hashing_server_options
@json_option
def lookup(inputs: tuple[str, ...], thresholds: tuple[str, ...], no_dihedral: bool, as_admin: bool, jobs: int | None,
           db_path: str, server: str | None, api_key: str | None, as_json: bool) -> None:
    """Check media or hashes against the database. Exits 0 whatever matched; --json says.

    A file that cannot be read or hashed gets an error line of its own and the rest are
    looked up; the exit status is then 1. A file (or a query with a pdq) is matched by PDQ,
    whole and derived; pHash/dHash match only queries of 64-bit hashes alone. A file looked up
    in a database holding keypoints is also matched by them (crops; `via aligned`); with
    --server, or against hashes alone, its pixels never leave and crops are matched less well.

    \b
    Example:
        hashdb lookup --json upload.jpg pdq:9a3f...e1
        hashdb lookup upload.jpg --server https://hashdb.example.org --api-key "$KEY"
    """
    server = chosen_server(server)
    limits = _parse_thresholds(thresholds)
    if as_admin and server:
        raise click.UsageError("--admin is for a local database; over the API the key decides what you see")
    from hashdb.io.inputs import BadInput, expand
    from hashdb.service import HashingService
    from hashdb.service.local import settings_from_env
    from hashdb.service.media_pool import ProbeSwitch
    from hashdb.types import Principal, Query

    client = connect(server, api_key) if server else None
    if client is None:
        require_database(db_path)  # a mistyped --db is told before any file is hashed
    # Hashing needs no database: the workers start first, and the database and its index open
    # while they hash (a large index takes seconds to load).
    settings = settings_from_env()
    if client is not None:
        # A lookup's keypoints need the file's pixels, which are never sent: not computed.
        settings = dataclasses.replace(settings, keypoints=False)
    hasher = HashingService(settings)
    items = without_skipped(expand(inputs))
    probes = ProbeSwitch()
    resolved = _resolving(hasher, items, dihedral=not no_dihedral, jobs=jobs, probes=probes)
    service: HashDB | None = None
    actor: Principal | None = None
    if client is None:
        try:
            service = open_service(db_path)
            if not service.store.keypoint_rows(0, 1):
                # No stored keypoints to meet (a mirror synced without them, a database of hashes alone): the
                # files hashed from now on skip their probe's ORB pass.
                probes.off()
            if any(not isinstance(i, BadInput) for i in items):
                service.load_index()
                org = service.store.ensure_org("local")
                # As a member sees it over the API (quarantined records held back), unless
                # --admin; not counted by the spike rule, which watches members' lookups.
                actor = Principal(org.id, org.name, "admin" if as_admin else "consumer")
        except BaseException:
            resolved.close()  # releases the workers: they stop after the files in hand
            raise
    queries: list[Query] = []
    printed = _InOrder(as_json)
    for name, value in resolved:
        if isinstance(value, HashDBError):
            printed.failed(len(queries), name, value.message)
        elif hasattr(value, "media_type"):
            query = hasher.query_for(value)
            queries.append(dataclasses.replace(query, input=name))
        else:
            queries.append(Query(name, (value,)))
        if service is not None and actor is not None and len(queries) - len(printed.answers) == _LOOKUP_BATCH:
            # Looked up as they come, so only the last batch waits for the last file, and
            # written at once: a folder's first answers do not wait for its last file.
            start = len(printed.answers)
            printed.answered(_looked_up(service, queries[start:], actor, limits))
            # A probe holds its file's grey pixels (a few hundred KB): kept no longer than its
            # lookup, not for a whole folder.
            queries[start:] = [dataclasses.replace(q, probe=None) for q in queries[start:]]
    if queries and client is not None:
        from hashdb.partners.client import lookup_queries

        printed.answered(lookup_queries(client, queries, limits))
    elif service is not None and actor is not None and len(printed.answers) < len(queries):
        printed.answered(_looked_up(service, queries[len(printed.answers):], actor, limits))
    if printed.failures:
        sys.exit(1)


class _InOrder:
    """A lookup's lines in the order of its inputs, each written as soon as every line before
    it is known: a file that could not be hashed when it is read, a batch's answers when they
    are looked up (a folder of thousands had printed nothing until its last file)."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.answers: list[dict[str, Any]] = []  # one per query, in order
        self.failures: dict[int, tuple[str, str]] = {}  # position among the lines -> (input, why)
        self._written = 0  # lines written
        self._answers_written = 0

    def failed(self, queries_before: int, name: str, message: str) -> None:
        self.failures[queries_before + len(self.failures)] = (name, message)
        self._write_known()

    def answered(self, docs: list[dict[str, Any]]) -> None:
        self.answers += docs
        self._write_known()

    def _write_known(self) -> None:
        # Every input before the newest one read is known: a line is written once the failures
        # and answers before it are.
        while True:
            if self._written in self.failures:
                name, message = self.failures[self._written]
                # As `hashdb hash` says it: `NAME: error: why`, the name once.
                why = located(name, message)[len(shown(name)) + 2:]
                emit(self.as_json, {"input": name, "error": why}, f"{shown(name)}: error: {why}")
            elif self._answers_written < len(self.answers):
                _write_answer(self.answers[self._answers_written], self.as_json)
                self._answers_written += 1
            else:
                return
            self._written += 1


def _write_answer(doc: dict[str, Any], as_json: bool) -> None:
    if not doc["matched"]:
        text = f"{shown(doc['input'])}: no match"
    else:
        text = f"{shown(doc['input'])}: MATCH " + "; ".join(
            f"id {m['id']}{_source_text(m)} {m['signal']}{' via ' + m['via'] if m.get('via') else ''} "
            f"{_closeness(m)} [{', '.join(m['labels'])}] "
            f"{m['status']}, {m['support']} org(s), {m['agree']} agree / {m['disagree']} disagree"
            + (f" / {m['false_positive']} false positive" if m.get("false_positive") else "")
            for m in doc["matches"]
        )
    if "low_quality" in doc.get("flags", ()):
        # As --json's flags say: a PDQ of a near-flat picture, whose matches (or their
        # absence) say less than usual.
        text += " (low-quality PDQ)"
    emit(as_json, doc, text)


# Queries looked up at once by a local lookup of many files: a batch's matches are the same as
# one lookup of them all (each query is matched on its own), and its cost is paid while the
# workers hash the next files.
_LOOKUP_BATCH = 16


def _looked_up(service: HashDB, queries: Sequence[Query], actor: Principal,
               limits: dict[str, int]) -> list[dict[str, Any]]:
    from hashdb.io import output

    return [output.lookup_json(r) for r in service.lookup(queries, actor, limits, count=False)]


def _closeness(match: dict[str, Any]) -> str:
    """Bits apart for Hamming signals; a similarity score (higher is closer) for tmk."""
    if "score" in match:
        return f"score {match['score']}"
    video = match.get("video")
    # For a video the shares of matching frames decide, not the nearest frame's distance.
    frames = f", {video['query_pct']:g} % of this video's frames, {video['stored_pct']:g} % of the stored one's" \
        if isinstance(video, dict) else ""
    if isinstance(video, dict) and video.get("rule") == "contained":
        frames += " (the stored video is inside this one)"
    return f"distance {match['distance']}{frames}"


def _source_text(match: dict[str, Any]) -> str:
    source = match.get("source")
    return f" (id {source['id']} at {source['name']})" if source else ""


def _parse_thresholds(pairs: Sequence[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for pair in pairs:
        signal, sep, value = pair.partition("=")
        if not sep or not value.isascii() or not value.isdigit():
            raise click.UsageError(f"--threshold takes SIGNAL=N, got {pair!r}")
        out[signal.strip().lower()] = int(value)
    return out


@cli.command()
@click.argument("ids", nargs=-1, required=True, type=RECORD_ID)
@click.option("--reason", default="", help="Why (kept in the audit log).")
@db_option
@org_option
@server_options
@json_option
def retract(ids: tuple[int, ...], reason: str, db_path: str, org: str, server: str | None, api_key: str | None,
            as_json: bool) -> None:
    """Retract your own submissions: they stop matching at once and leave a tombstone in exports.

    \b
    Example:
        hashdb retract 42 43 --reason "benign meme, submitted by mistake"
    """
    server = chosen_server(server)
    if server:
        client = connect(server, api_key)
        for record_id in ids:
            doc = client.retract(record_id, reason)
            emit(as_json, doc, f"{doc['id']}: {doc['status']}")
        return
    from hashdb.io import output

    service = open_service(db_path)
    actor = local_principal(service, org)
    for record_id in ids:
        record = service.retract(record_id, actor, reason)
        emit(as_json, output.record_json(record), f"{record.id}: {record.status}")


@cli.command()
@click.argument("record_id", type=RECORD_ID)
@click.option("--label", "labels", multiple=True, required=True, help="New taxonomy label id (repeatable).")
@db_option
@org_option
@server_options
@json_option
def relabel(record_id: int, labels: tuple[str, ...], db_path: str, org: str, server: str | None,
            api_key: str | None, as_json: bool) -> None:
    """Replace the labels of your own submission (admins: any); partners see it in the feed.

    \b
    Example:
        hashdb relabel 42 --label recruitment_instruction --label branded_publication
    """
    server = chosen_server(server)
    if server:
        doc = connect(server, api_key).relabel(record_id, labels)
    else:
        from hashdb.io import output

        service = open_service(db_path)
        doc = output.record_json(service.relabel(record_id, labels, local_principal(service, org)))
    emit(as_json, doc, f"{doc['id']}: labels {', '.join(doc['labels'])}")


@cli.command()
@click.argument("record_id", type=RECORD_ID)
# Three flags, not one option with three flag values: click keeps only the last of those, so
# `--agree --disagree` would pass as a disagree vote.
@click.option("--agree", is_flag=True, help="The label is right.")
@click.option("--disagree", is_flag=True, help="The label is wrong.")
@click.option("--false-positive", is_flag=True, help="It matched benign content.")
@click.option("--note", default="", help="Optional note for the contributor.")
@db_option
@org_option
@server_options
@json_option
def feedback(record_id: int, agree: bool, disagree: bool, false_positive: bool, note: str, db_path: str, org: str,
             server: str | None, api_key: str | None, as_json: bool) -> None:
    """Vote on a shared hash (one vote per organisation, changeable). Another organisation's
    only, and a hash yours did not share too: the one that shared it retracts or relabels it instead.

    \b
    Example:
        hashdb feedback 42 --false-positive --note "matches a news photo"
    """
    chosen = [v for v, given in (("agree", agree), ("disagree", disagree), ("false_positive", false_positive))
              if given]
    if len(chosen) != 1:
        raise click.UsageError(f"give {'one' if not chosen else 'only one'} of --agree, --disagree, --false-positive")
    verdict = chosen[0]
    server = chosen_server(server)
    if server:
        doc = connect(server, api_key).feedback(record_id, verdict, note)
    else:
        from hashdb.io import output

        service = open_service(db_path)
        doc = output.record_json(service.feedback(record_id, local_principal(service, org), verdict, note))
    emit(as_json, doc, f"{doc['id']}: {doc['status']}, {doc['agree']} agree / {doc['disagree']} disagree / "
                       f"{doc['false_positive']} false positive")
