"""Readiness of the whole server, not of the one worker that happens to answer /readyz.

`hashdb serve` gives its workers a shared directory (HASHDB_RUN_DIR) and their number
(HASHDB_WORKERS). A worker whose index has loaded leaves a `ready.<pid>` file there; the
master removes it when the worker exits. /readyz is 200 only when every worker has one, so
a client that waits for it never meets a worker still loading (which would answer 503).
Outside `hashdb serve` (tests, another WSGI server) there is no directory and each process
answers for itself.
"""

from __future__ import annotations

import os
from pathlib import Path

RUN_DIR = "HASHDB_RUN_DIR"
WORKERS = "HASHDB_WORKERS"
# Left in the directory by the first worker whose index loaded; never removed while it runs.
SERVED = "served"


def _directory() -> Path | None:
    value = os.environ.get(RUN_DIR)
    return Path(value) if value else None


def mark_ready(pid: int | None = None) -> None:
    directory = _directory()
    if directory is not None:
        (directory / f"ready.{pid or os.getpid()}").touch()
        (directory / SERVED).touch()


def has_served() -> bool:
    """Whether some worker of this server has had its index loaded before: a worker starting
    now replaces one (a reload, a worker that died), rather than starting the server."""
    directory = _directory()
    return directory is not None and (directory / SERVED).exists()


def forget(pid: int) -> None:
    directory = _directory()
    if directory is not None:
        (directory / f"ready.{pid}").unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def workers_ready() -> tuple[int, int] | None:
    """(workers ready, workers expected), or None when this process is not under `hashdb serve`."""
    directory = _directory()
    expected = os.environ.get(WORKERS)
    if directory is None or not expected:
        return None
    ready = 0
    for marker in directory.glob("ready.*"):
        pid = marker.suffix[1:]
        if pid.isdigit() and _alive(int(pid)):
            ready += 1
    return ready, int(expected)
