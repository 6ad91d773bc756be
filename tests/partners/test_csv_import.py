"""`hashdb import` reads CSV: our own `hashdb export --format csv` (the same records as the JSONL
export gives) and what the real `threatexchange dataset -P --csv` writes (fetched from a real
`hashdb serve` through our pytx exchange); a malformed row is a one-line error naming its line."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from serverproc import serving
from test_pytx_exchange import EXTENSION, ROLES, Tx

from hashdb.cli import cli
from hashdb.partners.client import Client
from hashdb.service.local import open_database
from hashdb.types import Principal


@pytest.fixture(autouse=True)
def long_cells():
    # A tmk cell is 351,128 characters; Python's csv reads at most 131,072 unless told.
    old = csv.field_size_limit(1 << 20)
    yield
    csv.field_size_limit(old)


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), env={"HASHDB_DB": None, "HASHDB_SERVER": None})
    return result.exit_code, result.stdout, result.stderr


def ok(*args: str) -> str:
    code, out, err = run(*args)
    assert code == 0, err
    return out


def feed(db: Path) -> list[dict]:
    """A database's change feed, without the times its changes were applied there and the
    identity of its own feed."""
    return [{k: v for k, v in json.loads(line).items() if k not in ("at", "feed")}
            for line in ok("export", "--db", str(db)).splitlines()]


@pytest.fixture
def source(tmp_path, media) -> Path:
    """A database with what a CSV cell must carry: a video's frames, derived hashes, votes,
    a relabel, a retraction and an incident a spreadsheet would run as a formula."""
    db = tmp_path / "source.sqlite"
    service = open_database(db)
    try:
        operator = service.store.ensure_org("operator")
        admin = Principal(operator.id, operator.name, "admin")
        service.open_incident("=HYPERLINK(1)", admin)
        service.open_incident("'quoted", admin)
    finally:
        service.store.close()
    ok("submit", "--db", str(db), str(media / "chelsea.jpg"), str(media / "clip.mp4"), "--label", "glorification",
       "--incident", "=HYPERLINK(1)")
    ok("submit", "--db", str(db), str(media / "rocket.jpg"), "--label", "branded_publication",
       "--incident", "'quoted", "--org", "beta")
    ok("relabel", "--db", str(db), "1", "--label", "attacker_manifesto")
    ok("retract", "--db", str(db), "2")
    ok("feedback", "--db", str(db), "3", "--disagree", "--org", "gamma")
    return db


def test_our_csv_export_imports_as_the_same_records_as_our_jsonl(source, tmp_path):
    as_csv, as_jsonl = tmp_path / "out.csv", tmp_path / "out.jsonl"
    as_csv.write_text(ok("export", "--db", str(source), "--format", "csv"))
    as_jsonl.write_text(ok("export", "--db", str(source)))
    rows = list(csv.DictReader(io.StringIO(as_csv.read_text())))
    assert {r["incident"] for r in rows} >= {"'=HYPERLINK(1)", "''quoted"}  # escaped for spreadsheets
    assert any(r["frames"] for r in rows) and any(r["derived"] for r in rows)

    from_csv, from_jsonl = tmp_path / "from-csv.sqlite", tmp_path / "from-jsonl.sqlite"
    summary = json.loads(ok("import", "--json", "--db", str(from_csv), str(as_csv)))
    assert summary == json.loads(ok("import", "--json", "--db", str(from_jsonl), str(as_jsonl)))
    assert summary["added"] == len({r["id"] for r in rows}) - 1  # all but the retracted one
    imported = feed(from_csv)
    assert imported == feed(from_jsonl)
    assert {d["incident"] for d in imported} == {"=HYPERLINK(1)", "'quoted"}
    assert any(d["disagree"] == 1 for d in imported) and any(d.get("frames") for d in imported)
    # Imported twice: nothing changes.
    again = json.loads(ok("import", "--json", "--db", str(from_csv), str(as_csv)))
    assert again["added"] == 0 and again["changed"] == 0
    # A CSV written before the later columns (votes, frames, ...) still imports.
    old = tmp_path / "old.csv"
    with old.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(list(rows[0])[:12])
        writer.writerows([list(r.values())[:12] for r in rows if not r["frames"] and not r["tmk"]])
    assert json.loads(ok("import", "--json", "--db", str(tmp_path / "old.sqlite"), str(old)))["added"] > 0


@pytest.mark.parametrize("edit,reason", [
    (lambda cells: cells[:5], "expected 19 cells, as the header has, got 5"),
    (lambda cells: [*cells[:4], "abc", *cells[5:]], "hash"),
    (lambda cells: ["x", *cells[1:]], "seq must be a positive integer"),
    (lambda cells: [*cells[:15], "[not json", *cells[16:]], "frames is not JSON"),
    (lambda cells: [*cells[:7], "no_such_label", *cells[8:]], "unknown label 'no_such_label'"),
])
def test_a_malformed_row_of_our_csv_is_a_one_line_error_naming_its_line(source, tmp_path, edit, reason):
    rows = list(csv.reader(io.StringIO(ok("export", "--db", str(source), "--format", "csv"))))
    rows[2] = edit(rows[2])
    bad = tmp_path / "bad.csv"
    with bad.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    code, out, err = run("import", "--db", str(tmp_path / "m.sqlite"), str(bad))
    assert code == 1 and out == ""
    assert err.startswith(f"Error: {bad}:3") and reason in err and err.count("\n") == 1


def test_python_threatexchange_dataset_csv_imports(tmp_path, media):
    with serving(tmp_path / "server.sqlite", ROLES) as (server, keys):
        ok("submit", "--server", server.url, "--api-key", keys["alpha"], str(media / "chelsea.jpg"),
           str(media / "clip.mp4"), "--label", "glorification")
        tx = Tx(tmp_path / "partner-home", keys["partner"])
        tx.ok("config", "extensions", "add", EXTENSION)
        tx.ok("config", "collab", "edit", "hashdb", "--create", "gifct-hashdb", "--server", server.url)
        tx.ok("fetch")
        written = tx.ok("dataset", "-P", "--csv")
        docs, _ = Client(server.url, keys["partner"]).export(None, 1000)
    rows = list(csv.DictReader(io.StringIO(written)))
    # The image's PDQ and the derived PDQs pytx is offered beside it (all but corner-masked ones).
    offered = {d["hash"] for d in docs if d["signal"] == "pdq"} | {
        x["pdq"] for d in docs for x in d.get("derived") or [] if x["via"] != "masked"}
    assert {r["signal_str"] for r in rows if r["signal_type"] == "pdq"} == offered
    assert sorted(r["signal_type"] for r in rows if r["signal_type"] != "pdq") == ["video_md5", "video_sha256"]
    dataset = tmp_path / "tx.csv"
    dataset.write_text(written, newline="")

    # Its tags are our labels here: no --label needed; pytx's PDQs carry no quality.
    db = tmp_path / "db.sqlite"
    summary = json.loads(ok("import", "--json", "--db", str(db), "--pdq-quality", "50", str(dataset)))
    assert summary == {"added": len(rows), "duplicates": 0, "skipped": 0}
    [near] = [json.loads(line) for line in ok("lookup", "--json", "--db", str(db),
                                               str(media / "chelsea_jpeg30.jpg")).splitlines()]
    assert near["matched"] and near["matches"][0]["labels"] == ["glorification"]
    data = (media / "clip.mp4").read_bytes()
    assert sorted(line for line in ok("export", "--db", str(db), "--format", "te").splitlines()
                  if line.startswith("video_")) == [
        f"video_md5 {hashlib.md5(data).hexdigest()}", f"video_sha256 {hashlib.sha256(data).hexdigest()}"]

    # A row pytx holds to be a false positive is not shared; tags that are not labels need --label.
    other = [{**rows[0], "category": "NEGATIVE_CLASS"}, {**rows[1], "tags": "media_type_video"}]
    mixed = tmp_path / "mixed.csv"
    with mixed.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(other)
    code, _, err = run("import", "--db", str(tmp_path / "m.sqlite"), "--pdq-quality", "50", str(mixed))
    assert code == 1 and err.startswith(f"Error: {mixed}:3: no label") and err.count("\n") == 1
    summary = json.loads(ok("import", "--json", "--db", str(tmp_path / "m.sqlite"), "--pdq-quality", "50",
                            "--label", "attacker_manifesto", str(mixed)))
    assert summary == {"added": 1, "duplicates": 0, "skipped": 1, "notes": [
        "1 NEGATIVE_CLASS row skipped: pytx holds such a signal to be a false positive"]}
    # A malformed row: its line, one line.
    broken = tmp_path / "broken.csv"
    broken.write_text("signal_type,signal_str,collab,category,tags\npdq,zz,c,POSITIVE_CLASS,glorification\n")
    code, _, err = run("import", "--db", str(tmp_path / "b.sqlite"), str(broken))
    assert code == 1 and err.startswith(f"Error: {broken}:2: ") and err.count("\n") == 1


def test_a_disputed_row_of_a_pytx_dataset_is_skipped_and_noted_not_shared_active(tmp_path):
    # pytx's DISPUTED (some opinions positive, some negative) was imported as an active record,
    # matched as confirmed. A record here is disputed only by its members' votes, so it is skipped.
    a, b, c = "2d6f1af3" * 8, "5feb7321" * 8, "f8f8f0ce" * 8
    dataset = tmp_path / "tx.csv"
    dataset.write_text("signal_type,signal_str,collab,category,tags\n"
                       f"pdq,{a},c,DISPUTED,glorification\n"
                       f"pdq,{b},c,DISPUTED,glorification\n"
                       f"pdq,{c},c,POSITIVE_CLASS,glorification\n")
    db = tmp_path / "db.sqlite"
    summary = json.loads(ok("import", "--json", "--db", str(db), "--pdq-quality", "50", str(dataset)))
    assert summary == {"added": 1, "duplicates": 0, "skipped": 2, "notes": [
        "2 DISPUTED rows skipped: the collaboration's opinions of such a signal disagree; a record here is "
        "disputed only by its members' votes, so it is not shared as if confirmed"]}
    assert [(e["hash"], e["status"]) for e in map(json.loads, ok("export", "--db", str(db)).splitlines())] == [
        (c, "active")]
    text = ok("import", "--db", str(tmp_path / "text.sqlite"), "--pdq-quality", "50", str(dataset))
    assert text.startswith("added: 1, duplicates: 0, skipped: 2 (note: 2 DISPUTED rows skipped: ")


def test_only_positive_rows_of_a_pytx_dataset_are_shared(tmp_path):
    # An INVESTIGATION_SEED row (pytx: "indirect indicator, requires verifying") was imported
    # as an active record, matched as confirmed content; so would any category pytx never writes.
    seed, odd, blank, positive = "2d6f1af3" * 8, "5feb7321" * 8, "0f0f0f0e" * 8, "f8f8f0ce" * 8
    dataset = tmp_path / "tx.csv"
    dataset.write_text("signal_type,signal_str,collab,category,tags\n"
                       f"pdq,{seed},c,INVESTIGATION_SEED,glorification\n"
                       f"pdq,{odd},c,MAYBE,glorification\n"
                       f"pdq,{blank},c,,glorification\n"
                       f"pdq,{positive},c,POSITIVE_CLASS,glorification\n")
    db = tmp_path / "db.sqlite"
    summary = json.loads(ok("import", "--json", "--db", str(db), "--pdq-quality", "50", str(dataset)))
    assert summary["added"] == 1 and summary["skipped"] == 3
    assert summary["notes"] == [
        "1 (no category) row skipped: not an opinion pytx writes; only POSITIVE_CLASS rows are shared",
        "1 INVESTIGATION_SEED row skipped: pytx holds such a signal to be an indirect indicator that needs "
        "verifying; a record here is matched as confirmed content",
        "1 MAYBE row skipped: not an opinion pytx writes; only POSITIVE_CLASS rows are shared"]
    assert [e["hash"] for e in map(json.loads, ok("export", "--db", str(db)).splitlines())] == [positive]


@pytest.mark.parametrize("fmt,name", [("jsonl", "feed.jsonl"), ("csv", "feed.csv")])
def test_an_export_saved_with_a_byte_order_mark_imports_as_without(source, tmp_path, fmt, name):
    # A Windows editor's save puts a UTF-8 byte-order mark first; the JSONL feed was then
    # refused ("no hashes in this line") while CSV and hash files were read.
    plain, marked = tmp_path / name, tmp_path / f"bom-{name}"
    plain.write_text(ok("export", "--db", str(source), "--format", fmt))
    marked.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())
    a, b = tmp_path / "a.sqlite", tmp_path / "b.sqlite"
    assert json.loads(ok("import", "--json", "--db", str(a), str(plain))) == \
        json.loads(ok("import", "--json", "--db", str(b), str(marked)))
    assert feed(a) == feed(b)


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_an_export_refuses_the_options_it_would_ignore(source, tmp_path, fmt):
    # `import --label L export.jsonl` imported the source's labels and dropped L without a word:
    # a mirror keeps what its source says (and takes its later label changes), so L is refused.
    export = tmp_path / f"feed.{fmt}"
    export.write_text(ok("export", "--db", str(source), "--format", fmt))
    mirror = tmp_path / "mirror.sqlite"
    for options, said in ((["--label", "graphic_violence"], "--label applies"),
                          (["--pdq-quality", "50"], "--pdq-quality applies"),
                          (["--label", "graphic_violence", "--pdq-quality", "50"], "--label and --pdq-quality apply")):
        code, out, err = run("import", "--db", str(mirror), *options, str(export))
        assert code == 1 and out == "" and err.count("\n") == 1, err
        assert err.startswith(f"Error: {export}: a hashdb export keeps the labels") and said in err, err
        assert not mirror.exists()  # nothing imported, no database made
    assert json.loads(ok("import", "--json", "--db", str(mirror), str(export)))["added"] > 0
    # The other way round: --source names an export's origin, not ThreatExchange hashes'.
    te = tmp_path / "te.txt"
    te.write_text(f"pdq {'ab' * 32}\n")
    code, _, err = run("import", "--db", str(tmp_path / "te.sqlite"), "--label", "glorification",
                       "--source", "https://hashdb.example.org", str(te))
    assert code == 1 and "--source names where a hashdb export came from" in err and err.count("\n") == 1
