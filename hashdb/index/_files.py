"""Saved-index layout: a small JSON manifest at the given path naming data files beside it.

Saving is atomic: data files get fresh generation-stamped names, and replacing the manifest
(os.replace) is the single commit point, so a crash leaves either the old or the new index,
never a mix. Writers of one path take turns on a lock file beside it (several server workers
may save at once); the previous generation is deleted after the commit, and so is anything a
killed writer left behind, since no other writer can be half-way through while we hold the lock.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import secrets
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hashdb.errors import IndexStale, InvalidInput, StoreUnavailable

FORMAT = "hashdb-index"
VERSION = 1
# A hash index's kinds (base.load_saved reads them); a keypoint index (keypoints.py) is read
# only by its own loader, which asks for its kind.
HASH_KINDS = ("linear", "faiss")
KEYPOINTS = "keypoints"


@dataclass(frozen=True, slots=True)
class Manifest:
    kind: str  # "linear" | "faiss" | "keypoints"
    bits: int
    covers_seq: int  # a keypoint index: the last keypoint row id it holds
    count: int
    files: Mapping[str, str]  # role -> file name in the manifest's directory
    params: Mapping[str, int] = field(default_factory=dict)
    # Whose history the snapshot covers, as the caller put it (IndexSet: the database's identity
    # and its change at covers_seq); "" from saves before it was recorded.
    owner: str = ""

    def file(self, path: Path, role: str) -> Path:
        name = self.files.get(role)
        if not isinstance(name, str) or "/" in name or "\\" in name or name.startswith("."):
            raise IndexStale(f"index manifest {path} names no valid {role!r} file; rebuild the index")
        return path.parent / name


def _fsync_path(path: Path, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _try_read(path: Path) -> Manifest | None:
    try:  # whatever its kind: the files it names are committed ones
        return read_manifest(path, (*HASH_KINDS, KEYPOINTS))
    except IndexStale:
        return None


def _lock_path(path: Path) -> Path:
    return path.parent / f".{path.name}.lock"


@contextmanager
def _writer_lock(path: Path, wait: bool = True) -> Iterator[bool]:
    """Hold the path's writer lock (released by the kernel if we are killed); yields False
    when `wait` is off and another writer has it."""
    fd = os.open(_lock_path(path), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def _leftovers(path: Path, keep: Iterable[str]) -> list[Path]:
    """Files of `path`'s saves that `keep` (the committed manifest's) does not name."""
    kept = set(keep)
    data = re.compile(re.escape(path.name) + r"\.[0-9a-f]{16}\.[A-Za-z0-9_]+")
    temp = re.compile(r"\." + re.escape(path.name) + r"\.[0-9a-f]{16}\.tmp")
    return [p for p in path.parent.iterdir()
            if p.name not in kept and (data.fullmatch(p.name) or temp.fullmatch(p.name))]


def remove_leftovers(path: Path) -> int:
    """Delete what killed writers of `path` left (unless a writer is at work now); how many."""
    path = Path(path)
    if not path.parent.is_dir():
        return 0
    with _writer_lock(path, wait=False) as locked:
        if not locked:
            return 0
        manifest = _try_read(path)
        stale = _leftovers(path, manifest.files.values() if manifest is not None else ())
        for leftover in stale:
            leftover.unlink(missing_ok=True)
        return len(stale)


def remove_saved(path: Path) -> None:
    """Delete the save at `path`, its manifest first (the commit point: a crash part-way leaves
    leftovers, which the next save or remove_leftovers clears), then its files."""
    path = Path(path)
    if not path.parent.is_dir():
        return
    with _writer_lock(path):
        manifest = _try_read(path)
        path.unlink(missing_ok=True)
        for name in manifest.files.values() if manifest is not None else ():
            (path.parent / name).unlink(missing_ok=True)
        for leftover in _leftovers(path, ()):
            leftover.unlink(missing_ok=True)


def make_folder(folder: Path) -> None:
    """Make the folder snapshots are saved in. A file of its name (DB.index made by hand, a
    copy) would fail each save with mkdir's bare "File exists", which says nothing of what it is
    or what to do; going on without saving would hide it behind slow lookups."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:
        raise StoreUnavailable(f"{folder} is a file, where hashdb keeps the database's index snapshots (a "
                               "folder): move it away") from exc


def write_saved(
    path: Path,
    *,
    kind: str,
    bits: int,
    covers_seq: int,
    count: int,
    writers: Mapping[str, Callable[[Path], None]],
    params: Mapping[str, int] | None = None,
    owner: str = "",
) -> None:
    """Write each data file through its writer, then commit the manifest at `path`."""
    if isinstance(covers_seq, bool) or not isinstance(covers_seq, int) or covers_seq < 0:
        raise InvalidInput(f"covers_seq must be a non-negative integer, got {covers_seq!r}")
    path = Path(path)
    make_folder(path.parent)
    with _writer_lock(path):
        _write_saved(path, kind, bits, covers_seq, count, writers, params, owner)


