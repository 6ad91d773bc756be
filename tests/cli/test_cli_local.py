"""The CLI in local mode (--db), through click's runner: shapes and exit codes of PRODUCT.md."""

from __future__ import annotations

import csv
import io
import json
import random
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from hashdb.cli import cli
from support import flat_png, flip, random_pdq
from support import json_lines as lines


def all_commands(group: click.Group, prefix: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from all_commands(command, prefix + (name,))
        else:
            yield prefix + (name,)


@pytest.mark.parametrize("path", list(all_commands(cli)), ids=" ".join)
def test_every_command_has_help_with_an_example(run, path):
    result = run(*path, "--help")
    assert result.exit_code == 0
    assert "Example" in result.stdout, f"`hashdb {' '.join(path)} --help` shows no example"


def test_import_and_serve_help_name_keypoints_and_their_settings(run):
    # Words rejoined: click wraps the help to the terminal's width.
    imported = " ".join(run("import", "--help").stdout.split())
    assert '"keypoints"' in imported and "hashdb export --keypoints" in imported
    assert "HASHDB_KEYPOINTS=0" in imported
    served = " ".join(run("serve", "--help").stdout.split())
    assert "HASHDB_KEYPOINTS=0" in served and "HASHDB_SHARE_KEYPOINTS=1 hashdb serve" in served


def test_submit_then_lookup_by_hash_matches_with_distance(run):
    rng = random.Random(11)
    base = random_pdq(rng)
    submitted = run("submit", "--pdq-quality", "100", "--json", f"pdq:{base}", "--label", "glorification", "--ref", "case-1")
    assert submitted.exit_code == 0
    [doc] = lines(submitted)
    assert doc == {"input": f"pdq:{base}", "ids": [1], "status": "active", "duplicate": False}
    near = flip(base, 7, rng)
    looked = run("lookup", "--json", f"pdq:{near.upper()}", f"pdq:{random_pdq(rng)}")
    assert looked.exit_code == 0
    hit, miss = lines(looked)
    assert hit["input"] == f"pdq:{near.upper()}" and hit["matched"] is True
    assert [(m["id"], m["distance"], m["labels"], m["status"]) for m in hit["matches"]] == [
        (1, 7, ["glorification"], "active")]
    assert "hash" not in hit["matches"][0]  # a lookup never returns stored hash values
    assert miss["matched"] is False and miss["matches"] == []


def test_second_submit_is_a_duplicate(run):
    base = random_pdq(random.Random(12))
    run("submit", "--pdq-quality", "100", f"pdq:{base}", "--label", "glorification")
    [doc] = lines(run("submit", "--pdq-quality", "100", "--json", f"pdq:{base}", "--label", "glorification"))
    assert doc["duplicate"] is True and doc["ids"] == [1]


@pytest.mark.parametrize("bad", [
    "pdq:" + "a" * 63, "pdq:" + "a" * 65, "pdq:" + "a" * 63 + "\n", "pdq:" + "a" * 63 + "\u0663",
    "pdq:" + "a" * 63 + "\uff21", "nosuchfile.jpg",
])
def test_bad_hash_arguments_exit_non_zero_with_one_line_and_store_nothing(run, bad):
    good = random_pdq(random.Random(13))
    result = run("submit", "--pdq-quality", "100", f"pdq:{good}", bad, "--label", "glorification")
    assert result.exit_code != 0
    assert len(result.stderr.strip().splitlines()) == 1
    assert run("export").stdout == ""


def test_unknown_label_lists_the_valid_ones(run):
    result = run("submit", "--pdq-quality", "100", f"pdq:{random_pdq(random.Random(14))}", "--label", "bogus")
    assert result.exit_code == 1
    assert "glorification" in result.stderr and "bogus" in result.stderr


def test_hash_files_jsonl_and_threatexchange_lines(run, tmp_path):
    rng = random.Random(15)
    a, b = random_pdq(rng), random_pdq(rng)
    jsonl = tmp_path / "hashes.jsonl"
    jsonl.write_text(json.dumps({"path": "x.jpg", "media_type": "image", "pdq": {"hash": a, "quality": 90}}) + "\n")
    te = tmp_path / "te.txt"
    te.write_text(f"pdq {b}\n")
    # A ThreatExchange line carries no quality: refused until someone vouches for one.
    refused = run("submit", str(jsonl), str(te), "--label", "glorification")
    assert refused.exit_code == 1 and "pdq quality is required" in refused.stderr
    assert run("submit", str(jsonl), str(te), "--label", "glorification", "--pdq-quality", "50").exit_code == 0
    results = lines(run("lookup", "--json", str(jsonl), str(te)))
    assert [(r["input"], r["matched"]) for r in results] == [("x.jpg", True), (f"pdq {b}", True)]


def test_retract_stops_matching_and_leaves_a_tombstone(run):
    base = random_pdq(random.Random(16))
    run("submit", "--pdq-quality", "100", f"pdq:{base}", "--label", "glorification")
    # Found in trial: Python's int() read full-width digits, so "１" retracted record 1.
    refused = run("retract", "\uff11")
    assert refused.exit_code == 2 and "ASCII digits" in refused.output
    assert run("retract", "1", "--reason", "mistake").exit_code == 0
    [doc] = lines(run("lookup", "--json", f"pdq:{base}"))
    assert doc["matched"] is False
    feed = lines(run("export"))
    assert [(e["kind"], e["status"]) for e in feed] == [("add", "active"), ("retract", "retracted")]
    assert run("export", "--format", "te").stdout == ""


def test_export_cursor_gives_only_later_changes(run):
    rng = random.Random(17)
    run("submit", "--pdq-quality", "100", f"pdq:{random_pdq(rng)}", "--label", "glorification")
    first = run("export")
    cursor = first.stderr.strip().rsplit(" ", 1)[-1]
    run("submit", "--pdq-quality", "100", f"pdq:{random_pdq(rng)}", "--label", "graphic_violence")
    later = lines(run("export", "--since", cursor))
    assert [e["labels"] for e in later] == [["graphic_violence"]]
    assert run("export", "--since", "not-a-cursor").exit_code == 1


def test_csv_export_escapes_formula_cells(run):
    base = random_pdq(random.Random(18))
    run("incident", "open", "+1")  # a submission may only name an open incident
    run("submit", "--pdq-quality", "100", f"pdq:{base}", "--label", "glorification", "--ref", '=HYPERLINK("http://x")',
        "--incident", "+1")
    rows = list(csv.DictReader(io.StringIO(run("export", "--format", "csv").stdout)))
    assert rows[0]["hash"] == base
    assert rows[0]["incident"] == "'+1"


def test_export_then_import_into_a_mirror_matches_the_same(run, tmp_path):
    rng = random.Random(19)
    kept, gone = random_pdq(rng), random_pdq(rng)
    run("submit", "--pdq-quality", "100", f"pdq:{kept}", f"pdq:{gone}", "--label", "glorification")
    run("retract", "2")
    feed = tmp_path / "feed.jsonl"
    feed.write_text(run("export").stdout)
    mirror = str(tmp_path / "mirror.sqlite")
    assert run("import", "--db", mirror, str(feed)).exit_code == 0
    hit, miss = lines(run("lookup", "--db", mirror, "--json", f"pdq:{kept}", f"pdq:{gone}"))
    assert hit["matched"] and hit["matches"][0]["labels"] == ["glorification"]
    assert not miss["matched"]


def test_tighter_threshold_only(run):
    rng = random.Random(20)
    base = random_pdq(rng)
    run("submit", "--pdq-quality", "100", f"pdq:{base}", "--label", "glorification")
    near = flip(base, 20, rng)
    assert lines(run("lookup", "--json", f"pdq:{near}"))[0]["matched"]
    assert not lines(run("lookup", "--json", "--threshold", "pdq=10", f"pdq:{near}"))[0]["matched"]
    assert run("lookup", "--threshold", "pdq=40", f"pdq:{near}").exit_code == 1


def test_relabel_shows_in_the_feed(run):
    base = random_pdq(random.Random(21))
    run("submit", "--pdq-quality", "100", f"pdq:{base}", "--label", "glorification")
    [doc] = lines(run("relabel", "--json", "1", "--label", "attacker_manifesto"))
    assert doc["labels"] == ["attacker_manifesto"]
    assert [e["kind"] for e in lines(run("export"))] == ["add", "labels"]


def test_hash_of_a_folder_on_two_processes_keeps_order_and_reports_bad_files(run, media, tmp_path):
    folder = tmp_path / "uploads"
    folder.mkdir()
    names = ["astronaut.jpg", "camera.png", "chelsea_corrupt.jpg", "coffee.jpg", "rocket.jpg"]
    for index, name in enumerate(names):
        (folder / f"{index}-{name}").write_bytes((media / name).read_bytes())
    pooled = run("hash", "--json", "--jobs", "2", str(folder))
    alone = run("hash", "--json", "--jobs", "1", str(folder))
    assert pooled.exit_code == alone.exit_code == 1
    assert pooled.stdout == alone.stdout
    docs = lines(pooled)
    assert [Path(d["path"]).name for d in docs] == [f"{i}-{n}" for i, n in enumerate(names)]
    assert "error" in docs[2] and all("pdq" in d for i, d in enumerate(docs) if i != 2)


def test_a_hash_files_error_lines_keep_their_file_and_reason(run, media, tmp_path):
    # `hash --json` writes a file it could not hash as {"path", "error"}; read back, that line
    # said only "no hashes in this line", losing which file and why.
    folder = tmp_path / "dir"
    folder.mkdir()
    (folder / "a.jpg").write_bytes((media / "astronaut.jpg").read_bytes())
    (folder / "empty.jpg").touch()
    hashed = run("hash", "--for-lookup", "--json", str(folder))
    assert hashed.exit_code == 1
    queries = tmp_path / "q.jsonl"
    queries.write_text(hashed.stdout)
    result = run("lookup", str(queries))
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"{folder / 'a.jpg'}: no match",
        f"{queries}:2: error: {folder / 'empty.jpg'} could not be hashed: empty file (0 bytes)",
    ]
    # submit refuses the batch as it refuses a folder holding the file: nothing is stored.
    submitted = run("submit", str(queries), "--label", "glorification")
    assert submitted.exit_code == 1
    assert f"{queries}:2: {folder / 'empty.jpg'} could not be hashed: empty file (0 bytes)" in submitted.output
    assert lines(run("export")) == []


