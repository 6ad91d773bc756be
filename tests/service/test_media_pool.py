"""Hashing a folder on several processes gives what hashing it file by file gives, in order."""

from __future__ import annotations

import gc
import sys
import multiprocessing
import shutil
from pathlib import Path

import pytest

from hashdb.config import Settings
from hashdb.errors import HashDBError, MediaTooLarge, UnsupportedMedia
from hashdb.service import media_pool
from hashdb.service.media_hashing import hash_media_file
from support import flat_png


def corpus(media: Path, tmp_path: Path) -> list[Path]:
    """Fixture images, a video, a corrupt JPEG and a text file, in a known order."""
    names = ["astronaut.jpg", "camera.png", "astronaut_corrupt.jpg", "logo_rgba.png", "clip.mp4",
             "chelsea_exif6.jpg", "coffee_palette.png", "rocket_anim.gif"]
    paths = []
    for index, name in enumerate(names):
        target = tmp_path / f"{index:02d}-{name}"
        shutil.copy(media / name, target)
        paths.append(target)
    text = tmp_path / "99-notes.jpg"
    text.write_text("not an image")
    return paths + [text]


def answers_as_data(answers: list[object]) -> list[object]:
    return [(type(a).__name__, a.message) if isinstance(a, HashDBError) else a for a in answers]


@pytest.mark.parametrize("dihedral", [False, True])
def test_two_processes_answer_as_one_does_in_order(media: Path, tmp_path: Path, dihedral: bool) -> None:
    paths = corpus(media, tmp_path)
    settings = Settings()
    one_by_one = []
    for path in paths:
        try:
            one_by_one.append(hash_media_file(settings, path, None, dihedral))
        except HashDBError as exc:
            one_by_one.append(exc)
    pooled = list(media_pool.hash_paths(settings, paths, dihedral=dihedral, jobs=2))
    assert answers_as_data(pooled) == answers_as_data(one_by_one)
    assert [type(a) for a in pooled].count(UnsupportedMedia) == 2  # the corrupt JPEG, the text
    assert [getattr(a, "path", None) for a in pooled[:2]] == [str(paths[0]), str(paths[1])]


def test_signals_reach_the_workers(media: Path, tmp_path: Path) -> None:
    paths = corpus(media, tmp_path)[:2]
    pooled = list(media_pool.hash_paths(Settings(), paths, ["md5", "dhash"], jobs=2))
    assert [[v.signal for v in a.hashes] for a in pooled] == [["md5", "dhash"], ["md5", "dhash"]]


def test_the_decode_memory_cap_holds_in_the_workers(tmp_path: Path) -> None:
    big = tmp_path / "flat.png"
    big.write_bytes(flat_png(7000, 7000))
    [answer, _] = media_pool.hash_paths(Settings(), [big, big], jobs=2)
    assert isinstance(answer, MediaTooLarge) and "decode-memory limit" in answer.message


def test_the_workers_start_hashing_before_the_first_answer_is_read(media: Path, tmp_path: Path) -> None:
    # `hashdb lookup` opens its index while the workers hash: that needs them started by the call.
    paths = corpus(media, tmp_path)[:2]
    answers = media_pool.hash_paths(Settings(), paths, jobs=2)
    try:
        assert len(multiprocessing.active_children()) == 2
    finally:
        answers.close()  # type: ignore[attr-defined]
    assert multiprocessing.active_children() == []


def test_reading_every_answer_stops_the_workers(media: Path, tmp_path: Path) -> None:
    # Readers take one answer a path (the CLI's `next(answers)` per file) and never ask for
    # one more: the last answer itself ends the pool, not a StopIteration.
    paths = corpus(media, tmp_path)[:3]  # the third a corrupt JPEG: its answer is its error
    answers = media_pool.hash_paths(Settings(), paths, jobs=2)
    assert [type(next(answers)).__name__ for _ in paths] == ["MediaHashes", "MediaHashes", "UnsupportedMedia"]
    assert multiprocessing.active_children() == []
    assert list(answers) == []


def test_the_parent_collects_garbage_after_starting_the_workers(media: Path, tmp_path: Path) -> None:
    # The pool freezes this process's objects for the fork only (see hash_paths).
    paths = corpus(media, tmp_path)[:2]
    list(media_pool.hash_paths(Settings(), paths, jobs=2))
    assert gc.get_freeze_count() == 0


_REFAULTS = """
import ctypes, resource, sys
from hashdb.service import media_pool
if sys.argv[1] == "kept":
    media_pool._keep_heap()
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
size = 8 << 20  # a decoded photo's size

def touch_and_free():
    block = libc.malloc(size)
    ctypes.memset(block, 1, size)
    libc.free(block)

touch_and_free()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
touch_and_free()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc thresholds")
def test_a_folders_process_keeps_freed_image_buffers_for_the_next_file() -> None:
    # Untuned, an 8 MB buffer freed goes back to the system and the next one faults in again
    # page by page (2,048 pages); once hash_paths has set the thresholds the heap keeps it.
    import subprocess

    def refaults(mode: str) -> int:
        run = subprocess.run([sys.executable, "-c", _REFAULTS, mode], capture_output=True, text=True, check=True)
        return int(run.stdout)

    if refaults("default") < 1000:
        pytest.skip("this C library keeps freed buffers already (not glibc's defaults)")
    assert refaults("kept") < 100


@pytest.fixture
def opencv_threads():
    import cv2

    before = cv2.getNumThreads()
    cv2.setNumThreads(4)  # as on a machine of 4 cores
    yield cv2
    cv2.setNumThreads(before)


def test_a_pool_runs_one_opencv_thread_a_process(opencv_threads, media: Path, tmp_path: Path) -> None:
    # The processes are the parallelism: OpenCV's threads, a pool of them in each process,
    # would wait for work beside the other processes.
    paths = corpus(media, tmp_path)[:2]
    list(media_pool.hash_paths(Settings(), paths, jobs=1))
    assert opencv_threads.getNumThreads() == 4  # one process: OpenCV's own choice stands
    list(media_pool.hash_paths(Settings(), paths, jobs=2))
    assert opencv_threads.getNumThreads() == 1  # the caller, which matches beside the workers
    opencv_threads.setNumThreads(4)
    media_pool._init(Settings(), None, False, None)  # what a worker runs first (a spawned one inherits nothing)
    assert opencv_threads.getNumThreads() == 1
