"""`hashdb submit --server` of more items than the server takes in one request: sent in parts,
each waited out when the server says "later" (429/503 with Retry-After), and the parts stored
printed even when a later one is refused."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from serverproc import serving

from hashdb.cli import cli
from hashdb.partners.client import MAX_WAIT_S
from hashdb.service.local import open_database

ROLES = {"alpha": ("alpha", "contributor")}


def hash_file(folder: Path, n: int, start: int = 0) -> Path:
    path = folder / f"bulk{start}.txt"
    path.write_text("".join(f"md5 {i:032x}\n" for i in range(start + 1, start + n + 1)))
    return path


def submit(url: str, key: str, path: Path):
    return CliRunner().invoke(cli, ["submit", "--server", url, "--api-key", key, "--label", "glorification",
                                    "--json", str(path)],
                              env={"HASHDB_SERVER": None, "HASHDB_API_KEY": None, "HASHDB_DB": None})


def stored(db: Path) -> int:
    service = open_database(db)
    try:
        return int(service.store.counts()["signal"].get("md5", 0))
    finally:
        service.store.close()


def test_parts_refused_by_the_rate_limit_are_sent_again_after_retry_after(tmp_path: Path) -> None:
    # One request a second: the second and third parts come within the second and get 429
    # `Retry-After: 1`; before, the submit failed after the first 1,000 every time it was run.
    db = tmp_path / "db.sqlite"
    with serving(db, ROLES, env={"HASHDB_RATE_LIMIT": "1", "HASHDB_RATE_BURST": "1"}) as (server, keys):
        result = submit(server.url, keys["alpha"], hash_file(tmp_path, 2500))
    assert result.exit_code == 0, result.output
    docs = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(docs) == 2500 and all(not d["duplicate"] for d in docs)
    assert "rate limit" in result.stderr and "sending again in 1 s" in result.stderr
    assert stored(db) == 2500


def test_the_parts_stored_are_printed_when_a_later_part_is_refused(tmp_path: Path) -> None:
    # One request per 50 s: the wait asked for the second part is past MAX_WAIT_S, so it is not
    # waited out and the submit stops with the first part stored, which --json must still say.
    rate = 1 / 50
    assert 1 / rate > MAX_WAIT_S
    db = tmp_path / "db.sqlite"
    with serving(db, ROLES, env={"HASHDB_RATE_LIMIT": str(rate), "HASHDB_RATE_BURST": "1"}) as (server, keys):
        result = submit(server.url, keys["alpha"], hash_file(tmp_path, 1500))
    assert result.exit_code == 1
    docs = [json.loads(line) for line in result.stdout.splitlines()]
    assert [d["input"] for d in docs] == [f"md5 {i:032x}" for i in range(1, 1001)]
    assert result.stderr.strip().endswith("the first 1000 inputs were submitted, the rest were not")
    assert stored(db) == 1000


def test_parts_are_as_small_as_the_server_takes_and_lookups_too(tmp_path: Path) -> None:
    # A server run with HASHDB_MAX_BATCH=3 refused every part of 1,000 items: a submit of 8 lines
    # stored nothing, and a lookup of them failed whole.
    db = tmp_path / "db.sqlite"
    with serving(db, ROLES, env={"HASHDB_MAX_BATCH": "3"}) as (server, keys):
        path = hash_file(tmp_path, 8)
        result = submit(server.url, keys["alpha"], path)
        assert result.exit_code == 0, result.output
        assert [json.loads(line)["input"] for line in result.stdout.splitlines()] == [
            f"md5 {i:032x}" for i in range(1, 9)]
        found = CliRunner().invoke(cli, ["lookup", "--server", server.url, "--api-key", keys["alpha"], "--json",
                                         str(path), f"md5:{99:032x}"],
                                   env={"HASHDB_SERVER": None, "HASHDB_API_KEY": None, "HASHDB_DB": None})
    assert found.exit_code == 0, found.output
    assert [json.loads(line)["matched"] for line in found.stdout.splitlines()] == [True] * 8 + [False]
    assert stored(db) == 8