def test_a_refused_submit_says_nothing_was_submitted(run, media, tmp_path):
    # Only the refusal was printed, after the whole folder was hashed: were the other files stored?
    folder = tmp_path / "removed"
    folder.mkdir()
    (folder / "a.jpg").write_bytes((media / "astronaut.jpg").read_bytes())
    (folder / "b.png").write_bytes(flat_png(7000, 7000))
    (folder / "c.jpg").write_bytes((media / "chelsea.jpg").read_bytes())
    for args in ([str(folder)], [f"pdq:{random_pdq(random.Random(5))}", str(media / "coffee.jpg")]):
        result = run("submit", "--json", *args, "--label", "glorification")
        assert result.exit_code == 1 and result.stdout == ""
        [line] = result.output.splitlines()
        assert line.endswith("; nothing was submitted (a batch is refused whole)"), line
    assert "b.png: image is 7000x7000" in run("submit", str(folder), "--label", "glorification").output
    assert lines(run("export")) == []


def test_lookup_of_a_folder_in_batches_answers_as_one_lookup_of_it_all(run, media, tmp_path, monkeypatch):
    # Files are looked up 16 at a time while the workers hash the rest: the same lines, in
    # the same order, as one lookup of every file once all are hashed (the batch as large as
    # the folder), on two processes or one. 21 images and a broken file: two batches, the second short.
    from hashdb.cli import sharing

    names = sorted(p.name for p in media.iterdir() if p.suffix in (".jpg", ".png") and "corrupt" not in p.name
                   and not p.name.startswith("camera_16bit"))[:21]
    folder = tmp_path / "uploads"
    folder.mkdir()
    for index, name in enumerate(names):
        (folder / f"{index:02d}-{name}").write_bytes((media / name).read_bytes())
    (folder / "07-broken.jpg").write_bytes((media / "coffee_corrupt.jpg").read_bytes())
    submitted = run("submit", str(media / "astronaut.jpg"), str(media / "chelsea.jpg"), "--label", "glorification")
    assert submitted.exit_code == 0
    batched = run("lookup", "--json", "--jobs", "2", str(folder))
    alone = run("lookup", "--json", "--jobs", "1", str(folder))
    monkeypatch.setattr(sharing, "_LOOKUP_BATCH", 1000)
    at_once = run("lookup", "--json", "--jobs", "2", str(folder))
    assert batched.exit_code == alone.exit_code == at_once.exit_code == 1  # the broken file
    assert batched.stdout == alone.stdout == at_once.stdout
    docs = lines(batched)
    assert len(docs) == 22 and "error" in docs[7] and docs[7]["input"].endswith("07-broken.jpg")
    matched = {Path(d["input"]).name.split("-", 1)[1] for d in docs if d.get("matched")}
    assert {"astronaut.jpg", "astronaut_jpeg30.jpg", "chelsea.jpg", "chelsea_hflip.jpg",
            "chelsea_jpeg30.jpg"} <= matched


