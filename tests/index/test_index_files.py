"""Saving and loading: round trips give identical answers and the covered sequence; a failed or
damaged save never yields a wrong index, only IndexStale."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _index_data import flip_bits, random_codes

from hashdb.errors import IndexStale, InvalidInput
from hashdb.index.base import HashIndex, load_index
from hashdb.index.faiss_index import FaissIndex
from hashdb.index.linear import LinearIndex


def filled(index: HashIndex, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    codes = random_codes(rng, n, index.bits)
    for i in range(1, n, 3):
        codes[i] = flip_bits(rng, codes[i - 1], int(rng.integers(0, 40)))
    ids = rng.choice(10**9, size=n, replace=False).astype(np.int64)
    index.add(ids, codes)
    queries = np.stack([flip_bits(rng, codes[i], 5) for i in range(0, n, max(1, n // 20))])
    return ids, queries


def make(kind: str, bits: int) -> HashIndex:
    if kind == "linear":
        return LinearIndex(bits)
    if kind == "faiss-flat":
        return FaissIndex(bits, large_min_size=10**9)
    return FaissIndex(bits, large_min_size=100, mih_work_divisor=0)


@pytest.mark.parametrize("kind", ["linear", "faiss-flat", "faiss-mih"])
@pytest.mark.parametrize("bits", [64, 256])
def test_round_trip_gives_identical_results_and_covers_seq(tmp_path: Path, kind: str, bits: int) -> None:
    index = make(kind, bits)
    ids, queries = filled(index, 400)
    index.remove(ids[:30].tolist())
    index.add(ids[30:40], random_codes(np.random.default_rng(1), 10, bits))  # replacements
    before = {r: index.search(queries, r) for r in (0, 10, 31, 32)}
    index.save(tmp_path / "x.index", covers_seq=12345)

    loaded, seq = load_index(tmp_path / "x.index")
    assert seq == 12345
    assert type(loaded) is type(index)
    assert len(loaded) == len(index) == 370
    assert {r: loaded.search(queries, r) for r in (0, 10, 31, 32)} == before
    if kind == "faiss-mih":
        assert isinstance(loaded, FaissIndex) and loaded.structure == "mih"
    # The loaded index keeps working as an index.
    loaded.remove([int(ids[50])])
    assert all(k != int(ids[50]) for hits in loaded.search(queries, bits) for k, _ in hits)


def test_saving_again_replaces_and_cleans_up_the_previous_files(tmp_path: Path) -> None:
    index = FaissIndex(256, large_min_size=50)
    filled(index, 120)
    target = tmp_path / "pdq.index"
    index.save(target, 1)
    first = set(p.name for p in tmp_path.iterdir())
    index.add([7], random_codes(np.random.default_rng(2), 1, 256))
    index.save(target, 2)
    second = set(p.name for p in tmp_path.iterdir())
    assert load_index(target)[1] == 2
    assert len(load_index(target)[0]) == 121
    # Old generation gone, manifest replaced; the writers' lock file stays (it holds no data).
    assert first & second == {"pdq.index", ".pdq.index.lock"}
    assert len(second) == len(first)


def test_a_save_that_fails_midway_leaves_the_previous_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    index = FaissIndex(256, large_min_size=10**9)
    _, queries = filled(index, 50)
    target = tmp_path / "pdq.index"
    index.save(target, 1)
    files_before = sorted(p.name for p in tmp_path.iterdir())
    expected = index.search(queries, 31)

    import hashdb.index._files as module

    def broken_save(target_path: Path, array: np.ndarray) -> None:
        target_path.write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(module, "save_npy", broken_save)
    index.add([1], random_codes(np.random.default_rng(3), 1, 256))
    with pytest.raises(OSError, match="disk full"):
        index.save(target, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == files_before
    loaded, seq = load_index(target)
    assert seq == 1 and loaded.search(queries, 31) == expected


def test_missing_or_damaged_index_is_stale(tmp_path: Path) -> None:
    with pytest.raises(IndexStale, match="no saved index"):
        load_index(tmp_path / "nothing.index")
    (tmp_path / "junk.index").write_text("not json")
    with pytest.raises(IndexStale, match="unreadable"):
        load_index(tmp_path / "junk.index")
    (tmp_path / "other.index").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(IndexStale, match="not a saved hashdb index"):
        load_index(tmp_path / "other.index")

    index = FaissIndex(256, large_min_size=20)
    filled(index, 60)
    target = tmp_path / "pdq.index"
    index.save(target, 3)
    manifest = json.loads(target.read_text())
    (tmp_path / manifest["files"]["faiss"]).write_bytes(b"garbage")
    with pytest.raises(IndexStale):
        load_index(target)

    index.save(target, 4)
    manifest = json.loads(target.read_text())
    (tmp_path / manifest["files"]["ids"]).unlink()
    with pytest.raises(IndexStale):
        load_index(target)

    index.save(target, 5)
    manifest = json.loads(target.read_text())
    manifest["version"] = 99
    target.write_text(json.dumps(manifest))
    with pytest.raises(IndexStale, match="version"):
        load_index(target)


def test_tables_from_another_index_are_refused(tmp_path: Path) -> None:
    a, b = FaissIndex(256, large_min_size=20), FaissIndex(256, large_min_size=20)
    filled(a, 60, seed=1)
    filled(b, 60, seed=2)
    a.save(tmp_path / "a.index", 1)
    b.save(tmp_path / "b.index", 1)
    ma = json.loads((tmp_path / "a.index").read_text())
    mb = json.loads((tmp_path / "b.index").read_text())
    tables = [role for role in mb["files"] if role.startswith("mih_")]
    assert "mih_order" in tables and len(tables) >= 2
    for role in tables:
        ma["files"][role] = mb["files"][role]
    (tmp_path / "a.index").write_text(json.dumps(ma))
    with pytest.raises(IndexStale, match="do not match"):
        load_index(tmp_path / "a.index")


def test_covers_seq_must_be_a_non_negative_integer(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput):
        LinearIndex(64).save(tmp_path / "x", -1)
    with pytest.raises(InvalidInput):
        FaissIndex(64).save(tmp_path / "x", "7")  # type: ignore[arg-type]
    assert not (tmp_path / "x").exists()
