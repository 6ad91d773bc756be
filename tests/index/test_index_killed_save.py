"""A process killed (SIGKILL) half-way through saving an index leaves files behind: the next
save or load of that path removes them, and never the committed snapshot's own files."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import numpy as np

from hashdb.index._files import read_manifest
from hashdb.index.base import load_index
from hashdb.index.faiss_index import FaissIndex
from hashdb.index.indexset import INDEXED_SIGNALS, IndexSet
from hashdb.store.sqlite_store import SQLiteStore

# Saves an index of `count` codes at argv[1], but SIGKILLs itself right after the first data
# file is written: what a machine losing power or an OOM kill does mid-save.
KILLED_SAVE = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    import numpy as np
    from hashdb.index import _files
    from hashdb.index.faiss_index import FaissIndex

    real = _files._fsync_path
    def fsync_then_die(path, directory=False):
        real(path, directory)
        os.kill(os.getpid(), signal.SIGKILL)
    _files._fsync_path = fsync_then_die
    index = FaissIndex(256, large_min_size=100)
    rng = np.random.default_rng(int(sys.argv[2]))
    index.add(np.arange(1, 501), rng.integers(0, 256, size=(500, 32), dtype=np.uint8))
    index.save(Path(sys.argv[1]), 7)
""")


def killed_save(path, seed: int) -> None:
    done = subprocess.run([sys.executable, "-c", KILLED_SAVE, str(path), str(seed)], capture_output=True)
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()


def saved_index(path, seq: int) -> FaissIndex:
    index = FaissIndex(256, large_min_size=100)
    rng = np.random.default_rng(1)
    index.add(np.arange(1, 301), rng.integers(0, 256, size=(300, 32), dtype=np.uint8))
    index.save(path, seq)
    return index


def files_of(directory) -> set[str]:
    return {p.name for p in directory.iterdir() if not p.name.endswith(".lock")}


def test_the_next_save_removes_what_a_killed_save_left(tmp_path):
    path = tmp_path / "pdq.faiss"
    saved_index(path, 3)
    committed = files_of(tmp_path)
    for seed in range(3):
        killed_save(path, seed)
    assert files_of(tmp_path) > committed  # the kills left files behind
    assert read_manifest(path).covers_seq == 3  # and the committed snapshot still stands
    saved_index(path, 4)
    manifest = read_manifest(path)
    assert files_of(tmp_path) == {path.name, *manifest.files.values()}
    index, seq = load_index(path)
    assert seq == 4 and len(index) == 300


def test_loading_the_index_set_removes_what_a_killed_save_left(tmp_path):
    store = SQLiteStore(tmp_path / "db.sqlite")
    directory = tmp_path / "index"
    indexes = IndexSet(store, directory)
    indexes.load()  # builds and saves every signal's snapshot
    committed = files_of(directory)
    killed_save(directory / "pdq.faiss", 1)
    assert files_of(directory) > committed
    IndexSet(store, directory).load()
    assert files_of(directory) == committed
    assert set(INDEXED_SIGNALS) <= {name.split(".")[0] for name in committed}
    store.close()
