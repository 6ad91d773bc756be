"""The server secret file: created once, atomically, even when several processes start at once
(gunicorn workers, a CLI beside a server), and never read back empty or cut short."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hashdb.errors import InvalidInput
from hashdb.trust.keys import load_server_secret

PROCESSES = 6
FILES = 150

# Each child imports first, waits at the barrier, then races the others through FILES fresh
# paths in the same order, printing what it read for each (or the error it got).
CHILD = textwrap.dedent("""
    import sys
    from pathlib import Path
    from hashdb.trust.keys import load_server_secret
    folder = Path(sys.argv[1])
    print("ready", flush=True)
    sys.stdin.readline()
    for n in range(int(sys.argv[2])):
        try:
            print(n, load_server_secret(None, folder / f"{n}.secret").decode() or "EMPTY")
        except Exception as exc:
            print(n, "ERROR", type(exc).__name__)
""")


def test_concurrent_first_starts_agree_on_one_whole_secret(tmp_path: Path) -> None:
    children = [subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path), str(FILES)], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for _ in range(PROCESSES)]
    for child in children:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    seen: dict[int, set[str]] = {}
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        for line in out.splitlines():
            n, value = line.split(" ", 1)
            seen.setdefault(int(n), set()).add(value)
    assert len(seen) == FILES
    for n, values in seen.items():
        on_disk = (tmp_path / f"{n}.secret").read_text().strip()
        assert values == {on_disk}, f"file {n}: processes read {values}"
        assert len(on_disk) == 64 and int(on_disk, 16) >= 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{n}.secret" for n in range(FILES))


def test_the_secret_file_is_private_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite.secret"
    first = load_server_secret(None, path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_server_secret(None, path) == first == path.read_bytes()


@pytest.mark.parametrize("content", [b"", b"\n", b"abc123"])
def test_an_empty_or_cut_secret_file_is_refused_not_used(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "db.sqlite.secret"
    path.write_bytes(content)
    with pytest.raises(InvalidInput, match="empty or too short"):
        load_server_secret(None, path)
    assert path.read_bytes() == content  # left for the operator to restore, not overwritten


def test_hashdb_secret_wins_over_the_file_and_must_be_long(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite.secret"
    assert load_server_secret("x" * 40, path) == b"x" * 40
    assert not path.exists()
    with pytest.raises(InvalidInput, match="at least 32"):
        load_server_secret("short", path)
