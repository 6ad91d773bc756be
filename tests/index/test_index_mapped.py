"""A loaded snapshot is a map of the saved files, not a copy: loading reads nothing into the
index's own memory, every write after it (add, re-add, remove) works and is answered like on
an index built in memory, and the saved files are never modified, so other processes mapping
them keep seeing the snapshot."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from _index_data import random_codes, search_both

from hashdb.index.base import load_index
from hashdb.index.faiss_index import FaissIndex
from hashdb.index.linear import LinearIndex


def digests(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in directory.iterdir() if p.is_file()}


def test_writes_after_a_mapped_load_leave_the_saved_files_alone(tmp_path):
    rng = np.random.default_rng(5)
    codes = random_codes(rng, 3000, 256)
    ids = np.arange(10, 3010)
    built = FaissIndex(256, large_min_size=1000, delta_limit=64)
    built.add(ids, codes)
    built.save(tmp_path / "pdq.faiss", 1)
    before = digests(tmp_path)

    loaded, _ = load_index(tmp_path / "pdq.faiss")
    assert isinstance(loaded, FaissIndex) and loaded.structure == "mih"
    assert not loaded._flat.xb.is_owned  # mapped: nothing copied at load
    oracle = LinearIndex(256)
    oracle.add(ids, codes)

    more = random_codes(rng, 200, 256)
    changed = random_codes(rng, 5, 256)
    for index in (loaded, oracle):
        index.add(np.arange(5000, 5200), more)  # past the delta: merged into the tables
        index.add(ids[:5], changed)  # new codes for stored ids
        index.add(ids[5:8], codes[5:8])  # the same codes again
        index.remove(ids[20:40])
    queries = np.concatenate([codes[:50], more[:20], changed])
    assert search_both(loaded, queries, 31) == oracle.search(queries, 31)
    assert digests(tmp_path) == before
