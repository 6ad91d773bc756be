"""Hashing many files on every core: a process pool over service.media_hashing.hash_media_file.

Hashing is CPU work in C and numpy that holds the GIL for much of its time, so processes, not
threads. Each worker gets the settings once (initializer); a task is a path and its answer
the file's MediaHashes or the HashDBError that refused it, returned in the order given. A
single file, or a single core, hashes in this process: no pool to start.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from hashdb.config import Settings
from hashdb.errors import HashDBError
from hashdb.hashing.registry import DEFAULT_SIGNALS, image_signals
from hashdb.service.media_hashing import hash_media_file
from hashdb.types import MediaHashes

Answer = MediaHashes | HashDBError

_WORKER: dict[str, object] = {}


def available_cores() -> int:
    """Cores this process may run on (taskset and cgroup cpusets count; os.cpu_count does not)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def hash_paths(settings: Settings, paths: Sequence[Path], signals: Sequence[str] | None = None,
               dihedral: bool = False, jobs: int | None = None) -> Iterator[Answer]:
    """The answer for each path, in order, hashed by up to `jobs` processes."""
    workers = min(len(paths), jobs if jobs is not None else available_cores())
    wanted = tuple(signals) if signals else None
    if workers <= 1:
        for path in paths:
            yield _hash_one_with(settings, path, wanted, dihedral)
        return
    # fork starts workers in milliseconds with hashdb already imported; elsewhere the
    # platform's default (spawn) imports it once per worker.
    context = multiprocessing.get_context("fork") if "fork" in multiprocessing.get_all_start_methods() else None
    if context is not None:
        for signal in image_signals():
            if signal.name in (wanted or DEFAULT_SIGNALS):
                signal.prepare()
    # Small chunks keep every worker busy to the end; not one per task, which costs a round trip each.
    chunk = max(1, min(8, len(paths) // (workers * 8)))
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_init, initargs=(settings, wanted, dihedral))
    try:
        yield from pool.map(_hash_one, paths, chunksize=chunk)
    finally:
        # A caller that stops early (the first refused file of a submit) waits for the
        # chunks in flight only, not for the rest of the folder.
        pool.shutdown(wait=True, cancel_futures=True)


def _init(settings: Settings, signals: tuple[str, ...] | None, dihedral: bool) -> None:
    _WORKER.update(settings=settings, signals=signals, dihedral=dihedral)


def _hash_one(path: Path) -> Answer:
    settings = _WORKER["settings"]
    signals = _WORKER["signals"]
    dihedral = _WORKER["dihedral"]
    assert isinstance(settings, Settings) and isinstance(dihedral, bool)
    assert signals is None or isinstance(signals, tuple)
    return _hash_one_with(settings, path, signals, dihedral)


def _hash_one_with(settings: Settings, path: Path, signals: tuple[str, ...] | None, dihedral: bool) -> Answer:
    try:
        return hash_media_file(settings, path, signals, dihedral)
    except HashDBError as exc:
        return exc
