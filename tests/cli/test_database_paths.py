"""What the CLI says when --db names something that cannot be a database, or a file stands
where its index folder goes: one line and a non-zero exit, never a traceback; and where
`hashdb demo` finds its media."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from hashdb.cli import cli
from hashdb.cli.demo import default_media_dir
from support import run_cli

MEDIA = Path(__file__).resolve().parents[2] / "fixtures" / "media"


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.mark.parametrize("make", ["missing folder", "a JPEG", "a folder"])
def test_a_path_that_cannot_be_a_database_is_one_line(tmp_path, make):
    if make == "missing folder":
        target = tmp_path / "no" / "such" / "db.sqlite"
    elif make == "a JPEG":
        target = tmp_path / "photo.sqlite"
        target.write_bytes((MEDIA / "coffee.jpg").read_bytes())
    else:
        target = tmp_path / "folder.sqlite"
        target.mkdir()
    result = invoke("keys", "create", "--org", "acme", "--role", "admin", "--db", str(target))
    assert result.exit_code == 1
    message = result.stderr.strip()
    assert message.startswith("Error: cannot open the database") and "\n" not in message


def test_demo_finds_the_fixtures_from_any_directory(tmp_path):
    # Run in another working directory, so the fallback beside the package is what answers.
    code = "from hashdb.cli.demo import default_media_dir; print(default_media_dir())"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert Path(out.stdout.strip()) == MEDIA
    assert default_media_dir().is_dir()


def _files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


@pytest.mark.parametrize("args", [
    ["submit", "{bad}", "--label", "glorification"],
    ["submit", str(MEDIA / "coffee.jpg"), "--label", "no_such_label"],
    ["submit", str(MEDIA / "astronaut_corrupt.jpg"), "--label", "glorification"],
    ["keys", "create", "--org", "bad\nname", "--role", "admin"],
], ids=["not media", "unknown label", "undecodable image", "bad organisation"])
def test_a_refused_command_leaves_no_new_database_behind(tmp_path, args):
    bad = tmp_path / "notes.txt"
    bad.write_text("not media\n")
    work = tmp_path / "work"
    work.mkdir()
    db = work / "new.sqlite"
    result = invoke(*[a.replace("{bad}", str(bad)) for a in args], "--db", str(db))
    assert result.exit_code == 1 and result.stderr.startswith("Error: ")
    assert _files(work) == set()


def test_a_refused_command_leaves_an_existing_database_as_it_was(tmp_path):
    db = tmp_path / "db.sqlite"
    assert invoke("submit", str(MEDIA / "coffee.jpg"), "--label", "glorification", "--db", str(db)).exit_code == 0
    before = _files(tmp_path)
    result = invoke("submit", str(MEDIA / "astronaut.jpg"), "--label", "no_such_label", "--db", str(db))
    assert result.exit_code == 1
    assert _files(tmp_path) == before
    assert invoke("lookup", str(MEDIA / "coffee.jpg"), "--json", "--db", str(db)).output.count('"matched": true') == 1


@pytest.mark.parametrize("command", [["lookup", str(MEDIA / "coffee.jpg")], ["lookup", "md5:" + "0" * 32],
                                     ["index", "rebuild"]], ids=["file lookup", "hash lookup", "index rebuild"])
def test_a_file_where_the_index_folder_goes_is_one_line_saying_what_to_do(tmp_path, command):
    # mkdir's own words were all it said: "db.sqlite.index: File exists".
    db = tmp_path / "db.sqlite"
    assert run_cli("submit", str(MEDIA / "coffee.jpg"), "--label", "glorification", "--db", str(db)).exit_code == 0
    blocking = tmp_path / "db.sqlite.index"
    shutil.rmtree(blocking, ignore_errors=True)
    blocking.write_text("not a folder\n")
    result = run_cli(*command, "--db", str(db))
    assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
    assert result.output == (f"Error: {blocking} is a file, where hashdb keeps the database's index snapshots "
                             "(a folder): move it away\n")
    assert blocking.read_text() == "not a folder\n"
    blocking.unlink()
    assert run_cli(*command, "--db", str(db)).exit_code == 0


def test_a_folder_is_submitted_with_its_readme_noted_and_left_out(tmp_path):
    folder = tmp_path / "removed"
    folder.mkdir()
    (folder / "coffee.jpg").write_bytes((MEDIA / "coffee.jpg").read_bytes())
    (folder / "README.md").write_text("# what was removed, and why\n")
    db = tmp_path / "db.sqlite"
    result = invoke("submit", str(folder), "--label", "glorification", "--db", str(db), "--json")
    assert result.exit_code == 0, result.stderr
    assert [json.loads(line)["input"] for line in result.stdout.splitlines()] == [str(folder / "coffee.jpg")]
    assert result.stderr.strip() == f"{folder / 'README.md'}: skipped, a text file, neither media nor a hash file"
    # Named on the command line, the same file is an error: the user meant it.
    named = invoke("hash", str(folder / "README.md"))
    assert named.exit_code == 1 and "unsupported format: text, not media" in named.stdout


def test_binary_files_in_a_folder_are_still_errors(tmp_path):
    folder = tmp_path / "removed"
    folder.mkdir()
    (folder / "coffee.jpg").write_bytes((MEDIA / "coffee.jpg").read_bytes())
    (folder / "clip.zip").write_bytes(b"PK\x03\x04" + bytes(range(256)))
    result = invoke("submit", str(folder), "--label", "glorification", "--db", str(tmp_path / "db.sqlite"))
    assert result.exit_code == 1 and "clip.zip: unsupported format" in result.stderr


@pytest.mark.parametrize("command", ["submit", "lookup", "hash"])
def test_an_empty_argument_is_an_error_not_the_working_directory(tmp_path, monkeypatch, command):
    # "$FILE" with FILE unset: walking "." would share whatever the working directory holds.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "coffee.jpg").write_bytes((MEDIA / "coffee.jpg").read_bytes())
    db = tmp_path / "db.sqlite"
    invoke("submit", str(MEDIA / "rocket.jpg"), "--label", "glorification", "--db", str(db))
    extra = {"submit": ["--label", "glorification", "--db", str(db)], "lookup": ["--db", str(db)], "hash": []}
    result = invoke(command, "", *extra[command])
    assert result.exit_code == 1
    assert 'empty argument' in (result.stderr + result.stdout) and '""' in (result.stderr + result.stdout)
    assert "coffee.jpg" not in result.stdout


def test_os_clutter_in_a_folder_is_skipped_and_binary_is_not_called_text(tmp_path):
    folder = tmp_path / "removed"
    folder.mkdir()
    (folder / "coffee.jpg").write_bytes((MEDIA / "coffee.jpg").read_bytes())
    (folder / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(64))
    (folder / "desktop.ini").write_text("[.ShellClassInfo]\n")
    result = invoke("hash", "--json", str(folder))
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["path"] for line in result.stdout.splitlines()] == [str(folder / "coffee.jpg")]
    named = invoke("hash", str(folder / "Thumbs.db"))
    assert named.exit_code == 1 and "OLE compound file" in named.stdout and "text" not in named.stdout
    (folder / "blob.bin").write_bytes(b"junk\x01\x02binary")
    assert "unrecognised bytes" in invoke("hash", str(folder / "blob.bin")).stdout


def test_importing_an_empty_file_is_an_error_and_creates_nothing(tmp_path):
    empty = tmp_path / "feed.jsonl"
    empty.write_bytes(b"")
    work = tmp_path / "work"
    work.mkdir()
    result = invoke("import", str(empty), "--db", str(work / "mirror.sqlite"))
    assert result.exit_code == 1 and result.stderr.strip() == f"Error: {empty}: empty file (0 bytes)"
    assert _files(work) == set()


@pytest.mark.parametrize(("command", "says"), [
    (["quarantine", "list"], "no records in quarantine"),
    (["safelist", "list"], "the safelist is empty"),
    (["incident", "list", "--open"], "no open incidents"),
    (["webhook", "list"], "no webhooks"),
    (["keys", "list"], "no keys (hashdb keys create makes one)"),
    (["audit", "list", "--after", "99"], "no audit entries after id 99"),
])
def test_an_empty_listing_says_so_on_stderr_and_leaves_stdout_empty(tmp_path, command, says):
    # From a new-user trial: an empty queue printed nothing at all.
    db = tmp_path / "db.sqlite"
    assert invoke("submit", "md5:" + "ab" * 16, "--label", "glorification", "--db", str(db)).exit_code == 0
    for json_flag in ([], ["--json"]):
        result = invoke(*command, "--db", str(db), *json_flag)
        assert result.exit_code == 0 and result.stdout == "" and result.stderr.strip() == says
