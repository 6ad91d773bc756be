"""The smaller things a new user trips over: a batch lookup that stops at one bad file, errors
that say the file name twice, incidents closed by id only, two spellings of one command group,
a safelist that can only grow, an access log on the wrong stream, docs and spec that disagree."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from hashdb.cli import cli
from support import empty_database, random_pdq

ROOT = Path(__file__).resolve().parents[2]
MEDIA = ROOT / "fixtures" / "media"


def run(db: Path, *args: str):
    if not db.exists():
        empty_database(db)
    result = CliRunner().invoke(cli, list(args), env={"HASHDB_DB": str(db), "HASHDB_SERVER": None})
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def test_a_corrupt_file_does_not_stop_a_lookup_batch(tmp_path):
    # Issue item 21: one corrupt file aborted the whole batch (hash carried on).
    db = tmp_path / "db.sqlite"
    assert run(db, "submit", str(MEDIA / "chelsea.jpg"), "--label", "glorification").exit_code == 0
    corrupt = MEDIA / "coffee_corrupt.jpg"
    result = run(db, "lookup", "--json", str(corrupt), str(MEDIA / "chelsea_jpeg30.jpg"), "md5:" + "ab" * 16)
    assert result.exit_code == 1
    bad, near, absent = (json.loads(line) for line in result.stdout.splitlines())
    assert bad["input"] == str(corrupt) and bad["error"] and "matched" not in bad
    assert near["matched"] is True and absent["matched"] is False
    text = run(db, "lookup", str(corrupt), str(MEDIA / "chelsea_jpeg30.jpg"))
    assert text.exit_code == 1
    first, second = text.stdout.splitlines()
    assert first.startswith(f"{corrupt}: ") and first.count(str(corrupt)) == 1
    assert "MATCH" in second


@pytest.mark.parametrize("command", [["hash"], ["lookup"], ["submit", "--label", "glorification"]])
def test_an_error_names_the_file_once(tmp_path, command):
    # Issue item 21: "missing.jpg: missing.jpg: no such file ...".
    missing = str(tmp_path / "missing.jpg")
    result = run(tmp_path / "db.sqlite", *command, missing)
    assert result.exit_code == 1
    said = result.stdout + result.stderr
    assert said.count(missing) == 1, said
    assert "no such file" in said


def test_an_unknown_signal_name_lists_the_signals(tmp_path):
    # `photodna:...` or a typo read as a missing file, with no word of which names work.
    result = run(tmp_path / "db.sqlite", "lookup", "photodna:00ff", str(tmp_path / "missing:x"))
    said = result.stdout + result.stderr
    assert result.exit_code == 1
    unknown, missing = said.strip().splitlines()
    assert "unknown signal 'photodna'" in unknown and "pdq, phash" in unknown
    assert "unknown signal" not in missing and "no such file" in missing


def test_a_bad_line_of_a_hash_file_is_named_once(tmp_path):
    hashes = tmp_path / "te.txt"
    hashes.write_text("pdq 1234\n")
    result = run(tmp_path / "db.sqlite", "lookup", str(hashes))
    said = result.stdout + result.stderr
    assert result.exit_code == 1 and said.count(f"{hashes}:1") == 1, said


def test_an_incident_is_closed_by_name_or_id(tmp_path):
    # Issue item 21: `incident close` took only an id.
    db = tmp_path / "db.sqlite"
    run(db, "incident", "open", "attack-1")
    run(db, "incident", "open", "attack-2")
    by_name = run(db, "incident", "close", "--json", "attack-1")
    assert by_name.exit_code == 0 and json.loads(by_name.stdout)["status"] == "closed"
    by_id = run(db, "incident", "close", "--json", "2")
    assert by_id.exit_code == 0 and json.loads(by_id.stdout)["name"] == "attack-2"
    missing = run(db, "incident", "close", "attack-9")
    assert missing.exit_code == 1 and "attack-9" in missing.stderr


def test_one_webhook_group_is_listed(tmp_path):
    # Issue item 21: `webhook` and `webhooks` were both listed.
    listed = run(tmp_path / "db.sqlite", "--help").stdout
    names = re.findall(r"^  (\S+)", listed, flags=re.M)
    assert "webhook" in names and "webhooks" not in names
    # The plural still works for scripts written against it, with the same commands.
    assert run(tmp_path / "db.sqlite", "webhooks", "deliver", "--json").exit_code == 0
    assert "log" in run(tmp_path / "db.sqlite", "webhooks", "--help").stdout


def test_the_safelist_can_be_listed_and_entries_removed(tmp_path):
    # Issue item 21: the safelist had `add` only.
    db = tmp_path / "db.sqlite"
    benign, other = random_pdq(random.Random(211)), random_pdq(random.Random(212))
    assert run(db, "safelist", "add", f"pdq:{benign}", f"pdq:{other}", "--note", "press photo").exit_code == 0
    listed = [json.loads(line) for line in run(db, "safelist", "list", "--json").stdout.splitlines()]
    assert [(e["signal"], e["hash"], e["note"]) for e in listed] == [("pdq", benign, "press photo"),
                                                                     ("pdq", other, "press photo")]
    # A full page says how to read on (found in trial: 100 of 2,408 shown, nothing said more).
    page = run(db, "safelist", "list", "--limit", "1")
    assert page.stdout.count("\n") == 1 and f"--after {listed[0]['id']}" in page.stderr
    assert "--after" not in run(db, "safelist", "list", "--limit", "3").stderr
    removed = run(db, "safelist", "remove", "--json", str(listed[0]["id"]), "--note", "not benign after all")
    assert removed.exit_code == 0 and json.loads(removed.stdout) == {"removed": [listed[0]["id"]]}
    assert [e["hash"] for e in map(json.loads, run(db, "safelist", "list", "--json").stdout.splitlines())] == [other]
    # No longer held: a submission of it is active; the other entry still holds.
    [free, held] = map(json.loads, run(db, "submit", "--json", "--pdq-quality", "100", f"pdq:{benign}",
                                       f"pdq:{other}", "--label", "glorification").stdout.splitlines())
    assert (free["status"], held["status"]) == ("active", "quarantined")
    again = run(db, "safelist", "remove", str(listed[0]["id"]))
    assert again.exit_code == 1 and "no safelist entry" in again.stderr


def test_removing_an_entry_reaches_a_matcher_that_cached_the_list(tmp_path):
    from hashdb.service.local import open_database
    from hashdb.types import HashValue, Principal

    service = open_database(tmp_path / "db.sqlite")
    try:
        org = service.store.ensure_org("ops")
        admin = Principal(org.id, org.name, "admin")
        values = [HashValue("pdq", random_pdq(random.Random(n)), 100) for n in (1, 2)]
        service.add_safelist(values[:1], admin)
        assert service.safelist.screen(values[:1])  # cached now
        [entry] = service.safelist_entries(admin)
        service.remove_safelist([entry.id], admin)
        service.add_safelist(values[1:], admin)  # may take the removed entry's place
        assert service.safelist.screen(values[:1]) == {}
        assert service.safelist.screen(values[1:])
    finally:
        service.store.close()


def test_access_log_dash_goes_to_stderr(tmp_path):
    # Issue item 21: `serve --access-log -` said stderr but wrote stdout.
    from serverproc import free_port

    port = free_port()
    out, err = tmp_path / "out.log", tmp_path / "err.log"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen([sys.executable, "-c", "from hashdb.cli import cli; cli()", "serve", "--db",
                                    str(empty_database(tmp_path / "db.sqlite")), "--port", str(port), "--workers", "1",
                                    "--access-log", "-"], stdout=stdout, stderr=stderr, cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as reply:
                    assert reply.status == 200
                    break
            except OSError:
                time.sleep(0.2)
        deadline = time.monotonic() + 20
        while "GET /healthz" not in err.read_text(errors="replace") and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert "GET /healthz" in err.read_text(errors="replace")
    assert "GET /healthz" not in out.read_text(errors="replace")


def test_the_access_log_names_the_key_a_request_presented_never_its_secret(tmp_path):
    # Found in trial: the access log carried no key, so an operator could not tell which
    # partner sent a burst of requests or of 401s. The key's public prefix ends each line.
    from serverproc import serving

    with serving(tmp_path / "db.sqlite", {"partner": ("delta", "partner")}) as (server, keys):
        key = keys["partner"]
        wrong = key[:17] + ("A" if key[17] != "A" else "B") + key[18:]  # its prefix, another secret
        assert server.request("GET", "/v1/stats", key=key).status == 200
        assert server.request("GET", "/v1/stats", key=wrong).status == 401
        assert server.request("GET", "/v1/stats").status == 401
        deadline = time.monotonic() + 20
        while server.log.read_text(errors="replace").count("GET /v1/stats") < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
    lines = [line for line in server.log.read_text(errors="replace").splitlines() if "GET /v1/stats" in line]
    prefix = "_".join(key.split("_")[:2])
    # Sorted: each line is written once its answer is sent, by the thread that answered, so two
    # requests in a row may log in either order.
    assert sorted((line.split()[-4], line.split()[-1]) for line in lines) == [
        ("200", prefix), ("401", "-"), ("401", prefix)]
    assert key.split("_", 2)[2] not in server.log.read_text(errors="replace")


def test_serve_names_a_bad_db_or_a_busy_port_in_one_line(tmp_path):
    import socket

    not_a_db = tmp_path / "notes.sqlite"
    not_a_db.write_text("shopping list\n")
    empty = tmp_path / "empty.sqlite"
    empty.touch()  # SQLite would take it as an empty database: served, it could only answer 401
    import sqlite3
    from contextlib import closing

    foreign = tmp_path / "other.sqlite"
    with closing(sqlite3.connect(foreign)) as connection:
        connection.execute("CREATE TABLE notes (body TEXT)")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        cases = {
            "no database at": ["serve", "--db", str(tmp_path / "nowhere" / "db.sqlite")],
            "the file is empty": ["serve", "--db", str(empty), "--port", port],
            "is not a hashdb database": ["serve", "--db", str(not_a_db)],
            "another program's SQLite database": ["serve", "--db", str(foreign), "--port", port],
            "--port": ["serve", "--db", str(empty_database(tmp_path / "db.sqlite")), "--port", port],
        }
        for said, args in cases.items():
            result = CliRunner().invoke(cli, args, env={"HASHDB_SERVER": None})
            assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
            assert said in result.output


def test_serve_refuses_a_database_that_does_not_exist(tmp_path):
    # A mistyped --db was served as a new, empty database: no keys, so every client got 401,
    # and a typo.sqlite (and its secret) was left behind. `keys create` is what makes one.
    import socket

    typo = tmp_path / "typo.sqlite"
    with socket.socket() as busy:  # were it not refused, the port would be, rather than served
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        result = CliRunner().invoke(cli, ["serve", "--db", str(typo), "--port", port], env={"HASHDB_SERVER": None})
    assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
    assert f"no database at {typo}" in result.output and "hashdb keys create" in result.output
    assert list(tmp_path.iterdir()) == []
    created = CliRunner().invoke(cli, ["keys", "create", "--db", str(typo), "--org", "ops", "--role", "admin"],
                                 env={"HASHDB_SERVER": None})
    assert created.exit_code == 0, created.output
    from hashdb.cli.operations import check_servable

    check_servable(str(typo), "127.0.0.1", 0)  # now served


def test_a_database_a_newer_hashdb_upgraded_is_refused_before_anything_is_written(tmp_path):
    # A newer hashdb migrates a database in place; the older one went on reading and writing it
    # without a word, unaware of the tables and rules the newer one added.
    import hashlib
    import sqlite3
    from contextlib import closing

    db = empty_database(tmp_path / "db.sqlite")
    with closing(sqlite3.connect(db)) as connection, connection:
        connection.execute("INSERT INTO _sqlite_migrations (migration_set, name, applied_at)"
                           " VALUES ('hashdb', 'm999_a_later_version', '2027-01-01T00:00:00')")
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    for args in (["lookup", "--db", str(db), f"pdq:{random_pdq(random.Random(3))}"],
                 ["submit", "--db", str(db), "--org", "alpha", "--label", "glorification",
                  f"pdq:{random_pdq(random.Random(4))}"]):
        result = CliRunner().invoke(cli, args, env={"HASHDB_SERVER": None})
        assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
        assert f"{db} was upgraded by a newer hashdb" in result.output and "m999_a_later_version" in result.output
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
