"""A file name cannot forge or rewrite a line of text output: a trial named a file
`x<newline>FAKE.jpg: no match`, and `hash` and `lookup` printed a line that read as another
file's answer. Names holding control or format characters are printed escaped (a JSON string);
--json was already safe. click strips ESC sequences only when stdout is not a terminal, so the
runner here keeps colour on, as a terminal would."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from hashdb.cli import cli
from support import empty_database

MEDIA = Path(__file__).resolve().parents[2] / "fixtures" / "media"
NAMES = ["x\nFAKE.jpg: no match", "y\x1b[2K\rFAKE.jpg", "z\x08\x07\u009b1m.jpg", "w\u202egpj.exe"]


def invoke(*args: str) -> list[str]:
    env = {"HASHDB_DB": None, "HASHDB_SERVER": None, "HASHDB_API_KEY": None}
    result = CliRunner().invoke(cli, list(args), env=env, color=True)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.stdout.splitlines()


@pytest.fixture
def folder(tmp_path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    for name in NAMES:
        shutil.copy(MEDIA / "chelsea.jpg", folder / name)
    return folder


@pytest.mark.parametrize("command", ["hash", "lookup", "submit"])
def test_each_file_is_one_line_with_its_name_escaped(tmp_path, folder, command):
    extra = {"hash": [], "lookup": ["--db", str(empty_database(tmp_path / "db.sqlite"))],
             "submit": ["--db", str(tmp_path / "new.sqlite"), "--label", "glorification"]}[command]
    lines = invoke(command, *extra, str(folder))
    assert len(lines) == len(NAMES), lines
    for line in lines:
        assert line.isprintable(), repr(line)
        assert line.startswith(f'"{folder}/'), line
    assert not any(line.startswith("FAKE") for line in lines)
