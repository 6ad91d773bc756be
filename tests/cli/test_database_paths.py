"""What the CLI says when --db names something that cannot be a database: one line and a
non-zero exit, never a traceback; and where `hashdb demo` finds its media."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from hashdb.cli import cli
from hashdb.cli.demo import default_media_dir

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
