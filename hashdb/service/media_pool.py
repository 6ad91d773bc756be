"""Hashing many files on every core: a process pool over service.media_hashing.hash_media_file.

Hashing is CPU work in C and numpy that holds the GIL for much of its time, so processes, not
threads. Each worker gets the settings once (initializer); a task is a path and its answer
the file's MediaHashes or the HashDBError that refused it, returned in the order given. A
single file, or a single core, hashes in this process: no pool to start.
"""

from __future__ import annotations

import dataclasses
import gc
import multiprocessing
import os
import sys
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


class ProbeSwitch:
    """Whether a lookup's files still want their probes (hashing/keypoints.py), read by each
    task: on until the caller, having opened its database while the workers hash, finds that it
    holds no keypoints (a mirror synced without them, a database of hashes alone), where a probe's ORB pass (about
    6 ms an image) would meet nothing. A byte of shared memory, which forked workers inherit."""

    def __init__(self) -> None:
        self._flag = multiprocessing.RawValue("b", 1)

    def off(self) -> None:
        self._flag.value = 0

    @property
    def on(self) -> bool:
        return bool(self._flag.value)


def _probing(settings: Settings, probes: ProbeSwitch | None) -> Settings:
    if probes is None or probes.on or not settings.keypoints:
        return settings
    return dataclasses.replace(settings, keypoints=False)


def hash_paths(settings: Settings, paths: Sequence[Path], signals: Sequence[str] | None = None,
               dihedral: bool = False, jobs: int | None = None, probes: ProbeSwitch | None = None) -> Iterator[Answer]:
    """The answer for each path, in order, hashed by up to `jobs` processes.

    With more than one process the pool starts and every path is queued before this returns,
    so the caller's own work until it reads the first answer (opening an index, say) runs
    while the workers hash. In one process nothing is hashed until an answer is read.
    `probes`: turned off meanwhile, the files hashed after it compute no probe.
    """
    workers = min(len(paths), jobs if jobs is not None else available_cores())
    wanted = tuple(signals) if signals else None
    if len(paths) > 1:
        _keep_heap()  # before the fork: the workers inherit it
    if workers <= 1:
        return (_hash_one_with(_probing(settings, probes), path, wanted, dihedral) for path in paths)
    _one_opencv_thread()  # this process, which matches beside the workers, and (inherited) them
    # fork starts workers in milliseconds with hashdb already imported; elsewhere the
    # platform's default (spawn) imports it once per worker.
    context = multiprocessing.get_context("fork") if "fork" in multiprocessing.get_all_start_methods() else None
    if context is None:  # shared memory passes to workers by inheritance only: decided now
        settings, probes = _probing(settings, probes), None
    else:
        for signal in image_signals():
            if signal.name in (wanted or DEFAULT_SIGNALS):
                signal.prepare()
    # Two paths a task: a round trip costs the parent about 0.4 ms, an image tens; chunks of 8
    # left one worker hashing its last chunk alone for ~1.5 % of a folder's time.
    chunk = max(1, min(2, len(paths) // (workers * 8)))
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_init,
                               initargs=(settings, wanted, dihedral, probes))
    # Frozen, the objects the workers inherit are left out of their collections: a collection
    # writes to every object it scans, and each page it writes is copied (copy-on-write). A
    # fifth fewer page faults in the workers on a folder of 200 images.
    gc.freeze()
    try:
        answers = pool.map(_hash_one, paths, chunksize=chunk)  # forks the workers, queues every path
    finally:
        gc.unfreeze()  # this process collects as before
    return _PoolAnswers(pool, answers, len(paths))


# glibc's malloc returns freed memory above the heap's top to the system once 128 KiB of it is
# free (raised as it goes, by what it has mapped and freed), and each image's buffers (a
# decoded photo of 1,600 pixels is 7.7 MB, its work arrays and the work copy's luma more)
# are then faulted in again, page by page, for the next file: 319 minor faults an image, 0.2
# to 0.5 s of a 200-file folder's system CPU. With a fixed ceiling of 32 MiB for a mapping of
# its own and 64 MiB kept free on the heap, 84 (BENCHMARKS.md, "Image hashing end to end"):
# a folder's hashing process keeps up to 64 MiB it no longer uses until it exits.
_MMAP_THRESHOLD = 32 << 20
_TRIM_THRESHOLD = 64 << 20
_HEAP_KEPT = False


def _keep_heap() -> None:
    """Set the thresholds above for this process, once (glibc only: elsewhere nothing)."""
    global _HEAP_KEPT
    if _HEAP_KEPT or not sys.platform.startswith("linux"):
        return
    _HEAP_KEPT = True
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt  # glibc's; musl's is a stub that changes nothing
    except (OSError, AttributeError):
        return
    m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
    mallopt(m_mmap_threshold, _MMAP_THRESHOLD)
    mallopt(m_trim_threshold, _TRIM_THRESHOLD)


class _PoolAnswers(Iterator[Answer]):
    """The pool's answers in order. The pool is shut down with the last answer (readers take
    one answer per path and never ask for more) or when the reader closes this: a caller that
    stops early, the first refused file of a submit, waits for the tasks in flight only, not
    for the rest of the folder."""

    def __init__(self, pool: ProcessPoolExecutor, answers: Iterator[Answer], count: int) -> None:
        self._pool: ProcessPoolExecutor | None = pool
        self._answers = answers
        self._left = count

    def __next__(self) -> Answer:
        if self._pool is None:
            raise StopIteration
        try:
            answer = next(self._answers)
        except BaseException:  # the reader interrupted (Ctrl-C), or a worker died
            self.close()
            raise
        self._left -= 1
        if self._left == 0:
            self.close()
        return answer

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def __del__(self) -> None:
        self.close()


def _one_opencv_thread() -> None:
    """One OpenCV thread a process where the processes are the parallelism: OpenCV's pool would
    start a thread per core in each of them, which wait for work actively (a folder's lookup on 2
    cores: a quarter of its system CPU, 0.43 against 0.33 s), as FAISS's did beside the workers
    (index/keypoints.py)."""
    import cv2

    cv2.setNumThreads(1)


def _init(settings: Settings, signals: tuple[str, ...] | None, dihedral: bool, probes: ProbeSwitch | None) -> None:
    _one_opencv_thread()  # inherited where the workers fork; a spawned worker starts with OpenCV's default
    _WORKER.update(settings=settings, signals=signals, dihedral=dihedral, probes=probes)


def _hash_one(path: Path) -> Answer:
    probes = _WORKER["probes"]
    assert probes is None or isinstance(probes, ProbeSwitch)
    settings = _WORKER["settings"]
    assert isinstance(settings, Settings)
    settings = _probing(settings, probes)
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
