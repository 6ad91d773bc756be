"""Meta's multi-index-hashing regression input: the index must return exactly what brute force does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from _index_data import search_both

from hashdb.bits import hex_to_codes
from hashdb.index.base import HashIndex
from hashdb.index.faiss_index import FaissIndex
from hashdb.index.linear import LinearIndex

pytestmark = pytest.mark.vectors


def read_hashes(path: Path) -> list[str]:
    # One 64-digit PDQ hex per line, nothing else (checked here so a format change is loud).
    lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    assert all(len(line) == 64 for line in lines)
    return lines


@pytest.fixture(scope="module")
def reg_input(vectors: Path) -> tuple[list[str], list[str]]:
    folder = vectors / "pdq" / "reg-test-input"
    return read_hashes(folder / "haystack.txt"), read_hashes(folder / "needles.txt")


def brute_force(haystack: list[str], needles: list[str], radius: int) -> list[list[tuple[int, int]]]:
    stored = [int(h, 16) for h in haystack]
    out = []
    for needle in needles:
        q = int(needle, 16)
        hits = [(i, (q ^ h).bit_count()) for i, h in enumerate(stored)]
        out.append(sorted(((i, d) for i, d in hits if d <= radius), key=lambda x: (x[1], x[0])))
    return out


@pytest.mark.parametrize(
    "make",
    [
        lambda: LinearIndex(256),
        lambda: FaissIndex(256),  # 1,350 hashes: the flat scan
        lambda: FaissIndex(256, large_min_size=1_000, mih_work_divisor=0),  # forced multi-index
        lambda: FaissIndex(256, large_min_size=1_000, chunk_bits=16, mih_work_divisor=0),
    ],
    ids=["linear", "faiss-flat", "faiss-mih", "faiss-mih-16bit-chunks"],
)
@pytest.mark.parametrize("radius", [31, 32])
def test_reference_haystack_and_needles(reg_input: tuple[list[str], list[str]], make, radius: int) -> None:  # type: ignore[no-untyped-def]
    haystack, needles = reg_input
    assert (len(haystack), len(needles)) == (1350, 100)
    index: HashIndex = make()
    index.add(np.arange(len(haystack), dtype=np.int64), hex_to_codes(haystack, 256))
    expected = brute_force(haystack, needles, radius)
    assert sum(map(len, expected)) > 0  # the input does contain matches
    queries = hex_to_codes(needles, 256)
    assert index.search(queries, radius) == expected
    if isinstance(index, FaissIndex):
        assert search_both(index, queries, radius) == expected
