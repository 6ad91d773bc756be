"""An image's keypoints through a real server: `submit IMAGE --server` sends the stored side,
which the server keeps with the PDQ record; `lookup IMAGE --server` computes no probe (its
keypoints need the file's pixels, which are never sent)."""

from __future__ import annotations

import json
from contextlib import closing

from click.testing import CliRunner

from hashdb.cli import cli
from hashdb.config import Settings
from hashdb.hashing import keypoints
from hashdb.service import HashingService
from hashdb.store.sqlite_store import SQLiteStore
from serverproc import serving

ROLES = {"alpha": ("alpha", "contributor")}


def remote(server, key, *args):
    result = CliRunner().invoke(cli, [*args, "--server", server.url, "--api-key", key, "--json"],
                                env={"HASHDB_SERVER": None, "HASHDB_API_KEY": None, "HASHDB_DB": None})
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_submit_sends_the_stored_keypoints_and_lookup_computes_no_probe(tmp_path, media, monkeypatch):
    db = tmp_path / "db.sqlite"
    image = media / "chelsea.jpg"
    with serving(db, ROLES) as (server, keys):
        [submitted] = remote(server, keys["alpha"], "submit", str(image), "--label", "glorification")
        with closing(SQLiteStore(db)) as store:
            [pdq_id] = [r.id for r in store.get_records(submitted["ids"]).values() if r.signal == "pdq"]
            assert store.keypoints_of(submitted["ids"]) == {pdq_id: HashingService(Settings()).hash_file(image).keypoints}

        def no_probe(work):  # one file hashes in this process
            raise AssertionError("a lookup sent to a server computed a probe")

        monkeypatch.setattr(keypoints, "probe", no_probe)
        [answer] = remote(server, keys["alpha"], "lookup", str(image))
        assert pdq_id in [m["id"] for m in answer["matches"]]