def test_lookup_with_a_damaged_database_is_one_line_and_stops_the_workers(media, tmp_path):
    # The database opens while the workers hash: its error still ends the command at once.
    import multiprocessing

    folder = tmp_path / "uploads"
    folder.mkdir()
    for index in range(40):
        (folder / f"{index:02d}.jpg").write_bytes((media / "astronaut.jpg").read_bytes())
    damaged = tmp_path / "damaged.sqlite"
    damaged.write_bytes(b"not a database, " * 1000)
    result = CliRunner().invoke(cli, ["lookup", "--jobs", "2", "--db", str(damaged), str(folder)])
    assert result.exit_code == 1 and "cannot open the database" in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert multiprocessing.active_children() == []
    missing = CliRunner().invoke(cli, ["lookup", "--jobs", "2", "--db", str(tmp_path / "none.sqlite"), str(folder)])
    assert missing.exit_code == 1 and "no database at" in missing.output


def test_only_digests_asked_for_decode_nothing(media, tmp_path):
    # `--signals md5` of an image over the decode limits was refused (no md5 either), and of a
    # video it sampled every frame: the digests of the file's bytes need neither.
    import hashlib

    big = tmp_path / "flat.png"
    big.write_bytes(flat_png(7000, 7000))
    clip = media / "clip.mp4"
    result = CliRunner().invoke(cli, ["hash", "--json", "--signals", "md5,sha256", str(big), str(clip)])
    assert result.exit_code == 0, result.output
    image, video = lines(result)
    assert image == {"path": str(big), "media_type": "image", "md5": hashlib.md5(big.read_bytes()).hexdigest(),
                     "sha256": hashlib.sha256(big.read_bytes()).hexdigest()}
    assert video == {"path": str(clip), "media_type": "video", "md5": hashlib.md5(clip.read_bytes()).hexdigest(),
                     "sha256": hashlib.sha256(clip.read_bytes()).hexdigest()}
    refused = CliRunner().invoke(cli, ["hash", "--json", str(big)])
    assert refused.exit_code == 1 and "decode-memory limit" in refused.output


