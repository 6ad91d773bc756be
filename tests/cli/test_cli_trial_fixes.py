"""What a new user's trial of the CLI found: HASHDB_SERVER beating an explicit --db (a lookup
meant for a local mirror went to the server), record ids past SQLite's range, unwritable
--out paths, control characters in organisation names, contradictory feedback flags, Python
reprs in `hashdb hash`, and messages that named the wrong thing."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from support import database_sharing, empty_database, run_cli

ROOT = Path(__file__).resolve().parents[2]
MEDIA = ROOT / "fixtures" / "media"
TOO_BIG = "99999999999999999999999"


def closed_url() -> str:
    """A local URL nothing listens on: any request to it fails at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


invoke = run_cli


@pytest.fixture
def mirror(tmp_path) -> Path:
    return database_sharing(tmp_path / "mirror.sqlite")


@pytest.mark.parametrize("api_key", [None, "hdb_not_a_real_key"])
def test_a_db_lookup_stays_local_whatever_hashdb_server_says(mirror, api_key):
    # README: lookups against a mirror never leave the machine. The server named in the
    # environment is unreachable, so any request to it would fail the lookup.
    result = invoke("lookup", "--db", str(mirror), "--json", str(MEDIA / "chelsea_jpeg30.jpg"),
                    HASHDB_SERVER=closed_url(), HASHDB_API_KEY=api_key)
    assert result.exit_code == 0, result.output
    assert '"matched": true' in result.stdout


def test_writes_with_db_on_the_command_line_stay_local(mirror):
    env = {"HASHDB_SERVER": closed_url(), "HASHDB_API_KEY": "hdb_not_a_real_key"}
    submitted = invoke("submit", "--db", str(mirror), "--json", str(MEDIA / "coffee.jpg"), "--label",
                       "glorification", **env)
    assert submitted.exit_code == 0, submitted.output
    record_id = submitted.stdout.split('"ids": [')[1].split("]")[0].split(",")[0]
    for args in (["relabel", record_id, "--label", "glorification"], ["feedback", record_id, "--agree", "--org", "other"],  # not the sharer's own vote
                 ["retract", record_id], ["export"]):
        result = invoke(*args, "--db", str(mirror), **env)
        assert result.exit_code == 0, (args, result.output)


@pytest.mark.parametrize("command", [
    ["lookup", "pdq:" + "ab" * 32], ["submit", "md5:" + "ab" * 16, "--label", "glorification"],
    ["retract", "1"], ["relabel", "1", "--label", "glorification"], ["feedback", "1", "--agree"], ["export"],
])
def test_server_and_db_both_on_the_command_line_is_a_usage_error(tmp_path, command):
    result = invoke(*command, "--db", str(tmp_path / "x.sqlite"), "--server", closed_url(), "--api-key", "k")
    assert result.exit_code == 2
    assert "give --server or --db, not both" in result.output


@pytest.mark.parametrize("command", [
    ["submit", "md5:" + "ab" * 16, "--label", "glorification"], ["retract", "1"],
    ["relabel", "1", "--label", "glorification"], ["feedback", "1", "--agree"],
])
@pytest.mark.parametrize("via", ["option", "environment"])
def test_org_with_a_server_is_a_usage_error(command, via):
    # Found in trial: `submit --org orgz --server ...` stored the record as the key's
    # organisation's without a word, while `lookup --admin --server` is refused.
    server = {"HASHDB_SERVER": closed_url()} if via == "environment" else {}
    args = [] if via == "environment" else ["--server", closed_url()]
    result = invoke(*command, "--org", "orgz", *args, "--api-key", "k", **server)
    assert result.exit_code == 2 and "--org is for a local database; over the API the key's organisation acts" \
        in result.output, result.output


def test_hashdb_server_alone_still_chooses_the_server(tmp_path):
    # Without --db on the command line the environment's server is used, as before (HASHDB_DB
    # from the environment too: both come from the same place, and the server was always first).
    result = invoke("lookup", "pdq:" + "ab" * 32, HASHDB_SERVER=closed_url(),
                    HASHDB_DB=str(tmp_path / "x.sqlite"))
    assert result.exit_code == 2 and "--server needs --api-key" in result.output


