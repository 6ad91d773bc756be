"""`hashdb sync` between two real processes: a `hashdb serve` on a loopback port and the sync
command in another process, writing a partner's mirror that then answers lookups locally."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from partner_helpers import admin_of, feed_docs, fold, live_set
from serverproc import serving
from support import random_pdq

from hashdb.partners.client import Client
from hashdb.partners.mirror import Source
from hashdb.service.local import open_database
from hashdb.store.sqlite_store import SQLiteStore

ROOT = Path(__file__).resolve().parents[2]
ROLES = {"alpha": ("alpha", "contributor"), "partner": ("delta", "partner"), "consumer": ("gamma", "consumer")}
HASHDB = [sys.executable, "-c", "from hashdb.cli import cli; cli()"]
TIMEOUT_S = 60


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    db = tmp_path_factory.mktemp("served") / "server.sqlite"
    with serving(db, ROLES) as served:
        yield served


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("HASHDB_")}


def hashdb(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HASHDB, *args], cwd=ROOT, env=clean_env(), capture_output=True, text=True,
                          timeout=TIMEOUT_S)


def sync_args(served, mirror: Path, who: str = "partner", *extra: str) -> list[str]:
    server, keys = served
    return ["sync", "--from", server.url, "--api-key", keys[who], "--db", str(mirror), *extra]


def pages(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines()]


def submit_random(served, n: int, seed: int) -> list[int]:
    server, keys = served
    rng = random.Random(seed)
    items = [{"signal": "pdq", "hash": random_pdq(rng), "quality": 100, "labels": ["glorification"]}
             for _ in range(n)]
    return [r["ids"][0] for r in Client(server.url, keys["alpha"]).submit(items)]


def test_sync_mirrors_the_server_and_lookups_stay_local(served, media, tmp_path):
    server, keys = served
    mirror = tmp_path / "mirror.sqlite"
    done = hashdb("submit", "--json", "--server", server.url, "--api-key", keys["alpha"],
                  str(media / "chelsea.jpg"), str(media / "coffee.jpg"), "--label", "glorification")
    assert done.returncode == 0, done.stderr
    chelsea_ids = json.loads(done.stdout.splitlines()[0])["ids"]

    first = hashdb(*sync_args(served, mirror, "partner", "--json", "--batch", "3"))
    assert first.returncode == 0, first.stderr
    assert sum(p["added"] for p in pages(first.stdout)) >= len(chelsea_ids) + 4
    assert live_set(mirror) == live_set(server.db)

    query = [str(media / "chelsea_jpeg30.jpg"), str(media / "rocket.jpg")]
    looked = hashdb("lookup", "--json", "--db", str(mirror), *query)
    assert looked.returncode == 0, looked.stderr
    near, unrelated = pages(looked.stdout)
    assert near["matched"] and {m["signal"] for m in near["matches"]} >= {"pdq"}
    assert not unrelated["matched"]
    # The server's access log shows every request it answered: the sync's, and no lookup.
    log = server.log.read_text()
    assert "GET /v1/export" in log and "/v1/lookup" not in log

    gone = hashdb("retract", "--server", server.url, "--api-key", keys["alpha"], *map(str, chelsea_ids))
    assert gone.returncode == 0, gone.stderr
    second = hashdb(*sync_args(served, mirror))
    assert second.returncode == 0, second.stderr
    assert f"{len(chelsea_ids)} retracted" in second.stdout and second.stdout.endswith("up to date; mirror in "
                                                                                      f"{mirror}\n")
    assert not pages(hashdb("lookup", "--json", "--db", str(mirror), query[0]).stdout)[0]["matched"]
    assert live_set(mirror) == live_set(server.db)

    again = hashdb(*sync_args(served, mirror, "partner", "--json"))
    assert [(p["changes"], p["added"]) for p in pages(again.stdout)] == [(0, 0)]  # nothing new, nothing doubled


def test_a_killed_sync_resumes_exactly(served, tmp_path):
    server, keys = served
    ids = submit_random(served, 60, seed=31)
    operator = open_database(server.db)
    try:  # label and status changes and retractions interleaved with the additions
        admin = admin_of(operator)
        for record_id in ids[::7]:
            operator.quarantine(record_id, admin, "member report")
        for record_id in ids[3::9]:
            operator.store.set_labels(record_id, ["recruitment_instruction"], admin)
        for record_id in ids[5::6]:
            operator.retract(record_id, admin, "mistake")
    finally:
        operator.store.close()
    submit_random(served, 20, seed=32)
    mirror = tmp_path / "mirror.sqlite"
    source = Source.from_url(server.url)
    partner = Client(server.url, keys["partner"])
    rng = random.Random(33)
    cursors = []
    for attempt in range(4):
        process = subprocess.Popen([*HASHDB, *sync_args(served, mirror, "partner", "--json", "--batch", "2")],
                                   cwd=ROOT, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True)
        for _ in range(1 + attempt):  # a few pages in, then at a moment of no one's choosing
            assert process.stdout is not None and process.stdout.readline(), process.stderr.read()  # type: ignore[union-attr]
        time.sleep(rng.uniform(0, 0.03))
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=TIMEOUT_S)
        store = SQLiteStore(mirror)
        cursor = store.mirror_cursor(source.key)
        store.close()
        # What the mirror holds is exactly the server's feed up to its cursor: no entry lost,
        # none applied twice.
        later = {doc["seq"] for doc in partner.export(cursor, 10_000)[0]}
        server_docs = feed_docs_of(server.db)
        upto = max((d["seq"] for d in server_docs if d["seq"] not in later), default=0)
        assert live_set(mirror) == fold(server_docs, upto)
        cursors.append(upto)
    # At least one kill must have landed mid-feed (on a loaded machine a later attempt may
    # finish the feed before its kill arrives; that one then proves nothing, and need not).
    head = max(d["seq"] for d in feed_docs_of(server.db))
    assert any(0 < cursor < head for cursor in cursors), f"every kill came after the end: {cursors}"
    finished = hashdb(*sync_args(served, mirror))
    assert finished.returncode == 0, finished.stderr
    assert live_set(mirror) == live_set(server.db)


def feed_docs_of(db: Path) -> list[dict]:
    service = open_database(db)
    try:
        return feed_docs(service)
    finally:
        service.store.close()


def test_a_consumer_key_is_refused(served, tmp_path):
    mirror = tmp_path / "mirror.sqlite"
    refused = hashdb(*sync_args(served, mirror, "consumer"))
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
    assert "refused the export (HTTP 403" in refused.stderr and "partner" in refused.stderr
    assert live_set(mirror) == {}


def follow_until_stopped(served, mirror: Path, sigint: signal.Handlers, stop: signal.Signals,
                         meanwhile: Callable[[], None] = lambda: None) -> None:
    """Run `hashdb sync --follow` with SIGINT set to `sigint` in the child, wait for its first
    pass, run `meanwhile`, send `stop`, and check it stopped cleanly, saying so."""
    process = subprocess.Popen([*HASHDB, *sync_args(served, mirror, "partner", "--json", "--follow",
                                                     "--interval", "0.2")],
                               cwd=ROOT, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, sigint))
    try:
        assert process.stdout is not None and process.stdout.readline()
        meanwhile()
        process.send_signal(stop)
        _, err = process.communicate(timeout=TIMEOUT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "stopped; the next sync resumes" in err


def test_follow_keeps_the_mirror_current_until_stopped(served, tmp_path):
    mirror = tmp_path / "mirror.sqlite"

    def new_record_arrives() -> None:
        [new] = submit_random(served, 1, seed=34)
        wanted = live_set(served[0].db)
        deadline = time.monotonic() + TIMEOUT_S
        while live_set(mirror) != wanted and time.monotonic() < deadline:
            time.sleep(0.2)
        assert live_set(mirror) == wanted, f"record {new} never reached the mirror"

    # SIGINT as a terminal's Ctrl-C sends it, even when this suite runs with SIGINT ignored (a
    # background job, nohup), which the child would otherwise inherit.
    follow_until_stopped(served, mirror, signal.SIG_DFL, signal.SIGINT, new_record_arrives)


def test_follow_stops_on_sigterm_where_sigint_is_ignored(served, tmp_path):
    # Issue item 20: with SIGINT ignored (nohup, a background job, some CI runners) the follower
    # could only be killed, and SIGTERM killed it without a word.
    follow_until_stopped(served, tmp_path / "mirror.sqlite", signal.SIG_IGN, signal.SIGTERM)


def test_syncing_a_server_into_its_own_database_is_refused(served):
    server, keys = served
    before = live_set(server.db)
    done = hashdb(*sync_args(served, server.db))
    assert done.returncode == 1
    assert done.stderr.strip() == (f"Error: --db {server.db} is the database the server at {server.url} serves "
                                   "(--api-key is one of its keys): a mirror needs a database of its own")
    assert live_set(server.db) == before


def test_an_export_cursor_past_the_feed_is_refused(served):
    server, keys = served
    ahead = Client(server.url, keys["partner"])
    from hashdb.service import encode_cursor
    answer = server.request("GET", f"/v1/export?since={encode_cursor(2**62)}", key=keys["partner"])
    assert answer.status == 400 and "past the end of this feed" in answer.json()["error"]["message"]
    docs, cursor = ahead.export(None, 1000)
    assert server.request("GET", f"/v1/export?since={cursor}", key=keys["partner"]).status == 200


def test_the_same_server_under_another_name_is_not_mirrored_twice(served, tmp_path):
    # Synced as http://127.0.0.1:PORT and then as http://localhost:PORT, a mirror held every
    # record twice (two sources, mirror:127.0.0.1:PORT and mirror:localhost:PORT), and a lookup
    # counted each twice. The server names its feed; the second URL is refused, naming the first.
    server, keys = served
    submit_random(served, 3, seed=41)
    mirror = tmp_path / "mirror.sqlite"
    first = hashdb(*sync_args(served, mirror))
    assert first.returncode == 0, first.stderr
    held = live_set(mirror)
    assert held == live_set(server.db)
    alias = server.url.replace("127.0.0.1", "localhost")
    assert alias != server.url
    again = hashdb("sync", "--from", alias, "--api-key", keys["partner"], "--db", str(mirror))
    assert again.returncode == 1 and again.stderr.count("\n") == 1, again.stderr
    assert again.stderr.startswith(f"Error: {alias} serves the feed this mirror already follows as {server.url}: "
                                   f"sync from {server.url}")
    assert live_set(mirror) == held
    assert hashdb(*sync_args(served, mirror)).returncode == 0  # the first name goes on as before
    # Another mirror may follow the second name: the identity binds names within one mirror only.
    assert hashdb("sync", "--from", alias, "--api-key", keys["partner"],
                  "--db", str(tmp_path / "other.sqlite")).returncode == 0


def test_a_feed_identity_is_the_database_s(served, tmp_path):
    import hashlib
    import sqlite3
    from contextlib import closing

    server, keys = served
    _, _, identity = Client(server.url, keys["partner"]).export_page(None, 1)
    with closing(sqlite3.connect(f"file:{server.db}?mode=ro", uri=True)) as connection:
        (database_id,), = connection.execute("SELECT id FROM database_identity").fetchall()
    assert identity == hashlib.sha256(b"hashdb change feed identity\0" + database_id.encode()).hexdigest()[:32]
    backup = tmp_path / "backup.sqlite"  # a restored backup is the same database, and feed
    with closing(sqlite3.connect(server.db)) as live, closing(sqlite3.connect(backup)) as copy:
        live.backup(copy)
    for path, same in ((backup, True), (tmp_path / "other.sqlite", False)):
        service = open_database(path)
        try:
            assert (service.feed_identity() == identity) is same
        finally:
            service.store.close()


@pytest.mark.parametrize("longer", [False, True], ids=["shorter", "longer"])
def test_a_database_replaced_behind_the_same_url_is_not_mirrored_on(served, tmp_path, longer):
    # The server's database replaced by another (the server secret kept, so its keys still
    # worked): the mirror went on from its cursor, skipping the new database's first changes and
    # filing both databases' records under one source. Its feed is another now: refused.
    from hashdb.errors import InvalidInput
    from hashdb.partners import mirror as mirroring
    from hashdb.types import Principal

    server, keys = served
    submit_random(served, 3, seed=43)
    mirror = tmp_path / "mirror.sqlite"
    assert hashdb(*sync_args(served, mirror)).returncode == 0
    held = live_set(mirror)
    replaced_db = tmp_path / "replaced" / "server.sqlite"
    replaced_db.parent.mkdir()
    with serving(replaced_db, ROLES) as replaced:
        # Shorter, it refuses the mirror's cursor (past its end); longer, it would answer it.
        followed = len(Client(server.url, keys["partner"]).export(None, 10_000)[0])
        submit_random(replaced, followed + 5 if longer else 2, seed=44)
        replacement, replacement_keys = replaced
        service = open_database(mirror)
        try:
            actor = Principal(service.store.ensure_org("local").id, "local", "admin")
            with pytest.raises(InvalidInput, match=r"now serves another database's feed .* mirror it into a new "
                                                   r"database \(another --db\)"):
                mirroring.sync(service, Client(replacement.url, replacement_keys["partner"]),
                               Source.from_url(server.url), actor, 1000, lambda page: None)
        finally:
            service.store.close()
    assert live_set(mirror) == held
    assert hashdb(*sync_args(served, mirror)).returncode == 0  # the database it follows goes on


def test_a_feed_identity_that_is_not_a_short_token_is_not_kept(tmp_path):
    from hashdb.partners import mirror
    from hashdb.types import Principal

    class Feed:
        def __init__(self, identity: str) -> None:
            self.identity = identity

        def export_page(self, since=None, limit=1000, keypoints=False):
            return [], since or "djE6MA", self.identity

    service = open_database(tmp_path / "mirror.sqlite")
    try:
        actor = Principal(service.store.ensure_org("local").id, "local", "admin")
        for url, identity in (("http://a.example", "x" * 100_000), ("http://b.example", "ab\ncd")):
            mirror.sync(service, Feed(identity), Source.from_url(url), actor, 10, lambda page: None)
            assert service.store.mirror_source_of_feed(identity) is None
        mirror.sync(service, Feed("0f" * 16), Source.from_url("http://c.example"), actor, 10, lambda page: None)
        assert service.store.mirror_source_of_feed("0f" * 16) == "http://c.example"
    finally:
        service.store.close()


def test_an_imported_export_and_a_sync_of_the_same_server_are_not_held_twice(served, tmp_path):
    # The README's export, imported with no --source, then kept current with `sync`: every record
    # was held twice (sources "file" and the URL), and one retracted at the source still matched
    # through the imported copy. Each export line names its database's feed now.
    server, keys = served
    submit_random(served, 3, seed=45)
    exported = hashdb("export", "--server", server.url, "--api-key", keys["partner"])
    assert exported.returncode == 0, exported.stderr
    feed_file = tmp_path / "feed.jsonl"
    feed_file.write_text(exported.stdout)
    lines = [json.loads(line) for line in exported.stdout.splitlines()]
    _, _, identity = Client(server.url, keys["partner"]).export_page(None, 1)
    assert {line["feed"] for line in lines} == {identity}

    mirror = tmp_path / "mirror.sqlite"
    assert hashdb("import", "--db", str(mirror), str(feed_file)).returncode == 0
    held = live_set(mirror)
    assert held == live_set(server.db)
    synced = hashdb(*sync_args(served, mirror))
    assert synced.returncode == 1 and synced.stderr.count("\n") == 1, synced.stderr
    assert synced.stderr.startswith(f"Error: this mirror already holds {server.url}'s feed from an imported export "
                                    "(source file)")
    assert live_set(mirror) == held
    # Under a second name, the same export is refused too; under the first, it changes nothing.
    again = hashdb("import", "--db", str(mirror), "--source", "partner-b", str(feed_file))
    assert again.returncode == 1 and "is an export of the feed this mirror already holds as file: import it " \
                                      "with --source file" in again.stderr
    assert json.loads(hashdb("import", "--json", "--db", str(mirror), str(feed_file)).stdout)["added"] == 0

    # Synced first, an export of the same server imports only under its URL.
    synced_first = tmp_path / "synced.sqlite"
    assert hashdb(*sync_args(served, synced_first)).returncode == 0
    plain = hashdb("import", "--db", str(synced_first), str(feed_file))
    assert plain.returncode == 1 and f"import it with --source {server.url}" in plain.stderr
    continued = hashdb("import", "--json", "--db", str(synced_first), "--source", server.url, str(feed_file))
    assert continued.returncode == 0 and json.loads(continued.stdout)["added"] == 0
    assert live_set(synced_first) == live_set(server.db)


def test_exports_of_two_databases_are_not_taken_for_one(served, tmp_path):
    # Both imported with no --source, the second database's record 1 was applied as a change of
    # the first's record 1: their ids are each database's own.
    server, keys = served
    ours = tmp_path / "ours.jsonl"
    ours.write_text(hashdb("export", "--server", server.url, "--api-key", keys["partner"]).stdout)
    other_db = tmp_path / "other.sqlite"
    share = hashdb("submit", "--db", str(other_db), "--label", "glorification", "md5:" + "7" * 32)
    assert share.returncode == 0, share.stderr
    theirs = tmp_path / "theirs.jsonl"
    theirs.write_text(hashdb("export", "--db", str(other_db)).stdout)
    mirror = tmp_path / "mirror.sqlite"
    assert hashdb("import", "--db", str(mirror), str(ours)).returncode == 0
    held = live_set(mirror)
    refused = hashdb("import", "--db", str(mirror), str(theirs))
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1
    assert refused.stderr == (f"Error: {theirs} is an export of another database than the one this mirror holds "
                              "as file: import it with a --source of its own\n")
    assert live_set(mirror) == held
    assert hashdb("import", "--db", str(mirror), "--source", "other", str(theirs)).returncode == 0
    both = tmp_path / "both.jsonl"
    both.write_text(ours.read_text() + theirs.read_text())
    mixed = hashdb("import", "--db", str(tmp_path / "fresh.sqlite"), str(both))
    assert mixed.returncode == 1 and "holds the feeds of 2 databases" in mixed.stderr


def test_a_database_s_own_export_is_not_imported_into_it_or_a_copy(tmp_path):
    # Found by trying it: a copy of a database (`cp`, a backup) keeps its identity; its own export
    # imported into the copy held every record twice, and the copy of a record retracted there
    # went on matching.
    original = tmp_path / "main.sqlite"
    assert hashdb("submit", "--db", str(original), "--label", "glorification", "md5:" + "7" * 32).returncode == 0
    feed_file = tmp_path / "feed.jsonl"
    feed_file.write_text(hashdb("export", "--db", str(original)).stdout)
    copy = tmp_path / "copy.sqlite"
    shutil.copyfile(original, copy)
    for target in (original, copy):
        held = live_set(target)
        refused = hashdb("import", "--db", str(target), "--source", "again", str(feed_file))
        assert refused.returncode == 1 and refused.stderr.count("\n") == 1, refused.stderr
        assert f"{feed_file} is an export of this database itself (or of a copy of it" in refused.stderr
        assert live_set(target) == held
    # Any other database takes it.
    assert hashdb("import", "--db", str(tmp_path / "mirror.sqlite"), str(feed_file)).returncode == 0


def test_a_mirror_does_not_go_on_past_a_restore_of_its_source(tmp_path):
    # The source restored from an older backup, then written to past the mirror's cursor: the
    # mirror went on from it, never fetching the changes the source reissued at the sequence
    # numbers it had held, and kept the records the restore took out, matching on under ids that
    # now name other records at the source. The cursor carries a check of the change it names.
    import sqlite3
    from contextlib import closing

    from serverproc import start_server

    from hashdb.service import encode_cursor

    origin = tmp_path / "origin.sqlite"
    mirror = tmp_path / "mirror.sqlite"
    backup = tmp_path / "backup.sqlite"
    with serving(origin, ROLES) as served:
        submit_random(served, 3, seed=51)
        with closing(sqlite3.connect(origin)) as live, closing(sqlite3.connect(backup)) as copy:
            live.backup(copy)
        submit_random(served, 4, seed=52)
        assert hashdb(*sync_args(served, mirror)).returncode == 0
        keys, port = served[1], served[0].port
    held = live_set(mirror)
    for leftover in (origin.with_name(origin.name + "-wal"), origin.with_name(origin.name + "-shm")):
        leftover.unlink(missing_ok=True)
    shutil.copyfile(backup, origin)
    restored = start_server(origin, workers=1, env={"HASHDB_RATE_LIMIT": "0"}, port=port)
    try:
        # Restored, the source is shorter than the mirror's cursor: refused as before.
        refused = hashdb(*sync_args((restored, keys), mirror))
        assert refused.returncode == 1 and "past the end of this feed" in refused.stderr
        submit_random((restored, keys), 9, seed=53)  # now longer than the feed the mirror followed
        forked = hashdb(*sync_args((restored, keys), mirror))
        assert forked.returncode == 1, forked.stdout
        assert "restored from an older backup after the cursor was issued" in forked.stderr
        assert forked.stderr.count("\n") == 1 and "Traceback" not in forked.stderr
        assert live_set(mirror) == held
        # The answer names its code, which a client maps back to its error.
        docs, cursor = Client(restored.url, keys["partner"]).export(None, 1000)
        with pytest.raises(Exception) as raised:
            Client(restored.url, keys["partner"]).export(_cursor_of(mirror, restored.url), 1000)
        assert type(raised.value).__name__ == "ForkedCursor"
        # A cursor within the history both share goes on, and so does one of the time before
        # cursors were checked (v1: the sequence alone).
        assert Client(restored.url, keys["partner"]).export(encode_cursor(2), 1000)[0] == docs[2:]
        fresh = tmp_path / "fresh.sqlite"
        assert hashdb(*sync_args((restored, keys), fresh)).returncode == 0
        assert live_set(fresh) == live_set(origin)
    finally:
        restored.stop()


def _cursor_of(mirror: Path, url: str) -> str:
    service = open_database(mirror)
    try:
        cursor = service.store.mirror_cursor(Source.from_url(url).key)
        assert cursor is not None
        return cursor
    finally:
        service.store.close()