def _write_saved(path: Path, kind: str, bits: int, covers_seq: int, count: int,
                 writers: Mapping[str, Callable[[Path], None]], params: Mapping[str, int] | None,
                 owner: str) -> None:
    previous = _try_read(path)
    generation = secrets.token_hex(8)
    written: list[Path] = []
    tmp = path.parent / f".{path.name}.{generation}.tmp"
    try:
        files: dict[str, str] = {}
        for role, writer in writers.items():
            target = path.parent / f"{path.name}.{generation}.{role}"
            written.append(target)
            writer(target)
            _fsync_path(target)
            files[role] = target.name
        body = {
            "format": FORMAT,
            "version": VERSION,
            "kind": kind,
            "bits": bits,
            "covers_seq": covers_seq,
            "count": count,
            "files": files,
            "params": dict(params or {}),
            "owner": owner,
        }
        tmp.write_text(json.dumps(body, indent=1, sort_keys=True))
        _fsync_path(tmp)
        os.replace(tmp, path)
        _fsync_path(path.parent, directory=True)
    except BaseException:
        for leftover in [*written, tmp]:
            leftover.unlink(missing_ok=True)
        raise
    if previous is not None:
        for name in previous.files.values():
            old = path.parent / name
            if old not in written:
                old.unlink(missing_ok=True)
    for leftover in _leftovers(path, files.values()):
        leftover.unlink(missing_ok=True)


def _count(value: object) -> int | None:
    """`value` if it is a non-negative int (not a bool), else None."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def read_manifest(path: Path, kinds: tuple[str, ...] = HASH_KINDS) -> Manifest:
    """Parse and check the manifest at `path`, of one of `kinds`; anything else is `IndexStale`."""
    path = Path(path)
    try:
        body = json.loads(path.read_text())
    except FileNotFoundError:
        raise IndexStale(f"no saved index at {path}; rebuild it from the store") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise IndexStale(f"saved index at {path} is unreadable ({exc}); rebuild it from the store") from None
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise IndexStale(f"{path} is not a saved hashdb index; rebuild it from the store")
    if body.get("version") != VERSION:
        raise IndexStale(
            f"saved index at {path} has format version {body.get('version')!r}, this code reads "
            f"{VERSION}; rebuild it from the store"
        )
    kind, files, params, owner = body.get("kind"), body.get("files"), body.get("params", {}), body.get("owner", "")
    bits, seq, count = (_count(body.get(key)) for key in ("bits", "covers_seq", "count"))
    if (
        kind not in kinds
        or bits is None
        or seq is None
        or count is None
        or bits == 0
        or bits % 8
        or not isinstance(files, dict)
        or not isinstance(params, dict)
        or not isinstance(owner, str)
        or not all(isinstance(v, int) for v in params.values())
    ):
        raise IndexStale(f"saved index manifest at {path} is malformed; rebuild it from the store")
    return Manifest(kind=kind, bits=bits, covers_seq=seq, count=count, files=files, params=params, owner=owner)


def save_npy(target: Path, array: np.ndarray) -> None:
    with open(target, "wb") as fh:
        np.save(fh, np.ascontiguousarray(array), allow_pickle=False)


def npy_writer(array: np.ndarray) -> Callable[[Path], None]:
    """A writer for `write_saved` that saves `array` (bound now, not when the loop moves on)."""
    return lambda target: save_npy(target, array)


def load_npy(source: Path, dtype: type | tuple[type, ...], shape: tuple[int, ...],
             mapped: bool = False) -> np.ndarray:
    """`mapped`: a copy-on-write map of the file (shared page cache, private pages only
    where written) instead of a copy in memory."""
    try:
        array: np.ndarray = np.load(source, allow_pickle=False, mmap_mode="c" if mapped else None)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise IndexStale(f"saved index data {source} is unreadable ({exc}); rebuild it") from None
    dtypes = dtype if isinstance(dtype, tuple) else (dtype,)
    if array.dtype not in dtypes or array.shape != shape:
        raise IndexStale(f"saved index data {source} does not match its manifest; rebuild it")
    # A plain ndarray over the same map (kept alive as its base): every slice of an np.memmap
    # is another np.memmap, whose __array_finalize__ costs about 2 us, a dozen times a lookup.
    return array.view(np.ndarray) if mapped else array
