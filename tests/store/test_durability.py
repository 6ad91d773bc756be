"""An acknowledged write survives the writer being killed, and concurrent writers never lose one.

SIGKILL tests the store's side of durability (a commit is complete before add_records returns;
nothing acknowledged waits in a buffer of ours). Power loss is the OS's side: for that the
file store must run with synchronous=FULL in WAL mode, which is checked here too.
"""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from hashdb.store.postgres_store import PostgresStore
from hashdb.store.sql import SQLStore
from hashdb.store.sqlite_store import SQLiteStore

SUBMITTER = Path(__file__).with_name("submitter.py")


def start(kind: str, target: str, first: int, count: int = -1, barrier: bool = False) -> subprocess.Popen[str]:
    args = [sys.executable, str(SUBMITTER), kind, target, str(first), str(count)]
    if barrier:
        args.append("--barrier")
    return subprocess.Popen(args, stdin=subprocess.PIPE if barrier else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def parse(line: str) -> tuple[int, int, bool]:
    n, record_id, duplicate = line.split()
    return int(n), int(record_id), duplicate == "1"


def kill_after(kind: str, target: str, first: int, acknowledged: int) -> dict[int, int]:
    """Run a submitter, SIGKILL it once `acknowledged` ids are printed; returns every id it
    acknowledged, including any already in the pipe when it died."""
    child = start(kind, target, first)
    assert child.stdout is not None
    acked: dict[int, int] = {}
    try:
        while len(acked) < acknowledged:
            line = child.stdout.readline()
            assert line, f"submitter exited early: {child.wait()} {child.stderr.read() if child.stderr else ''}"
            n, record_id, _ = parse(line)
            acked[n] = record_id
        child.send_signal(signal.SIGKILL)
        rest, _ = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL
    for line in rest.splitlines(keepends=True):
        if line.endswith("\n"):  # a line cut by the kill was never a whole acknowledgement
            n, record_id, _ = parse(line)
            acked[n] = record_id
    return acked


def assert_all_there(store: SQLStore, acked: dict[int, int]) -> None:
    records = store.get_records(list(acked.values()))
    missing = {n: i for n, i in acked.items() if i not in records}
    assert not missing, f"acknowledged but lost: {missing}"
    assert all(records[i].value == f"{n:064x}" for n, i in acked.items())
    added = {c.record_id for c in store.changes_since(0, 1_000_000) if c.kind == "add"}
    assert set(acked.values()) <= added, "an acknowledged record has no change-log row"


def sqlite_kills(path: Path, kill_points: list[int]) -> None:
    acked: dict[int, int] = {}
    for round_, point in enumerate(kill_points):
        acked.update(kill_after("sqlite", str(path), round_ * 100_000, point))
        store = SQLiteStore(path)
        try:
            assert store.db.conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            assert_all_there(store, acked)
        finally:
            store.close()


def test_sqlite_keeps_every_acknowledged_write(tmp_path: Path) -> None:
    sqlite_kills(tmp_path / "store.sqlite", [1, 6, 17])


@pytest.mark.slow
def test_sqlite_kill_soak(tmp_path: Path) -> None:
    rng = random.Random(7)
    sqlite_kills(tmp_path / "store.sqlite", [rng.randint(1, 300) for _ in range(25)])


@pytest.mark.postgres
def test_postgres_keeps_every_acknowledged_write(postgres_dsn: str) -> None:
    acked: dict[int, int] = {}
    for round_, point in enumerate([3, 11]):
        acked.update(kill_after("postgres", postgres_dsn, round_ * 100_000, point))
        store = PostgresStore(postgres_dsn)
        try:
            assert_all_there(store, acked)
        finally:
            store.close()


def test_file_store_runs_wal_with_full_sync(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "store.sqlite")
    try:
        conn = store.db.conn
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
    finally:
        store.close()
    # WAL is a property of the file: any later connection finds it.
    other = sqlite3.connect(tmp_path / "store.sqlite")
    assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    other.close()


def run_together(path: Path, firsts: list[int], count: int) -> list[list[tuple[int, int, bool]]]:
    """Start one submitter per entry of `firsts` on the same fresh file, released together once
    every one has imported the store and said so (a barrier, not a guess at import time)."""
    children = [start("sqlite", str(path), first, count, barrier=True) for first in firsts]
    for child in children:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line == "ready\n", f"submitter failed before the barrier: {child.communicate(timeout=30)[1]}"
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    results = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        assert "locked" not in err
        results.append([parse(line) for line in out.splitlines()])
    return results


def test_two_processes_never_lose_a_write(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"  # fresh: both also race to create and migrate it
    a, b = run_together(path, [0, 1_000], 25)
    assert len(a) == len(b) == 25
    acked = {n: i for n, i, _ in a + b}
    assert len(set(acked.values())) == 50
    store = SQLiteStore(path)
    try:
        assert_all_there(store, acked)
        assert store.last_seq() == 50
    finally:
        store.close()


def test_two_processes_submitting_the_same_hashes_store_each_once(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    a, b = run_together(path, [0, 0], 20)
    # Whoever committed first added it; the other got the same id back as a duplicate.
    assert [(n, i) for n, i, _ in a] == [(n, i) for n, i, _ in b]
    assert all(da != db for (_, _, da), (_, _, db) in zip(a, b))
    store = SQLiteStore(path)
    try:
        assert store.counts()["signal"] == {"pdq": 20}
        assert store.last_seq() == 20
    finally:
        store.close()
