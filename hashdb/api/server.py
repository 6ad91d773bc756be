"""`hashdb serve`: the API under gunicorn, configured here rather than by a config file.

Each worker builds its own app, and so its own SQLite connection and index, after the fork
(preload_app stays off); OpenMP and BLAS get one thread per worker so N workers use N cores.
This module imports nothing heavy: `api` itself is imported in the workers only.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from typing import Any

from gunicorn.app.base import BaseApplication

from hashdb.api.accesslog import FORMAT as ACCESS_LOG_FORMAT
from hashdb.api.accesslog import AccessLogger

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass(frozen=True, slots=True)
class ServeOptions:
    db: str
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 2
    threads: int = 4
    access_log: str | None = "-"
    timeout: int = 60
    max_connections: int = 1000
    # Seconds an idle kept-alive connection stays open.
    keepalive: int = 5


class HashdbServer(BaseApplication):  # type: ignore[misc]
    def __init__(self, options: dict[str, Any], app_config: dict[str, Any]) -> None:
        self.options = options
        self.app_config = app_config
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from hashdb.api import create_app

        return create_app(self.app_config)


def post_fork(server: Any, worker: Any) -> None:
    # Normally nothing heavy is loaded yet (no preload); if FAISS was, pin it here too.
    faiss = sys.modules.get("faiss")
    if faiss is not None:
        faiss.omp_set_num_threads(1)


def child_exit(server: Any, worker: Any) -> None:
    from hashdb.api import readiness
    from hashdb.api.balance import ConnectionShares

    readiness.forget(worker.pid)
    shares = ConnectionShares.for_server()
    if shares is not None:
        shares.release(worker.pid)
        shares.close()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def prepare_environment() -> None:
    """Before any worker exists: one OpenMP/BLAS thread each, and a shared metrics directory."""
    for name in THREAD_VARIABLES:
        os.environ[name] = "1"
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Fresh per run (stale samples from an earlier run would be summed in), removed at exit.
        directory = tempfile.mkdtemp(prefix="hashdb-metrics-")
        atexit.register(_remove_in, os.getpid(), directory)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory


def _remove_in(pid: int, directory: str) -> None:
    # Workers are forked from the master and inherit its atexit hooks: only the master, on
    # its way out, may remove the directory every worker writes to.
    if os.getpid() == pid:
        shutil.rmtree(directory, ignore_errors=True)


def gunicorn_options(opts: ServeOptions) -> dict[str, Any]:
    from gunicorn.config import Config

    extra: dict[str, Any] = {}
    if "control_socket_disable" in Config().settings:
        # gunicorn >= 25.1 opens a control socket at one fixed path per user: two servers
        # (tests, a demo beside a real one) would fight over it, and we do not use it.
        extra["control_socket_disable"] = True
    return {**extra,
        "bind": f"{opts.host}:{opts.port}",
        "workers": opts.workers,
        "threads": opts.threads,
        # gunicorn's threaded worker, reading each request whole before a thread sees it.
        "worker_class": "hashdb.api.worker.HashdbWorker",
        "worker_connections": opts.max_connections,
        "keepalive": opts.keepalive,
        "preload_app": False,
        "timeout": opts.timeout,
        "graceful_timeout": 10,
        "accesslog": opts.access_log,
        "access_log_format": ACCESS_LOG_FORMAT,
        "logger_class": AccessLogger,
        "errorlog": "-",
        "post_fork": post_fork,
        "child_exit": child_exit,
        "proc_name": "hashdb",
    }


def serve(opts: ServeOptions) -> None:
    """Run until SIGINT/SIGTERM. Call before anything imports prometheus_client or FAISS."""
    prepare_environment()
    # Where workers say their index is loaded, so /readyz answers for all of them (readiness.py).
    run_dir = tempfile.mkdtemp(prefix="hashdb-run-")
    atexit.register(_remove_in, os.getpid(), run_dir)
    os.environ["HASHDB_RUN_DIR"] = run_dir
    os.environ["HASHDB_WORKERS"] = str(opts.workers)
    # DSN cleared: opts.db is the database the CLI chose (--db beats HASHDB_DSN), not a default.
    HashdbServer(gunicorn_options(opts), {"DB": opts.db, "DSN": None}).run()