def test_text_lookup_says_a_pdq_is_low_quality_as_json_does(run, tmp_path):
    from PIL import Image

    flat = tmp_path / "flat.png"
    Image.new("RGB", (300, 300), (200, 200, 200)).save(flat)
    [answer] = lines(run("lookup", "--json", str(flat)))
    assert answer["flags"] == ["low_quality"]
    assert run("lookup", str(flat)).stdout == f"{flat}: no match (low-quality PDQ)\n"


def test_a_variant_with_quality_is_no_low_quality_lookup(run, media):
    # A 16-bit PNG: its own PDQ (pytx's 8-bit reading, near white) has quality 3, the stored
    # variant (scaled to 8 bits) 100; a lookup matching through the variant is not flagged.
    sixteen = media / "camera_16bit.png"
    [hashed] = lines(run("hash", "--json", str(sixteen)))
    assert hashed["pdq"]["quality"] < 50 <= max(v["quality"] for v in hashed["pdq_variants"])
    assert run("submit", "--label", "glorification", str(sixteen)).exit_code == 0
    [answer] = lines(run("lookup", "--json", str(sixteen)))
    assert answer["matched"] and "pdq" in {m["signal"] for m in answer["matches"]}
    assert "flags" not in answer or "low_quality" not in answer["flags"]


def test_an_empty_signals_list_is_refused_not_taken_for_the_defaults(media):
    for empty in ("", " , "):
        result = CliRunner().invoke(cli, ["hash", "--signals", empty, str(media / "astronaut.jpg")])
        assert result.exit_code == 2 and result.output.count("\n") == 1
        assert "--signals is empty" in result.output


def test_lookup_of_a_huge_flat_png_is_a_one_line_refusal(run, tmp_path):
    big = tmp_path / "flat.png"
    big.write_bytes(flat_png(7000, 7000))
    result = CliRunner().invoke(cli, ["lookup", str(big)])
    assert result.exit_code == 1
    assert "7000x7000" in result.output and "decode-memory limit" in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output


