"""The HASHDB_* settings a server reads: each bad value is one line from `hashdb serve` that
names the variable, before gunicorn starts (a trial saw 60-120 lines of worker tracebacks and
"Worker failed to boot", or a nonsense value accepted silently), and create_app refuses the
same values through the same table."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from hashdb.errors import InvalidInput
from hashdb.service import environment
from support import empty_database, run_cli

ROOT = Path(__file__).resolve().parents[2]

BAD = [
    ("HASHDB_SECRET", "short"),
    ("HASHDB_MAX_BATCH", "abc"),
    ("HASHDB_TAXONOMY", "/nonexistent"),
    ("HASHDB_WRITE_TIMEOUT", "nan"),
    ("HASHDB_BODY_TIMEOUT", "0"),
    ("HASHDB_RATE_LIMIT", "-1"),
    ("HASHDB_MAX_CONTENT_LENGTH", "1e99"),
    ("HASHDB_CONSOLE", "maybe"),
    ("HASHDB_RATE_BURST", "0"),
    ("HASHDB_AUTH_FAILURE_RATE", "inf"),
    ("HASHDB_METRICS_INTERVAL", "soon"),
    ("HASHDB_WEBHOOK_ALLOW_LOOPBACK", "sometimes"),
    ("HASHDB_DSN", "not-a-dsn"),
]


@pytest.mark.parametrize(("variable", "value"), BAD)
def test_serve_refuses_a_bad_setting_in_one_line_naming_it(tmp_path, variable, value):
    db = empty_database(tmp_path / "srv.sqlite")
    # A busy port: were the setting not checked first, serve would fail on the port instead
    # (rather than start gunicorn inside the test).
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        result = run_cli("serve", "--db", str(db), "--port", port, **{variable: value})
    assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
    assert variable in result.output and "expected" in result.output
    if variable not in ("HASHDB_SECRET", "HASHDB_DSN"):
        assert repr(value) in result.output


@pytest.mark.parametrize("variable", ["HASHDB_SECRET", "HASHDB_DSN", "HASHDB_METRICS_TOKEN"])
def test_a_secret_is_never_echoed(variable):
    with pytest.raises(InvalidInput, match=variable) as caught:
        environment.server_config({variable: "s3cr\x01"})
    assert "s3cr" not in str(caught.value) and "5 characters" in str(caught.value)


@pytest.mark.parametrize(("variable", "value"), BAD)
def test_create_app_refuses_the_same_values(tmp_path, monkeypatch, variable, value):
    from hashdb.api import create_app

    monkeypatch.setenv(variable, value)
    with pytest.raises(InvalidInput, match=variable):
        create_app({"DB": str(empty_database(tmp_path / "db.sqlite")), "LOAD_INDEX_IN_BACKGROUND": False})


def test_good_values_are_parsed_to_what_the_app_uses():
    config = environment.server_config({
        "HASHDB_MAX_BATCH": "7", "HASHDB_RATE_LIMIT": "0", "HASHDB_CONSOLE": "false",
        "HASHDB_WRITE_TIMEOUT": "1.5", "HASHDB_METRICS_TOKEN": "12345", "HASHDB_SECRET": "x" * 32,
        "HASHDB_UNRELATED": "ignored",
    })
    # The token stays the text Prometheus sends (Flask's own parsing made "12345" an int).
    assert config == {"MAX_BATCH": 7, "RATE_LIMIT": 0.0, "CONSOLE": False, "WRITE_TIMEOUT": 1.5,
                      "METRICS_TOKEN": "12345", "SECRET": "x" * 32}


def test_every_variable_the_code_reads_is_checked():
    """Each HASHDB_* name in the package's source, and each key of the app's config defaults,
    is in the table (bar the client's variables and those `hashdb serve` sets for its workers)."""
    from hashdb.api import DEFAULTS

    named = set()
    for path in (ROOT / "hashdb").rglob("*.py"):
        named |= set(re.findall(r"\bHASHDB_[A-Z_]*[A-Z]\b", path.read_text("utf-8")))
    checked = {setting.variable for setting in environment.SETTINGS}
    not_server = {"HASHDB_API_KEY", "HASHDB_SERVER", "HASHDB_RUN_DIR", "HASHDB_WORKERS", "HASHDB_GIFCT"}
    assert named - not_server - checked == set()
    assert {f"HASHDB_{key}" for key in DEFAULTS} <= checked


def test_a_misspelt_setting_is_named_with_the_one_meant():
    # HASHDB_RATE_LIMT=5 was ignored without a word: the server ran with the default rate.
    environ = {"HASHDB_RATE_LIMT": "5", "HASHDB_SERVR": "http://x", "HASHDB_TEST_POSTGRES": "dbname=test",
               "HASHDB_CHROMIUM": "/usr/bin/chromium", "HASHDB_SECRET": "x" * 40, "PATH": "/bin"}
    assert environment.misspelt(environ) == [
        "HASHDB_RATE_LIMT is not a setting hashdb reads: did you mean HASHDB_RATE_LIMIT?",
        "HASHDB_SERVR is not a setting hashdb reads: did you mean HASHDB_SERVER?"]


def test_serve_warns_of_a_misspelt_setting_before_it_starts(tmp_path):
    db = empty_database(tmp_path / "srv.sqlite")
    with socket.socket() as busy:  # serve then stops at the port, after its checks
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        result = run_cli("serve", "--db", str(db), "--port", port, HASHDB_MAX_BATHC="10")
    assert result.exit_code == 1
    assert "Warning: HASHDB_MAX_BATHC is not a setting hashdb reads: did you mean HASHDB_MAX_BATCH?" in result.output


def test_serve_over_hashdb_dsn_does_not_ask_for_a_sqlite_file(tmp_path, postgres_dsn, monkeypatch):
    # Without --db the workers open HASHDB_DSN; serve refused it for want of the default
    # ./hashdb.sqlite, which a PostgreSQL deployment does not keep. (--db typed beats
    # HASHDB_DSN: tests/cli/test_database_choice.py.)
    monkeypatch.chdir(tmp_path)
    with socket.socket() as busy:  # serve then stops at the port, after its database checks
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        result = run_cli("serve", "--port", port, HASHDB_DSN=postgres_dsn)
    assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
    assert "no database" not in result.output and port in result.output
