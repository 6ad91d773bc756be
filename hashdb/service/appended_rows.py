"""An in-memory index kept current with rows a store only appends (TMK averages, keypoints): each
refresh reads, a page at a time, the rows after the last one read, under the lock its searches
take too. No row is read twice, and one indexed range read answers a refresh with nothing new."""

from __future__ import annotations

import threading
from collections.abc import Callable

# (row id, record id, payload), in row order
Rows = list[tuple[int, int, bytes]]


class AppendedRows:
    def __init__(self, read: Callable[[int, int], Rows], add: Callable[[Rows], None], page: int) -> None:
        self.lock = threading.Lock()
        self._read = read
        self._add = add
        self._page = page
        self._after = 0

    def start_after(self, after: int) -> None:
        """Follow from the row after `after` (the rows up to it came from elsewhere: a snapshot,
        or none at 0). The caller holds `lock`, with what it swaps in for those rows."""
        self._after = after

    def refresh(self) -> None:
        with self.lock:
            while True:
                rows = self._read(self._after, self._page)
                if not rows:
                    return
                self._add(rows)
                self._after = rows[-1][0]
