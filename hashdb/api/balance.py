"""How many connections each worker of `hashdb serve` holds, so kept-alive connections are
shared evenly between them.

Every worker accepts from the same listening socket, and the kernel hands a new connection to
whichever worker calls accept first. With a connection per request that evens out; with
kept-alive connections it does not: a platform's client pool of 4 connections can land 3 on one
worker and 1 on the other, and since one worker is one core (the GIL), one core then idles while
the other queues. So a worker accepts only while no other live worker holds fewer connections
than it does; the worker holding fewest always accepts, so some worker always does.

The counts live in a small file in the server's run directory (HASHDB_RUN_DIR, see
readiness.py) that every worker maps: a slot of (pid, connections) per worker, claimed at
start-up and released by the master when the worker exits (server.child_exit), so a dead
worker's count never holds the others back. Each worker writes only its own slot; a read may
be one event stale, which costs at most one connection of imbalance.
"""

from __future__ import annotations

import fcntl
import mmap
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hashdb.api.readiness import RUN_DIR

FILE_NAME = "connections"
# More than any worker count a 2-to-64-core box runs, with room for workers being replaced.
SLOTS = 255
# Word 0 is how many slots have ever been used (so a check reads only those); slot n is words
# 2n+1 (pid, 0 when free) and 2n+2 (connections).
_SIZE = (1 + 2 * SLOTS) * 8


class ConnectionShares:
    def __init__(self, path: Path) -> None:
        self._path = path
        with _exclusive(path) as fd:
            if os.fstat(fd).st_size < _SIZE:
                os.ftruncate(fd, _SIZE)
            self._map = mmap.mmap(fd, _SIZE)
        self._words = memoryview(self._map).cast("q")
        self._slot = -1

    @classmethod
    def for_server(cls) -> ConnectionShares | None:
        """The server's shared counts, or None outside `hashdb serve` (no run directory)."""
        directory = os.environ.get(RUN_DIR)
        return cls(Path(directory) / FILE_NAME) if directory else None

    def claim(self, pid: int) -> None:
        """Take a free slot for `pid` (a worker starting)."""
        words = self._words
        with _exclusive(self._path):
            for slot in range(SLOTS):
                if words[1 + 2 * slot] == 0:
                    words[2 + 2 * slot] = 0
                    words[1 + 2 * slot] = pid
                    words[0] = max(words[0], slot + 1)
                    self._slot = slot
                    return
        raise RuntimeError(f"more than {SLOTS} workers share {self._path}")

    def release(self, pid: int) -> None:
        """Free `pid`'s slot (the master, once that worker has exited)."""
        words = self._words
        with _exclusive(self._path):
            for slot in range(words[0]):
                if words[1 + 2 * slot] == pid:
                    words[1 + 2 * slot] = 0
                    words[2 + 2 * slot] = 0

    def publish(self, connections: int) -> None:
        if self._slot >= 0:
            self._words[2 + 2 * self._slot] = connections

    def may_accept(self, connections: int) -> bool:
        """Whether a worker holding `connections` should take another: no other worker holds fewer."""
        words = self._words
        for slot in range(words[0]):
            if slot != self._slot and words[1 + 2 * slot] != 0 and words[2 + 2 * slot] < connections:
                return False
        return True

    def close(self) -> None:
        self._words.release()
        self._map.close()


@contextmanager
def _exclusive(path: Path) -> Iterator[int]:
    """The file, open and locked: slots are claimed and released under it (worker start and exit)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield fd
        finally:
            # Unlocked explicitly: an mmap of this fd keeps a duplicate of it, which would
            # otherwise hold the lock for as long as the map lives.
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