@pytest.mark.parametrize("command", [
    ["retract", TOO_BIG], ["feedback", TOO_BIG, "--agree"], ["relabel", TOO_BIG, "--label", "glorification"],
    ["quarantine", "add", TOO_BIG, "--reason", "r"], ["quarantine", "release", TOO_BIG],
    ["quarantine", "confirm", TOO_BIG, "--reason", "r"], ["safelist", "remove", TOO_BIG],
    ["keys", "revoke", TOO_BIG], ["webhook", "remove", TOO_BIG], ["incident", "close", TOO_BIG],
    ["audit", "list", "--after", TOO_BIG], ["safelist", "list", "--after", TOO_BIG],
    ["quarantine", "list", "--after", TOO_BIG], ["webhook", "log", "--after", TOO_BIG],
    ["retract", "0"], ["export", "--limit", TOO_BIG],
])
def test_ids_past_sqlite_range_are_one_line_errors(mirror, command):
    result = invoke(*command, "--db", str(mirror))
    assert result.exit_code in (1, 2), result.output
    assert "Traceback" not in result.output and "Error:" in result.output


@pytest.mark.parametrize("out", ["/proc/nope", "{file}/sub"])
def test_report_to_an_unwritable_place_is_one_line_naming_it(mirror, tmp_path, out):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    out = out.format(file=blocker)
    result = invoke("report", "--out", out, "--db", str(mirror))
    assert result.exit_code == 1
    [line] = result.output.strip().splitlines()
    assert line.startswith("Error: ") and out in line


def test_organisation_names_refuse_control_characters_as_incident_names_do(tmp_path):
    db = str(tmp_path / "db.sqlite")
    result = invoke("keys", "create", "--org", "ev\x1b]0;pwned\x07il", "--role", "consumer", "--db", db)
    assert result.exit_code == 1
    assert "organisation name contains a control or unprintable character (U+001B)" in result.output
    # The local acting organisation (--org) is held to the same rule.
    result = invoke("submit", "md5:" + "ab" * 16, "--label", "glorification", "--org", "a\x9bb", "--db", db)
    assert result.exit_code == 1 and "(U+009B)" in result.output


def test_create_key_in_the_service_refuses_control_characters(tmp_path):
    from hashdb.errors import InvalidInput
    from hashdb.service.local import open_database
    from support import principal

    service = open_database(empty_database(tmp_path / "db.sqlite"))
    admin = principal(service, "operator", "admin")
    with pytest.raises(InvalidInput, match=r"organisation name contains a control .*\(U\+001B\)"):
        service.create_key("ev\x1bil", "consumer", admin)
    assert service.store.get_org("ev\x1bil") is None


def test_feedback_with_two_verdicts_is_a_usage_error(mirror):
    result = invoke("feedback", "1", "--agree", "--disagree", "--db", str(mirror))
    assert result.exit_code == 2
    assert "only one of --agree, --disagree, --false-positive" in result.output


def test_hash_prints_derived_hashes_readably():
    result = invoke("hash", str(MEDIA / "chelsea.jpg"))
    assert result.exit_code == 0
    assert "{'" not in result.stdout and "[{" not in result.stdout
    derived = [word for word in result.stdout.split() if word.startswith("pdq/cropped:")]
    assert derived and all(len(word.split(":", 1)[1]) == 64 for word in derived)
    assert " share 0." in result.stdout


def test_a_refusal_names_the_callers_role_and_what_it_tried(tmp_path):
    from hashdb.errors import Forbidden
    from hashdb.service.local import open_database
    from support import principal

    service = open_database(empty_database(tmp_path / "db.sqlite"))
    consumer = principal(service, "gamma", "consumer")
    with pytest.raises(Forbidden) as refused:
        service.open_incident("attack-2026", consumer)
    assert str(refused.value) == "the consumer role may not open an incident (role: admin)"
    with pytest.raises(Forbidden) as refused:
        service.export(consumer)
    assert str(refused.value) == "the consumer role may not read the change feed (roles: partner, admin)"