@pytest.mark.parametrize("command", [["lookup", "md5:" + "0" * 32], ["export"], ["quarantine", "list"], ["audit", "list"]])
def test_a_mistyped_db_is_refused_not_created(tmp_path, command):
    # Answering "no match" from a new empty file would look like a checked upload.
    missing = tmp_path / "tyop.sqlite"
    result = CliRunner().invoke(cli, [*command, "--db", str(missing)])
    assert result.exit_code == 1, result.output
    assert result.output.count("\n") == 1 and "no database at" in result.output and str(missing) in result.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", [["lookup", "md5:" + "0" * 32], ["export"], ["index", "rebuild"], ["keys", "list"]])
def test_an_empty_db_file_is_refused_not_made_a_database(tmp_path, command):
    # SQLite opens a zero-byte file as an empty database: a lookup answered "no match" and left
    # the file a database, with a .secret and an .index beside it.
    empty = tmp_path / "z.sqlite"
    empty.touch()
    result = CliRunner().invoke(cli, [*command, "--db", str(empty)])
    assert result.exit_code == 1, result.output
    assert result.output.count("\n") == 1 and f"no database at {empty}: the file is empty" in result.output
    assert list(tmp_path.iterdir()) == [empty] and empty.stat().st_size == 0


@pytest.mark.parametrize("command", [["lookup", "md5:" + "0" * 32], ["export"], ["index", "rebuild"],
                                     ["keys", "create", "--org", "ops", "--role", "admin"],
                                     ["submit", "--label", "glorification", "md5:" + "1" * 32]])
def test_another_programs_sqlite_file_is_refused_and_left_as_it_was(tmp_path, command):
    # A --db naming some other SQLite file got hashdb's twenty tables, WAL mode and an .index
    # folder written into and beside it, by a lookup as much as by a submit.
    import sqlite3
    from contextlib import closing

    other = tmp_path / "notes.sqlite"
    with closing(sqlite3.connect(other)) as connection:
        connection.execute("CREATE TABLE notes (body TEXT)")
        connection.execute("INSERT INTO notes VALUES ('keep me')")
        connection.commit()
    before = other.read_bytes()
    result = CliRunner().invoke(cli, [*command, "--db", str(other)], env={"HASHDB_SERVER": None})
    assert result.exit_code == 1, result.output
    assert result.output.count("\n") == 1 and "another program's SQLite database (tables: notes)" in result.output
    assert list(tmp_path.iterdir()) == [other] and other.read_bytes() == before


def test_a_hashdb_database_with_a_table_of_the_operators_own_still_opens(tmp_path):
    import sqlite3
    from contextlib import closing

    db = tmp_path / "db.sqlite"
    made = CliRunner().invoke(cli, ["keys", "create", "--db", str(db), "--org", "ops", "--role", "admin"],
                              env={"HASHDB_SERVER": None})
    assert made.exit_code == 0, made.output
    with closing(sqlite3.connect(db)) as connection:
        connection.execute("CREATE TABLE operator_notes (body TEXT)")
        connection.commit()
    listed = CliRunner().invoke(cli, ["keys", "list", "--db", str(db)], env={"HASHDB_SERVER": None})
    assert listed.exit_code == 0 and "ops" in listed.output, listed.output


def test_commands_that_make_a_database_make_it_in_an_empty_file(tmp_path):
    empty = tmp_path / "z.sqlite"
    empty.touch()
    result = CliRunner().invoke(cli, ["keys", "create", "--db", str(empty), "--org", "ops", "--role", "admin"],
                                env={"HASHDB_SERVER": None})
    assert result.exit_code == 0, result.output
    assert f"new database at {empty}" in result.output
    listed = CliRunner().invoke(cli, ["keys", "list", "--db", str(empty)], env={"HASHDB_SERVER": None})
    assert listed.exit_code == 0 and "ops" in listed.output


def test_a_sixteen_bit_copy_matches_its_eight_bit_original(run):
    # pytx clips 16-bit values at 255 (our canonical PDQ does too, and is then near-white,
    # quality 3); the copy scaled back to 8 bits is what a viewer sees and must still match.
    media = Path(__file__).resolve().parents[2] / "fixtures" / "media"
    assert run("submit", str(media / "camera.png"), "--label", "glorification").exit_code == 0
    answer = lines(run("lookup", "--json", str(media / "camera_16bit.png")))[0]
    assert answer["matched"] and answer["matches"][0]["distance"] <= 31


