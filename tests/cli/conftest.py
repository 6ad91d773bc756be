"""The `run` fixture of the in-process CLI tests: `hashdb` over an empty database of the test's own."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from hashdb.cli import cli
from support import empty_database


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("HASHDB_DB", str(empty_database(tmp_path / "db.sqlite")))
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(cli, list(args), catch_exceptions=False)

    return invoke
