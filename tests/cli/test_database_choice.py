"""Which database a command opens: `--db` on the command line, else HASHDB_DSN, else HASHDB_DB,
else ./hashdb.sqlite, the same for `hashdb serve` as for every other command; serve's line
naming the database it serves; and HASHDB_INDEX_DIR, read for PostgreSQL only."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from click.testing import CliRunner
from psycopg.conninfo import make_conninfo
from serverproc import make_keys, start_server

from hashdb.cli import cli
from hashdb.service.local import choose_database, describe_database, open_database
from hashdb.types import HashValue

SECRET = "s" * 40
MD5 = "0" * 31 + "2"


def invoke(*args: str, env: dict[str, str | None]):
    base: dict[str, str | None] = {"HASHDB_DB": None, "HASHDB_DSN": None, "HASHDB_SERVER": None,
                                   "HASHDB_API_KEY": None, "HASHDB_SECRET": None}
    return CliRunner().invoke(cli, list(args), env={**base, **env}, catch_exceptions=False)


def test_the_order_of_choice() -> None:
    dsn = "postgresql://u@db.example:5433/hashes"
    both = {"HASHDB_DSN": dsn, "HASHDB_DB": "env.sqlite"}
    assert (choose_database("typed.sqlite", both).target, choose_database("typed.sqlite", both).source) == (
        "typed.sqlite", "--db")
    assert (choose_database(None, both).target, choose_database(None, both).source) == (dsn, "HASHDB_DSN")
    assert choose_database(None, {"HASHDB_DB": "env.sqlite"}).target == "env.sqlite"
    assert choose_database(None, {"HASHDB_DSN": ""}).target == "hashdb.sqlite"


def test_the_description_names_the_database_never_the_password() -> None:
    text = describe_database("postgresql://ops:hunter2secret@db.example:5433/hashes")
    assert text == "PostgreSQL database hashes at db.example:5433 as user ops"
    assert "hunter2" not in describe_database("host=db.example dbname=hashes user=ops password=hunter2secret")


@pytest.mark.postgres
def test_keys_and_submit_use_hashdb_dsn(postgres_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    env: dict[str, str | None] = {"HASHDB_DSN": postgres_dsn, "HASHDB_SECRET": SECRET}
    created = invoke("keys", "create", "--org", "alpha", "--role", "admin", env=env)
    assert created.exit_code == 0, created.output
    submitted = invoke("submit", "--org", "alpha", "--label", "glorification", f"md5:{MD5}", env=env)
    assert submitted.exit_code == 0, submitted.output
    assert not (tmp_path / "hashdb.sqlite").exists() and "new database" not in created.stderr
    monkeypatch.setenv("HASHDB_SECRET", SECRET)
    service = open_database(postgres_dsn)
    try:
        key = created.stdout.split()[0]
        assert service.authenticate(key).org_name == "alpha"
        assert service.store.find_values("md5", [MD5])
    finally:
        service.store.close()
    # --db on the command line still wins over the environment.
    local = invoke("submit", "--db", str(tmp_path / "local.sqlite"), "--label", "glorification",
                   f"md5:{'0' * 31 + '3'}", env=env)
    assert local.exit_code == 0 and (tmp_path / "local.sqlite").exists()


@pytest.mark.postgres
def test_serve_with_db_serves_that_file_even_with_hashdb_dsn_set(postgres_dsn: str, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HASHDB_SECRET", SECRET)
    db = tmp_path / "other.sqlite"
    keys = make_keys(db, {"reader": ("alpha", "consumer")})
    dsn = make_conninfo(postgres_dsn, password="not-shown-anywhere")
    server = start_server(db, workers=1, env={"HASHDB_SECRET": SECRET, "HASHDB_DSN": dsn, "HASHDB_RATE_LIMIT": "0"})
    try:
        assert server.request("GET", "/v1/stats", key=keys["reader"][0]).status == 200
    finally:
        server.stop()
    log = server.log.read_text()
    assert f"serving the SQLite database {db.resolve()}" in log
    pg = start_server(tmp_path / "pg", workers=1, dsn=dsn, env={"HASHDB_SECRET": SECRET, "HASHDB_RATE_LIMIT": "0"})
    pg.stop()
    assert "serving the PostgreSQL database" in pg.log.read_text() and "not-shown" not in pg.log.read_text()


@pytest.mark.postgres
def test_index_rebuild_on_postgresql_saves_in_hashdb_index_dir_or_refuses(postgres_dsn: str, tmp_path: Path) -> None:
    env: dict[str, str | None] = {"HASHDB_DSN": postgres_dsn, "HASHDB_SECRET": SECRET}
    pdq = hashlib.sha256(b"index rebuild").hexdigest()
    submitted = invoke("submit", "--label", "glorification", "--pdq-quality", "90", f"pdq:{pdq}", env=env)
    assert submitted.exit_code == 0, submitted.output
    refused = invoke("index", "rebuild", env=env)
    assert refused.exit_code == 1 and refused.stderr.count("\n") == 1
    assert "nowhere to save the index: set HASHDB_INDEX_DIR" in refused.stderr
    folder = tmp_path / "index"
    saved = invoke("index", "rebuild", env={**env, "HASHDB_INDEX_DIR": str(folder)})
    assert saved.exit_code == 0, saved.output
    assert saved.stdout.strip().endswith(f"; saved in {folder.resolve()}") and saved.stdout.startswith("pdq: 1,")
    assert any(folder.iterdir())


def test_hashdb_index_dir_is_for_postgresql_only_as_help_and_a_warning_say(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    # A SQLite file's snapshots are always beside it: the setting went unused without a word,
    # and the help read as if it applied to either database.
    helped = " ".join(invoke("index", "rebuild", "--help", env={}).stdout.split())
    assert "A SQLite file's is saved beside it, in DB.index (HASHDB_INDEX_DIR does not apply to it)" in helped
    db = tmp_path / "db.sqlite"
    assert invoke("submit", "--db", str(db), "--label", "glorification", f"md5:{MD5}", env={}).exit_code == 0
    folder = tmp_path / "elsewhere"
    warning = (f"Warning: HASHDB_INDEX_DIR applies to a PostgreSQL database only: the index snapshots of {db} are "
               f"kept beside it, in {db}.index\n")
    rebuilt = invoke("index", "rebuild", "--db", str(db), env={"HASHDB_INDEX_DIR": str(folder)})
    assert rebuilt.exit_code == 0 and rebuilt.stderr == warning, rebuilt.output
    assert rebuilt.stdout.strip().endswith(f"; saved in {(tmp_path / 'db.sqlite.index').resolve()}")
    assert not folder.exists()
    assert invoke("index", "rebuild", "--db", str(db), env={}).stderr == ""
    # And `hashdb serve`, in the checks it makes before gunicorn starts.
    from hashdb.cli.operations import check_servable

    monkeypatch.setenv("HASHDB_INDEX_DIR", str(folder))
    check_servable(str(db), "127.0.0.1", 0)
    assert capsys.readouterr().err == warning
    monkeypatch.delenv("HASHDB_INDEX_DIR")
    check_servable(str(db), "127.0.0.1", 0)
    assert capsys.readouterr().err == ""