def test_hashing_a_file_never_loads_faiss(tmp_path: Path) -> None:
    # Start-up is part of every `hashdb hash` a user runs; FAISS (and its OpenMP runtime) is
    # for searching an index, which hashing never does.
    import subprocess
    import sys

    image = tmp_path / "flat.png"
    image.write_bytes(flat_png(64, 48))
    code = ("import sys; from hashdb.cli import cli\n"
            "try:\n    cli(['hash', '--json', sys.argv[1]])\nexcept SystemExit as exit:\n    assert not exit.code, exit.code\n"
            "assert 'faiss' not in sys.modules, 'faiss was imported'")
    done = subprocess.run([sys.executable, "-c", code, str(image)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["media_type"] == "image"


def test_a_video_match_in_text_says_the_shares_of_frames_that_decide_it(run):
    media = Path(__file__).resolve().parents[2] / "fixtures" / "media"
    assert run("submit", str(media / "clip.mp4"), "--label", "glorification").exit_code == 0
    text = run("lookup", str(media / "clip_reencoded.mp4")).stdout
    [answer] = lines(run("lookup", "--json", str(media / "clip_reencoded.mp4")))
    [video] = [m["video"] for m in answer["matches"] if m["signal"] == "vpdq"]
    assert f"{video['query_pct']:g} % of this video's frames, {video['stored_pct']:g} % of the stored one's" in text


def test_hashes_made_for_a_lookup_find_what_the_file_finds_and_are_never_stored(run, media, tmp_path):
    # A mirrored copy: its hash file finds the original only with the turned PDQs a lookup
    # of the file itself computes (--for-lookup); such a line is a query, never a submission.
    submitted = run("submit", "--json", str(media / "rocket.jpg"), "--label", "glorification")
    assert submitted.exit_code == 0
    [stored] = lines(submitted)
    mirrored = str(media / "rocket_hflip.jpg")
    for flags, found in (((), False), (("--for-lookup",), True)):
        hashed = run("hash", "--json", *flags, mirrored)
        assert hashed.exit_code == 0
        [doc] = lines(hashed)
        assert ("pdq_dihedral" in doc) is found
        queries = tmp_path / f"queries{len(flags)}.jsonl"
        queries.write_text(hashed.stdout)
        [answer] = lines(run("lookup", "--json", str(queries)))
        assert answer["matched"] is found
    assert [answer["matched"]] == [m["matched"] for m in lines(run("lookup", "--json", mirrored))]
    refused = run("submit", str(queries), "--label", "glorification")
    assert refused.exit_code != 0 and "--for-lookup" in refused.output
    assert len(refused.output.strip().splitlines()) == 1 and "Traceback" not in refused.output
    [again] = lines(run("lookup", "--json", str(media / "rocket.jpg")))
    assert {m["id"] for m in again["matches"]} <= set(stored["ids"])  # nothing new was stored


def test_a_folders_lookup_writes_each_batch_as_it_is_looked_up(media, tmp_path, run, monkeypatch):
    # Not all at the end: a folder of thousands printed nothing until its last file (in trial).
    from hashdb.cli import sharing

    folder = tmp_path / "uploads"
    folder.mkdir()
    for index in range(40):
        (folder / f"{index:02d}.jpg").write_bytes((media / "astronaut.jpg").read_bytes())
    (folder / "05-broken.jpg").write_bytes((media / "coffee_corrupt.jpg").read_bytes())
    assert run("submit", str(media / "astronaut.jpg"), "--label", "glorification").exit_code == 0
    written: list[str] = []
    before_each_batch: list[int] = []
    emit, looked_up = sharing.emit, sharing._looked_up

    def noting_emit(as_json, doc, text):
        written.append(doc.get("input", ""))
        emit(as_json, doc, text)

    def noting_lookup(*args, **kwargs):
        before_each_batch.append(len(written))
        return looked_up(*args, **kwargs)

    monkeypatch.setattr(sharing, "emit", noting_emit)
    monkeypatch.setattr(sharing, "_looked_up", noting_lookup)
    result = run("lookup", "--json", "--jobs", "1", str(folder))
    assert result.exit_code == 1  # the broken file
    # 40 images in batches of 16: the first batch's 16 answers and the broken file among them
    # were written before the second batch was looked up, 33 before the third.
    assert before_each_batch == [0, 17, 33]
    assert [Path(name).name for name in written] == sorted(p.name for p in folder.iterdir())
