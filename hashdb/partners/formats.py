"""Export and import formats: our JSONL (full fidelity), CSV (spreadsheet-safe) and
ThreatExchange's local-file lines (`<pytx signal type> <signal>`, live hashes only)."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path
from typing import IO, Any, Protocol

from hashdb.io import te_format
from hashdb.partners import csv_format
from hashdb.partners.csv_format import CSV_COLUMNS, csv_cell
from hashdb.errors import InvalidInput
from hashdb.io import output
from hashdb.io.inputs import BOM, BadInput, HashedInput, HashInput, read_hash_file, te_line_item
from hashdb.partners import mirror
from hashdb.service import MAX_KEYPOINT_EXPORT_PAGE, HashDB
from hashdb.types import FeedEntry, Principal, Submission

PAGE = 5_000
LIVE = ("active", "disputed")


class FeedSource(Protocol):
    """What an export reads from: HashDB, or hashdb.partners.client.RemoteFeed over the HTTP API."""

    def export(self, actor: Principal, since: str | None = None, limit: int = 1000,
               keypoints: bool = False) -> tuple[list[FeedEntry], str]: ...

    def feed_identity(self) -> str | None:
        """The database's feed identity (None from a server before it; known once a page is read)."""


def write_export(service: FeedSource, actor: Principal, stream: IO[str], fmt: str, since: str | None,
                 limit: int | None, keypoints: bool = False) -> str:
    """Write the feed after `since` (at most `limit` changes) in `fmt`; returns the next cursor.
    `keypoints`: image entries carry their stored keypoints (jsonl only)."""
    if keypoints and fmt != "jsonl":
        # CSV is for spreadsheets and te for pytx, neither of which reads keypoints; only the
        # JSONL that `hashdb import` reads back carries them.
        raise InvalidInput(f"keypoints are exported in the jsonl format only, not {fmt}")
    most = MAX_KEYPOINT_EXPORT_PAGE if keypoints else PAGE
    writer = csv.writer(stream) if fmt == "csv" else None
    if writer is not None:
        writer.writerow(CSV_COLUMNS)
    # te lists live hashes only: the latest state of each record decides.
    latest: dict[int, FeedEntry] = {}
    cursor, remaining = since, limit
    while remaining is None or remaining > 0:
        page = most if remaining is None else min(most, remaining)
        entries, cursor = service.export(actor, cursor, page, keypoints)
        # Every line names the database's feed, so an import of the file is known as that
        # database's: not held twice beside a sync of it, nor taken for another database's.
        feed = service.feed_identity()
        for entry in entries:
            if fmt == "jsonl":
                stream.write(json.dumps(_line(entry, feed), ensure_ascii=False) + "\n")
            elif writer is not None:
                doc = _line(entry, feed)
                doc["labels"] = ";".join(doc["labels"])
                writer.writerow([csv_cell(doc.get(c)) for c in CSV_COLUMNS])
            else:
                latest[entry.id] = entry
        if remaining is not None:
            remaining -= len(entries)
        if len(entries) < page:
            break
    for entry in sorted(latest.values(), key=lambda e: e.id):
        stream.write(te_line(entry) if entry.status in LIVE else "")
    return cursor or ""


def _line(entry: FeedEntry, feed: str | None) -> dict[str, Any]:
    doc = output.feed_json(entry)
    if feed is not None:
        doc["feed"] = feed
    return doc


def te_line(entry: FeedEntry) -> str:
    """The line pytx's local-file exchange reads for this record ("" when pytx has no type for it)."""
    name = te_format.pytx_name(entry.signal, entry.media_type)
    if name is None:
        return ""
    signal = te_format.vpdq_signal(entry.frames) if entry.signal == "vpdq" else entry.hash
    return f"{name} {signal}\n"


def import_file(service: HashDB, actor: Principal, path: Path, labels: tuple[str, ...] = (),
                source: str | None = None, pdq_quality: int | None = None) -> dict[str, Any]:
    """Import our export (JSONL or CSV) into a mirror of `source` (hashdb.partners.mirror), or
    ThreatExchange hashes: pytx's hash lines (which carry no labels, nor PDQ qualities: give
    them) or its `dataset --csv` (whose tags that are labels here are taken, besides `labels`)."""
    with path.open("rb") as handle:
        first = handle.readline().removeprefix(BOM).lstrip()
    if not first and path.stat().st_size == 0:
        raise InvalidInput(f"{path}: empty file (0 bytes)")
    kind = csv_format.kind_of(first)
    export = kind == "hashdb" or first.startswith(b"{") and b'"kind"' in first
    _refuse_ignored(path, export, labels, source, pdq_quality)
    if export:
        lines = (lambda: csv_format.feed_lines(path)) if kind == "hashdb" else None
        notes: list[str] = []
        outcome = mirror.import_feed(service, mirror.Source.named(source or mirror.FILE_SOURCE), path, actor, lines,
                                     notes)
        return {**dataclasses.asdict(outcome), **({"notes": notes} if notes else {})}
    if kind == "pytx":
        return _import_pytx_csv(service, actor, path, labels, pdq_quality)
    submissions = []
    for item in read_hash_file(path):
        if isinstance(item, BadInput):
            raise item.error
        if isinstance(item, (HashInput, HashedInput)):
            submissions.append(_submission(service, item, labels, pdq_quality))
    if submissions and not labels:
        raise InvalidInput("this file carries no labels: give them with --label")
    return _submit_all(service, actor, submissions)


