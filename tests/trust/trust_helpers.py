"""Helpers for the trust-and-safety tests (a uniquely named module: every folder has a conftest)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result

from hashdb.cli import cli
from support import json_lines


class Run:
    """`hashdb ...` in-process against one database file."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.runner = CliRunner()

    def __call__(self, *args: str) -> Result:
        return self.runner.invoke(cli, [*args], env={"HASHDB_DB": str(self.db),
                                                              "HASHDB_WEBHOOK_ALLOW_LOOPBACK": "1"}, catch_exceptions=False)


lines = json_lines
