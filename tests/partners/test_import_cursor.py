"""`hashdb import --source URL` of that server's export leaves the mirror where the export ended,
so the next `hashdb sync --from URL` fetches only what came after, not the whole feed again."""

from __future__ import annotations

import json
import random
import urllib.request
from pathlib import Path

from click.testing import CliRunner
from serverproc import serving
from support import random_pdq

from hashdb.cli import cli
from hashdb.service.local import open_database

ROLES = {"alpha": ("alpha", "contributor"), "partner": ("delta", "partner")}


def run(*args: str):
    result = CliRunner().invoke(cli, list(args), env={"HASHDB_DB": None, "HASHDB_DSN": None, "HASHDB_SERVER": None,
                                                      "HASHDB_API_KEY": None})
    return result.exit_code, result.stdout, result.stderr


def server_cursor(url: str, key: str) -> str:
    """The cursor the server itself gives after its whole feed: what a sync would have stored."""
    request = urllib.request.Request(f"{url}/v1/export?limit=10000", headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return str(json.loads(response.read())["cursor"])


def stored_cursor(db: Path, source: str) -> str | None:
    service = open_database(db)
    try:
        return service.store.mirror_cursor(source)
    finally:
        service.store.close()


def test_sync_after_importing_the_export_fetches_only_what_came_after(tmp_path: Path) -> None:
    rng = random.Random(5)
    origin, mirror = tmp_path / "origin.sqlite", tmp_path / "mirror.sqlite"
    with serving(origin, ROLES) as (server, keys):
        submit = ["submit", "--server", server.url, "--api-key", keys["alpha"], "--pdq-quality", "90",
                  "--label", "glorification"]
        assert run(*submit, *(f"pdq:{random_pdq(rng)}" for _ in range(30)))[0] == 0
        code, feed, err = run("export", "--server", server.url, "--api-key", keys["partner"])
        assert code == 0, err
        (tmp_path / "feed.jsonl").write_text(feed)
        code, _, err = run("import", "--db", str(mirror), "--source", server.url, str(tmp_path / "feed.jsonl"))
        assert code == 0, err
        # What the server gives after the same changes, computed by the server: the file's
        # last entry names the same change, so the same v2 cursor with its check.
        assert stored_cursor(mirror, server.url) == server_cursor(server.url, keys["partner"])
        assert run(*submit, *(f"pdq:{random_pdq(rng)}" for _ in range(3)))[0] == 0
        code, out, err = run("sync", "--from", server.url, "--api-key", keys["partner"], "--db", str(mirror),
                             "--json")
    assert code == 0, err
    pages = [json.loads(line) for line in out.splitlines()]
    # Only the 3 new records came, not 30 "unchanged" fetched again.
    assert sum(p.get("added", 0) for p in pages) == 3
    assert sum(p.get("unchanged", 0) for p in pages) == 0
