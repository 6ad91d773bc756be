"""The HashDB a worker process uses, built in that process and never inherited across a fork:
a SQLite connection or an index shared by two processes would corrupt both. The index loads
in a background thread so /healthz answers at once and /readyz says when lookups can run."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any

from flask import current_app

from hashdb.api import readiness
from hashdb.errors import IndexStale
from hashdb.service import HashDB

log = logging.getLogger("hashdb.api")


def open_service(config: Mapping[str, Any]) -> HashDB:
    """Build the service from the app's config.

    Several API replicas share one PostgreSQL store: config DSN (env HASHDB_DSN), or a
    postgresql:// URL as DB; otherwise DB is the SQLite file.
    """
    from hashdb.service.local import open_database

    return open_database(str(config.get("DSN") or config["DB"]), write_timeout=float(config["WRITE_TIMEOUT"]))


class ServiceRuntime:
    """One HashDB per process, created on first use in that process."""

    def __init__(self, factory: Callable[[], HashDB], background: bool = True,
                 on_start: Callable[[HashDB], Callable[[], None]] | None = None) -> None:
        self._factory = factory
        self._background = background
        # Starts per-process background work for a new service; returns how to stop it.
        self._on_start = on_start
        self._stop: Callable[[], None] | None = None
        self._pid = -1
        self._service: HashDB | None = None
        self._ready = threading.Event()
        self._error: str | None = None
        self._lock = threading.Lock()

    def service(self) -> HashDB:
        pid = os.getpid()
        service = self._service
        if service is not None and self._pid == pid:
            return service
        if self._pid != pid:
            # After a fork the parent's lock may be held by a thread that no longer exists.
            self._lock = threading.Lock()
        with self._lock:
            if self._service is None or self._pid != pid:
                self._service = self._factory()
                self._pid = pid
                self._ready = threading.Event()
                self._error = None
                if self._on_start is not None:
                    self._stop = self._on_start(self._service)
                if self._background:
                    threading.Thread(target=self._load, args=(self._service, self._ready),
                                     name="hashdb-index-load", daemon=True).start()
                else:
                    self._load(self._service, self._ready)
            return self._service

    def _load(self, service: HashDB, ready: threading.Event) -> None:
        try:
            service.load_index()
        except Exception as exc:  # reported by /readyz; the worker keeps serving everything else
            log.exception("loading the index failed")
            self._error = f"{type(exc).__name__}: {exc}"
            return
        ready.set()
        readiness.mark_ready()

    def close(self) -> None:
        """Stop this process's background work, then close its store."""
        if self._stop is not None:
            self._stop()
            self._stop = None
        if self._service is not None and self._pid == os.getpid():
            self._service.store.close()
            self._service = None

    @property
    def ready(self) -> bool:
        return self._ready.is_set() and self._pid == os.getpid()

    @property
    def error(self) -> str | None:
        return self._error

    def wait_ready(self, timeout: float | None = None) -> bool:
        self.service()
        return self._ready.wait(timeout)

    def require_ready(self) -> None:
        self.service()
        if not self.ready:
            raise IndexStale("the index is still loading; retry shortly (see /readyz)")


def runtime() -> ServiceRuntime:
    rt: ServiceRuntime = current_app.extensions["hashdb"]
    return rt


def get_service() -> HashDB:
    """The current app's HashDB for this process."""
    return runtime().service()
