"""Trust and safety commands (admins): the audit log, the safelist, quarantines, disputes, the transparency report."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from hashdb.cli.common import (
    AFTER_ID,
    RECORD_ID,
    _resolve,
    cli,
    db_option,
    emit,
    emit_rows,
    escaped,
    json_option,
    local_principal,
    open_service,
    without_skipped,
)

if TYPE_CHECKING:  # `hashdb --help` loads no domain modules (tests/cli/test_start_up.py)
    from hashdb.types import HashRecord, Vote


@cli.group()
def audit() -> None:
    """The append-only, hash-chained audit log of every write (admins).

    \b
    Example:
        hashdb audit verify
        hashdb audit list --limit 20
    """


@audit.command("verify")
@click.option("--anchor", "anchors", multiple=True, metavar="ID:HASH",
              help="An entry hash recorded earlier outside the database (repeatable); catches a "
                   "truncated or wholly rewritten tail, which the chain alone cannot.")
@db_option
@json_option
def audit_verify(anchors: tuple[str, ...], db_path: str, as_json: bool) -> None:
    """Recompute every entry's hash and link; exit 1 naming the first entry that was changed.

    Prints the head (ID:HASH): keep it elsewhere and pass it as --anchor next time.

    \b
    Example:
        hashdb audit verify --anchor 1200:5f0c...e9
    """
    from hashdb.trust.audit import parse_anchor

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
@click.option("--after", "after_id", type=AFTER_ID, default=0, show_default=True, help="Entries after this id.")
@click.option("--limit", type=int, default=100, show_default=True)
@db_option
@json_option
def audit_list(after_id: int, limit: int, db_path: str, as_json: bool) -> None:
    """List audit entries in order: when, which organisation and key, what, on what.

    \b
    Example:
        hashdb audit list --after 1000 --limit 50 --json
    """
    service = open_service(db_path)
    entries, orgs = service.audit_log(local_principal(service, "local"), after_id, limit)
    # Key "-": a command run on the database file itself, with no key.
    emit_rows(as_json, (({"id": entry.id, "at": entry.at, "org_id": entry.org_id,
                          "org": orgs.get(entry.org_id) if entry.org_id is not None else None,
                          "key_id": entry.key_id, "action": entry.action, "target": entry.target,
                          "detail": entry.detail, "entry_hash": entry.entry_hash},
                         f"{entry.id}  {entry.at}  {_org_shown(entry.org_id, orgs)}  key {entry.key_id or '-'}  "
                         f"{entry.action}  {entry.target}  {entry.detail}")
                        for entry in entries),
              "no audit entries" + (f" after id {after_id}" if after_id else ""), page=limit)


def _org_shown(org_id: int | None, names: dict[int, str]) -> str:
    if org_id is None:
        return "-"
    return escaped(names[org_id]) if org_id in names else f"org {org_id}"


@cli.group()
def safelist() -> None:
    """Benign hashes no one may share: a submission near one is quarantined (admins).

    \b
    Example:
        hashdb safelist add flag.png --note "national flag, not propaganda"
        hashdb safelist list
    """


@safelist.command("add")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--note", default="", help="Why these are benign (kept in the audit log).")
@db_option
@json_option
def safelist_add(inputs: tuple[str, ...], note: str, db_path: str, as_json: bool) -> None:
    """Safelist media files, SIGNAL:HEX hashes or hash files; live records near them are quarantined.

    \b
    Example:
        hashdb safelist add viral-meme.jpg pdq:9a3f...e1 --note "news photo, not TVEC"
    """
    from hashdb.io.inputs import expand

    service = open_service(db_path, create=True)
    items = [value for _, value in _resolve(service, without_skipped(expand(inputs)), dihedral=False,
                                            refused="nothing was added to the safelist")]
    added, held = service.add_safelist(items, local_principal(service, "local"), note)
    emit(as_json, {"added": added, "quarantined": held},
         f"{added} hash(es) added to the safelist; quarantined {len(held)} live record(s)"
         + (f": {', '.join(map(str, held))}" if held else ""))


@safelist.command("list")
@click.option("--after", "after_id", type=AFTER_ID, default=0, show_default=True, help="Entries after this id.")
@click.option("--limit", type=int, default=100, show_default=True)
@db_option
@json_option
def safelist_list(after_id: int, limit: int, db_path: str, as_json: bool) -> None:
    """List safelisted hashes: id, signal, hash, note.

    \b
    Example:
        hashdb safelist list --json
    """
    service = open_service(db_path)
    emit_rows(as_json, (({"id": entry.id, "signal": entry.signal, "hash": entry.value, "note": entry.note,
                          "created_at": entry.created_at},
                         f"{entry.id}  {entry.signal}:{entry.value}  {escaped(entry.note)}")
                        for entry in service.safelist_entries(local_principal(service, "local"), after_id, limit)),
              "the safelist is empty" + (f" after id {after_id}" if after_id else ""), page=limit)


@safelist.command("remove")
@click.argument("entry_ids", nargs=-1, required=True, type=RECORD_ID)
@click.option("--note", default="", help="Why (kept in the audit log).")
@db_option
@json_option
def safelist_remove(entry_ids: tuple[int, ...], note: str, db_path: str, as_json: bool) -> None:
    """Take entries off the safelist. Records they held stay quarantined until released.

    \b
    Example:
        hashdb safelist remove 12 --note "added by mistake"
    """
    service = open_service(db_path)
    removed = service.remove_safelist(list(entry_ids), local_principal(service, "local"), note)
    emit(as_json, {"removed": removed}, f"removed from the safelist: {', '.join(map(str, removed))}")


@cli.group()
def quarantine() -> None:
    """Records held out of members' lookups pending review: list, add, release, confirm (admins).

    \b
    Example:
        hashdb quarantine list
        hashdb quarantine release 42 --reason "checked: the label is right"
    """


def _quarantine_json(item: Any) -> dict[str, Any]:
    from hashdb.io import output

    return {**output.record_json(item.record), "rule": item.rule, "reason": item.reason, "since": item.at}


@quarantine.command("list")
@click.option("--after", "after_id", type=AFTER_ID, default=0, show_default=True, help="Records after this id.")
@click.option("--limit", type=int, default=100, show_default=True)
@db_option
@json_option
def quarantine_list(after_id: int, limit: int, db_path: str, as_json: bool) -> None:
    """List quarantined records with the rule that held them and why.

    \b
    Example:
        hashdb quarantine list --json
    """
    service = open_service(db_path)
    emit_rows(as_json, ((doc, f"{doc['id']}  {doc['signal']}  [{', '.join(doc['labels'])}]  "
                              f"{item.rule}: {escaped(item.reason)}")
                        for item in service.quarantined(local_principal(service, "local"), after_id, limit)
                        for doc in (_quarantine_json(item),)),
              "no records in quarantine" + (f" after id {after_id}" if after_id else ""), page=limit)


@quarantine.command("add")
@click.argument("record_id", type=RECORD_ID)
@click.option("--reason", required=True, help="Why (kept in the audit log).")
@db_option
@json_option
def quarantine_add(record_id: int, reason: str, db_path: str, as_json: bool) -> None:
    """Quarantine an active or disputed record by hand.

    \b
    Example:
        hashdb quarantine add 42 --reason "reported as a news photo"
    """
    from hashdb.io import output

    service = open_service(db_path)
    record = service.quarantine(record_id, local_principal(service, "local"), reason)
    emit(as_json, output.record_json(record), f"{record.id}: {record.status}")


@quarantine.command("release")
@click.argument("record_id", type=RECORD_ID)
@click.option("--reason", default="", help="Why (kept in the audit log).")
@db_option
@json_option
def quarantine_release(record_id: int, reason: str, db_path: str, as_json: bool) -> None:
    """Release a quarantined record: it matches for members again.

    \b
    Example:
        hashdb quarantine release 42 --reason "reviewed: genuine propaganda"
    """
    from hashdb.io import output

    service = open_service(db_path)
    record = service.release(record_id, local_principal(service, "local"), reason)
    emit(as_json, output.record_json(record), f"{record.id}: {record.status}"
         + (f" (members' votes dispute it: `hashdb dispute uphold {record.id} --reason ...` rules that it stands)"
            if record.status == "disputed" else ""))


@quarantine.command("confirm")
@click.argument("record_id", type=RECORD_ID)
@click.option("--reason", required=True, help="Why it stays out (members and partners see a retraction).")
@db_option
@json_option
def quarantine_confirm(record_id: int, reason: str, db_path: str, as_json: bool) -> None:
    """Confirm a quarantine: the record is retracted for good, with the reason.

    \b
    Example:
        hashdb quarantine confirm 42 --reason "benign meme, poisoning attempt"
    """
    from hashdb.io import output

    service = open_service(db_path)
    record = service.confirm_quarantine(record_id, local_principal(service, "local"), reason)
    emit(as_json, output.record_json(record), f"{record.id}: {record.status}")


@cli.group()
def dispute() -> None:
    """Records that members' votes dispute: list them with each vote, uphold one that stands (admins).

    \b
    Example:
        hashdb dispute list
        hashdb dispute uphold 42 --reason "reviewed: the attacker's video, label right"
    """


@dispute.command("list")
@click.option("--before", "before", type=RECORD_ID, default=None, help="Records with ids below this (the next page).")
@click.option("--limit", type=int, default=50, show_default=True)
@db_option
@json_option
def dispute_list(before: int | None, limit: int, db_path: str, as_json: bool) -> None:
    """List disputed records, newest first, each with every organisation's vote and note.

    \b
    Example:
        hashdb dispute list --json
    """
    service = open_service(db_path)
    page, votes = service.disputed(local_principal(service, "local"), before, limit)
    emit_rows(as_json, (_disputed_row(record, votes.get(record.id, [])) for record in page.records),
              "no disputed records" + (f" below id {before}" if before else ""))
    if page.next_before is not None:
        click.echo(f"perhaps more: --before {page.next_before}", err=True)


def _disputed_row(record: HashRecord, votes: list[Vote]) -> tuple[dict[str, Any], str]:
    from hashdb.io import output

    doc = {**output.record_json(record),
           "votes": [{"org": v.org_name, "verdict": v.verdict, "note": v.note, "at": v.at,
                      "overruled_at": v.overruled_at} for v in votes]}
    said = "; ".join(f"{escaped(v.org_name)} {v.verdict}" + (" (overruled)" if v.overruled_at else "")
                     + (f": {escaped(v.note)}" if v.note else "") for v in votes)
    return doc, (f"{record.id}  {record.signal}  [{', '.join(record.labels)}]  {record.agree} agree / "
                 f"{record.disagree} disagree / {record.false_positive} false positive  {said}")


@dispute.command("uphold")
@click.argument("record_id", type=RECORD_ID)
@click.option("--reason", required=True, help="Why it stands (kept in the audit log).")
@db_option
@json_option
def dispute_uphold(record_id: int, reason: str, db_path: str, as_json: bool) -> None:
    """Rule that a disputed record stands: active again, and the votes against it cast so far
    no longer dispute it (they stay on the record); agree votes keep counting, and votes cast
    after the ruling count as usual. Runs as the organisation "local": refused for a record
    it shared (another organisation's admin rules on that).

    \b
    Example:
        hashdb dispute uphold 42 --reason "reviewed: genuine propaganda, label right"
    """
    from hashdb.io import output

    service = open_service(db_path)
    record = service.uphold(record_id, local_principal(service, "local"), reason)
    emit(as_json, output.record_json(record), f"{record.id}: {record.status}")


@cli.command("report")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default="report",
              show_default=True, help="Directory for report.md and its chart.")
@click.option("--admin", "named", is_flag=True, help="Name contributing organisations (not for publication).")
@db_option
@json_option
def report_command(out_dir: Path, named: bool, db_path: str, as_json: bool) -> None:
    """Write the transparency report: Markdown counts by signal, label, status and month, and a chart.

    \b
    Example:
        hashdb report --out public/2026-q1
    """
    from hashdb.trust import report

    service = open_service(db_path)
    data = service.transparency_report(local_principal(service, "local"), named)
    paths = report.write(data, out_dir)
    emit(as_json, {"files": [str(p) for p in paths]}, "\n".join(f"wrote {p}" for p in paths))
