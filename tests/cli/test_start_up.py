"""What `hashdb` imports before it does anything: every import a command makes before a folder's
workers start runs on one core while the others wait, and `hashdb --help` or a single file pays
all of it. Each command is run in a fresh interpreter, which reports the modules loaded when the
worker pool started and at exit."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from support import empty_database

# Runs `hashdb ARGS...` (the console script's entry point); prints {"pool": modules when the
# process pool started, or null, "exit": modules at exit, "code": the exit status}.
PROBE = """
import json, sys
import concurrent.futures.process as cfp
seen = {}
start = cfp.ProcessPoolExecutor.__init__
def started(self, *args, **kwargs):
    seen.setdefault("pool", sorted(sys.modules))
    start(self, *args, **kwargs)
cfp.ProcessPoolExecutor.__init__ = started
from hashdb.cli import main
try:
    main()
except SystemExit as exit:
    code = exit.code
sys.stdout.flush()
print(json.dumps({"pool": seen.get("pool"), "exit": sorted(sys.modules), "code": code}), file=sys.stderr)
"""

# For searching, storing and serving: no command that only hashes, or only prints its help,
# has a use for them. (tqdm: the progress bar, drawn only on a terminal.)
NEVER_FOR_HASHING = ("flask", "werkzeug", "gunicorn", "faiss", "psycopg", "sqlite3", "sqlite_utils", "tqdm",
                     "http.client", "hashdb.api", "hashdb.store", "hashdb.index", "hashdb.partners",
                     "hashdb.service.core", "hashdb.trust.webhooks")
# What hashing itself needs, and the CLI's help does not.
HASHING = ("numpy", "PIL", "cv2", "imagehash", "hashdb.hashing", "hashdb.service", "hashdb.types")


def run(*args: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=300)
    report = json.loads(done.stderr.strip().splitlines()[-1])
    assert report["code"] in (0, None), done.stderr
    return report


def loaded(modules: object, prefixes: tuple[str, ...]) -> list[str]:
    assert isinstance(modules, list)
    return sorted({p for p in prefixes for m in modules if m == p or m.startswith(p + ".")})


def folder(media: Path, tmp_path: Path) -> Path:
    images = tmp_path / "images"
    images.mkdir()
    for name in ("astronaut.jpg", "camera.png"):
        shutil.copy(media / name, images / name)
    return images


def test_help_loads_no_hashing_and_no_store() -> None:
    report = run("--help")
    assert loaded(report["exit"], NEVER_FOR_HASHING + HASHING) == []


def test_hash_loads_neither_a_store_nor_an_index_nor_a_server(media: Path, tmp_path: Path) -> None:
    report = run("hash", "--json", "--jobs", "2", str(folder(media, tmp_path)))
    assert report["pool"] is not None, "two files on two processes start a pool"
    assert loaded(report["pool"], HASHING) == sorted(HASHING), "the workers are forked with hashing loaded"
    assert loaded(report["exit"], NEVER_FOR_HASHING) == []


def test_lookup_opens_the_database_only_once_the_workers_hash(media: Path, tmp_path: Path) -> None:
    db = empty_database(tmp_path / "db.sqlite")
    report = run("lookup", "--json", "--jobs", "2", "--db", str(db), str(folder(media, tmp_path)))
    assert loaded(report["pool"], NEVER_FOR_HASHING) == []
    # The probe can see what it looks for: the parent opened the store and its index after.
    assert {"sqlite_utils", "hashdb.store", "hashdb.index"} <= set(loaded(report["exit"], NEVER_FOR_HASHING))


def test_the_program_closes_the_database_on_the_way_out(media: Path, tmp_path: Path) -> None:
    # main() skips the interpreter's collections at exit after a command that succeeded: what
    # the command left for them (the store's connection) must be closed all the same, or
    # SQLite leaves its -wal and -shm files beside the database.
    db = tmp_path / "db.sqlite"
    program = [sys.executable, "-c", "from hashdb.cli import main; main()"]
    for args in (["submit", "--label", "glorification", str(media / "astronaut.jpg")],
                 ["lookup", str(media / "astronaut.jpg")], ["submit", "--label", "nonesuch", str(media / "camera.png")]):
        done = subprocess.run([*program, *args, "--db", str(db)], capture_output=True, text=True, timeout=300)
        assert done.returncode == (1 if "nonesuch" in args else 0), done.stderr
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("db.sqlite-")) == []