def _refuse_ignored(path: Path, export: bool, labels: tuple[str, ...], source: str | None,
                    pdq_quality: int | None) -> None:
    """An option that would not apply to this file is refused, never silently dropped: the
    import would otherwise look as asked. An export is mirrored as its source has it (labels,
    statuses, qualities, and their later changes, which would replace any label given here);
    ThreatExchange hashes are submitted as the caller's own, from no source."""
    if export:
        given = [name for name, value in (("--label", labels), ("--pdq-quality", pdq_quality is not None)) if value]
        if given:
            raise InvalidInput(f"{path}: a hashdb export keeps the labels and qualities its source gave; "
                               f"{' and '.join(given)} {'apply' if len(given) > 1 else 'applies'} to "
                               f"ThreatExchange hashes only (leave {'them' if len(given) > 1 else 'it'} out)")
    elif source is not None:
        raise InvalidInput(f"{path}: --source names where a hashdb export came from; these are ThreatExchange "
                           "hashes, submitted as --org (leave --source out)")


def _submission(service: HashDB, item: HashInput | HashedInput, labels: tuple[str, ...],
                pdq_quality: int | None) -> Submission:
    if isinstance(item, HashedInput):
        return service.submission_for(item.hashes, labels)
    value = item.value
    if value.signal == "pdq" and value.quality is None and pdq_quality is not None:
        value = dataclasses.replace(value, quality=pdq_quality)
    return Submission(item.input, labels, (value,))


# Rows of a pytx dataset not imported, and the note that says why. A DISPUTED row is not kept
# disputed: its record would be the importer's own, and a record here is disputed only by its
# members' votes (policy.py recomputes the status from them at the next vote), so the store has
# no disputed-at-birth state to give it; imported active, it would be shared as confirmed.
PYTX_SKIPPED = {
    csv_format.PYTX_NEGATIVE: "pytx holds such a signal to be a false positive",
    csv_format.PYTX_SEED: "pytx holds such a signal to be an indirect indicator that needs verifying; "
                          "a record here is matched as confirmed content",
    csv_format.PYTX_DISPUTED: "the collaboration's opinions of such a signal disagree; a record here is "
                              "disputed only by its members' votes, so it is not shared as if confirmed",
}
# Any other category is not one pytx writes (its AggregateSignalOpinionCategory): not shared
# either, since only POSITIVE_CLASS says the signal is the collaboration's content.
PYTX_UNKNOWN = f"not an opinion pytx writes; only {csv_format.PYTX_POSITIVE} rows are shared"


def _import_pytx_csv(service: HashDB, actor: Principal, path: Path, labels: tuple[str, ...],
                     pdq_quality: int | None) -> dict[str, Any]:
    """Each row's signal, labelled with its tags that are labels of our taxonomy and `labels`;
    only a row pytx holds to be the collaboration's content (POSITIVE_CLASS) is shared: a false
    positive (NEGATIVE_CLASS), an investigation seed, a disputed row or any other category is
    skipped, not shared, and counted with a note."""
    known = set(service.taxonomy.labels)
    submissions: list[Submission] = []
    skipped: dict[str, int] = {}
    for row in csv_format.pytx_rows(path):
        if row.category != csv_format.PYTX_POSITIVE:
            skipped[row.category] = skipped.get(row.category, 0) + 1
            continue
        mine = tuple(dict.fromkeys([t for t in row.tags if t in known] + list(labels)))
        if not mine:
            raise InvalidInput(f"{row.where}: no label: none of its tags ({' '.join(row.tags) or 'none'}) is a "
                               "label here; give one with --label")
        item = te_line_item(row.line, row.where)
        if isinstance(item, BadInput):
            raise item.error
        if isinstance(item, (HashInput, HashedInput)):
            submissions.append(_submission(service, item, mine, pdq_quality))
    summary: dict[str, Any] = {**_submit_all(service, actor, submissions), "skipped": sum(skipped.values())}
    if skipped:
        summary["notes"] = [f"{n} {category or '(no category)'} row{'' if n == 1 else 's'} skipped: "
                            f"{PYTX_SKIPPED.get(category, PYTX_UNKNOWN)}" for category, n in sorted(skipped.items())]
    return summary


def _submit_all(service: HashDB, actor: Principal, submissions: list[Submission]) -> dict[str, int]:
    added = duplicates = 0
    for start in range(0, len(submissions), 1000):
        for result in service.submit(submissions[start:start + 1000], actor):
            if result.duplicate:
                duplicates += 1
            else:
                added += 1
    return {"added": added, "duplicates": duplicates}
