"""`hashdb demo --once` builds a database from fixtures/media, serves it, and prints a curl
lookup of a near-duplicate with the server's real answer."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_once_prints_a_curl_lookup_and_its_match(tmp_path):
    db = tmp_path / "demo.sqlite"
    result = subprocess.run(
        [sys.executable, "-c", "from hashdb.cli import cli; cli()", "demo", "--once", "--port", "0", "--db", str(db)],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    [curl] = [line.strip() for line in out.splitlines() if line.strip().startswith("curl ")]
    words = shlex.split(curl)
    assert words[:3] == ["curl", "-s", "-H"] and words[3].startswith("Authorization: Bearer hdb_")
    assert "/v1/lookup?signal=pdq&hash=" in words[4]
    answer, _ = json.JSONDecoder().raw_decode(out[out.index("{"):])
    [cli_line] = [shlex.split(line) for line in out.splitlines() if " lookup --server " in line]
    # Runnable as printed: `hashdb` only when that is on PATH, else the script's own path.
    assert shutil.which(cli_line[0]) is not None and Path(shutil.which(cli_line[0]) or "").name == "hashdb"
    assert cli_line[2:6] == ["--server", words[4].split("/v1/")[0], "--api-key", words[3].split()[-1]]
    assert Path(cli_line[6]).name.endswith("_jpeg30.jpg") and Path(cli_line[6]).is_file()
    assert answer["matched"] is True
    # A JPEG-quality-30 copy: near, not identical.
    assert 0 < answer["matches"][0]["distance"] <= 31
    assert answer["input"] == "pdq:" + words[4].rsplit("hash=", 1)[1]
    assert "hash" not in answer["matches"][0]
    # --once stops the server before returning: no sign-in link to a server that is gone.
    assert "web console" not in out and "/ui/signin/link" not in out
    assert "the demo server has stopped" in out.splitlines()[-1]


def test_demo_refuses_an_existing_database(tmp_path):
    db = tmp_path / "demo.sqlite"
    db.write_bytes(b"")
    result = subprocess.run([sys.executable, "-c", "from hashdb.cli import cli; cli()", "demo", "--once", "--port", "0",
                             "--db", str(db)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "fresh" in result.stderr


def test_demo_without_media_is_one_line(tmp_path, monkeypatch):
    # An install from a wheel has no fixtures/ beside the package, and the folder run in none.
    from click.testing import CliRunner

    from hashdb.cli import cli
    from hashdb.cli import demo

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(demo, "__file__", str(tmp_path / "site-packages" / "hashdb" / "cli" / "demo.py"))
    result = CliRunner().invoke(cli, ["demo", "--once", "--port", "0"])
    assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
    assert "--media DIR" in result.output
    assert not list(tmp_path.iterdir())


def test_the_printed_command_is_the_running_hashdb_unless_path_has_the_same(tmp_path, monkeypatch):
    # The README's first command installs hashdb in .venv/bin, which is often not on PATH.
    from hashdb.cli import demo

    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    script = bin_dir / "hashdb"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    monkeypatch.setattr(sys, "argv", [str(script), "demo"])
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert demo.hashdb_command() == str(script)
    monkeypatch.setenv("PATH", str(bin_dir))
    assert demo.hashdb_command() == "hashdb"
    other = tmp_path / "other"
    other.mkdir()
    (other / "hashdb").write_text("#!/bin/sh\n")
    (other / "hashdb").chmod(0o755)
    monkeypatch.setenv("PATH", str(other))
    assert demo.hashdb_command() == str(script)
