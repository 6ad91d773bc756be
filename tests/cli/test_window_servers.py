"""A lookup's windows (hashing/crops.py) through a real server: a server that takes them finds
an off-centre crop through one, and a server from before windows (which takes 17 derived
hashes an item, none of them windows) still answers this client's lookups, without the
windows (partners/client.py reads what a server takes from its /openapi.json). Nor does one from
before derived hashes' colour layouts, which refused any derived hash carrying one."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from hashdb.cli import cli
from hashdb.hashing.derived import MAX_DERIVED
from hashdb.partners.client import OLDER_MAX_DERIVED, Client
from serverproc import serving, start_server

ROLES = {"alpha": ("alpha", "contributor")}
ROOT = Path(__file__).resolve().parents[2]
# main just before windows: its server takes at most 17 derived hashes an item and knows no
# "window" (it refuses the whole request otherwise).
BEFORE_WINDOWS = "0bf714a0f3ef047a6a733ce63a4f2cd286921909"
# main before colour layouts were merged: its server refuses a derived hash with a "colours" field.
BEFORE_COLOURS = "22599aca26fe57cf3725e1ad3e05589e225db2c4"


def remote(url: str, key: str, *args: str) -> list[dict]:
    result = CliRunner().invoke(cli, [*args, "--server", url, "--api-key", key, "--json"],
                                env={"HASHDB_SERVER": None, "HASHDB_API_KEY": None, "HASHDB_DB": None})
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def off_centre_crop(media: Path, tmp: Path) -> Path:
    # 90 % of each side at the bottom right: only a window finds it (tests/service/test_windows.py).
    photo = Image.open(media / "chelsea.jpg").convert("RGB")
    width, height = photo.size
    cut = photo.crop((width - round(width * 0.9), height - round(height * 0.9), width, height))
    path = tmp / "chelsea_crop.jpg"
    buffer = io.BytesIO()
    cut.save(buffer, "JPEG", quality=90)
    path.write_bytes(buffer.getvalue())
    return path


def test_a_server_that_takes_windows_finds_an_off_centre_crop(media, tmp_path):
    with serving(tmp_path / "db.sqlite", ROLES) as (server, keys):
        assert Client(server.url, keys["alpha"]).derived_accepted().most == MAX_DERIVED
        [submitted] = remote(server.url, keys["alpha"], "submit", str(media / "chelsea.jpg"), "--label", "glorification")
        [answer] = remote(server.url, keys["alpha"], "lookup", str(off_centre_crop(media, tmp_path)))
        assert [(m["id"] in submitted["ids"], m["via"]) for m in answer["matches"]] == [(True, "window")]


def source_at(commit: str, out: Path) -> Path:
    if shutil.which("git") is None or subprocess.run(
            ["git", "-C", str(ROOT), "cat-file", "-e", f"{commit}^{{commit}}"], capture_output=True).returncode:
        pytest.skip(f"needs this repository's history (git) to run the server of {commit[:7]}")
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive.stdout, check=True)
    return out


@pytest.fixture(scope="module")
def older_source(tmp_path_factory) -> Path:
    return source_at(BEFORE_WINDOWS, tmp_path_factory.mktemp("older"))


def older_key(source: Path, db: Path) -> str:
    # The older version makes its own database and key, as its operators did.
    made = subprocess.run([sys.executable, "-c", "from hashdb.cli import cli; cli()", "keys", "create", "--org",
                           "alpha", "--role", "contributor", "--db", str(db), "--json"], capture_output=True, text=True,
                          env={**{k: v for k, v in os.environ.items() if not k.startswith("HASHDB_")},
                               "PYTHONPATH": str(source)}, cwd=source, check=True)
    return str(json.loads(made.stdout)["key"])


def test_a_server_from_before_colour_layouts_takes_this_clients_lookups_and_submits(media, tmp_path,
                                                                                    tmp_path_factory):
    source = source_at(BEFORE_COLOURS, tmp_path_factory.mktemp("before-colours"))
    db = tmp_path / "db.sqlite"
    key = older_key(source, db)
    server = start_server(db, workers=1, env={"HASHDB_RATE_LIMIT": "0"}, source=source)
    try:
        assert not Client(server.url, key).derived_accepted().colours
        [submitted] = remote(server.url, key, "submit", str(media / "chelsea.jpg"), "--label", "glorification")
        [caption] = remote(server.url, key, "lookup", str(media / "chelsea_caption.jpg"))
        assert any(m["id"] in submitted["ids"] for m in caption["matches"]), caption
    finally:
        server.stop()


def test_a_server_from_before_windows_still_answers_this_clients_lookups(media, tmp_path, older_source):
    db = tmp_path / "db.sqlite"
    key = older_key(older_source, db)
    server = start_server(db, workers=1, env={"HASHDB_RATE_LIMIT": "0"}, source=older_source)
    try:
        accepted = Client(server.url, key).derived_accepted()
        assert accepted.most == OLDER_MAX_DERIVED and "window" not in accepted.vias
        [submitted] = remote(server.url, key, "submit", str(media / "chelsea.jpg"), "--label", "glorification")
        # A query with more derived hashes than that server takes: sent without its windows.
        # The captioned copy matches through its region, as before windows; the crop, which only a
        # window finds, is answered (not refused) with no match.
        caption, crop = remote(server.url, key, "lookup", str(media / "chelsea_caption.jpg"),
                              str(off_centre_crop(media, tmp_path)))
        assert any(m["id"] in submitted["ids"] for m in caption["matches"]), caption
        assert not crop["matched"]
        # Sent as they are, the windows make that server refuse the lookup whole.
        from hashdb.cli.common import hashing_service
        from hashdb.partners.client import query_item

        query = hashing_service().query_for(hashing_service().hash_file(tmp_path / "chelsea_crop.jpg", dihedral=True))
        refused = server.request("POST", "/v1/lookup", {"items": [query_item(query)]}, key=key)
        assert refused.status == 400, refused.body
    finally:
        server.stop()
