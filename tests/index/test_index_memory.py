"""Huge pages for the codes change where they live, never what they are."""

from __future__ import annotations

import numpy as np

from hashdb.index import _memory


def test_huge_pages_keep_every_byte() -> None:
    # The kernel copies the pages into huge ones (where it can); the bytes must not change.
    rng = np.random.default_rng(5)
    codes = rng.integers(0, 256, size=(_memory.MIN_BYTES // 32 + 12345, 32), dtype=np.uint8)
    before = codes.copy()
    _memory.huge_pages(codes)
    thread = _memory.huge_pages_soon(codes[1:])
    if thread is not None:
        thread.join()
    assert np.array_equal(codes, before)
    assert not _memory.huge_pages(codes[:1000])  # too small to be worth it: left alone
