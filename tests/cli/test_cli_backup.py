"""`hashdb backup`: a copy of a database that `hashdb serve` is writing to. Found in trial: a
`cp` of the .sqlite file held 23 of 415 feed entries (the rest were still in the -wal file),
and `hashdb audit verify` on it said intact. The backup holds every acknowledged write up to
the moment it was taken, its audit chain verifies, and it opens with the same keys."""

from __future__ import annotations

import json
import os
import random
import shutil
import threading
from pathlib import Path

from serverproc import make_keys, start_server
from support import empty_database, random_pdq, run_cli


def share(server, key: str, n: int, seed: int) -> int:
    reply = server.request("POST", "/v1/hashes", {"items": [
        {"signal": "pdq", "hash": random_pdq(random.Random(seed * 1000 + i)), "quality": 100,
         "labels": ["glorification"]} for i in range(n)]}, key)
    assert reply.status == 201, reply.body
    return n


def feed(db: Path) -> list[dict]:
    result = run_cli("export", "--db", str(db), "--limit", "100000")
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_a_backup_taken_while_the_server_writes_holds_every_acknowledged_write(tmp_path):
    db = empty_database(tmp_path / "live.sqlite")
    keys = make_keys(db, {"alpha": ("alpha", "contributor")})
    server = start_server(db, workers=1, env={"HASHDB_RATE_LIMIT": "0"})
    try:
        key = keys["alpha"][0]
        before = sum(share(server, key, 20, batch) for batch in range(10))
        # The server's connection is open, so its writes sit in the -wal file (SQLite moves
        # them into the main file at a checkpoint, every 1,000 pages): a plain copy misses them.
        assert Path(f"{db}-wal").stat().st_size > 0
        copied = tmp_path / "copied.sqlite"
        shutil.copyfile(db, copied)
        assert len(feed(copied)) < before

        stop = threading.Event()
        during: list[int] = []

        def keep_writing() -> None:
            batch = 100
            while not stop.is_set():
                during.append(share(server, key, 5, batch))
                batch += 1

        writer = threading.Thread(target=keep_writing)
        writer.start()
        try:
            result = run_cli("backup", "--db", str(db), "--json", str(tmp_path / "backup.sqlite"))
        finally:
            stop.set()
            writer.join()
        assert result.exit_code == 0, result.output
        done = json.loads(result.stdout)
        assert done["path"] == str(tmp_path / "backup.sqlite") and done["secret"] == f"{done['path']}.secret"
        backup = Path(done["path"])
        entries = feed(backup)
        # Every write acknowledged before the backup began, and a whole commit's worth after.
        assert before <= len(entries) <= before + sum(during)
        assert len(entries) % 5 == 0 and done["feed_entries"] == len(entries) == done["records"]
        assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
        assert oct(os.stat(done["secret"]).st_mode & 0o777) == "0o600"
    finally:
        server.stop()
    verified = run_cli("audit", "verify", "--db", str(backup))
    assert verified.exit_code == 0 and "intact" in verified.output, verified.output
    # The same secret beside it: the live database's keys work against the copy.
    served = start_server(backup, workers=1)
    try:
        assert served.request("GET", "/v1/stats", key=key).status == 200
    finally:
        served.stop()


def test_backup_refuses_what_it_cannot_do_in_one_line(tmp_path):
    db = empty_database(tmp_path / "db.sqlite")
    taken = run_cli("backup", "--db", str(db), str(tmp_path / "b.sqlite"))
    assert taken.exit_code == 0 and "0 records" in taken.output, taken.output
    again = run_cli("backup", "--db", str(db), str(tmp_path / "b.sqlite"))
    assert again.exit_code == 1 and "already exists" in again.output
    (tmp_path / "junk.sqlite").write_text("not a database\n" * 100)
    for args, said in [
        (("--db", str(tmp_path / "missing.sqlite"), str(tmp_path / "c.sqlite")), "no database at"),
        (("--db", str(tmp_path / "junk.sqlite"), str(tmp_path / "c.sqlite")), "cannot back up"),
        (("--db", "postgresql://localhost/x", str(tmp_path / "c.sqlite")), "pg_dump"),
        (("--db", str(db), str(tmp_path / "no" / "c.sqlite")), "no folder"),
    ]:
        result = run_cli("backup", *args)
        assert result.exit_code != 0 and said in result.output and result.output.count("\n") == 1, result.output
    assert not (tmp_path / "c.sqlite").exists()
    # A folder as DEST: the copy is made in it under the database's name.
    (tmp_path / "dir").mkdir()
    into = run_cli("backup", "--db", str(db), "--json", str(tmp_path / "dir"))
    assert json.loads(into.stdout)["path"] == str(tmp_path / "dir" / "db.sqlite")
