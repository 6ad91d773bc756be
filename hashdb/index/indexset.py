"""The derived near-duplicate indexes, one per bit signal, kept in step with the store.

The store is the truth. An index snapshot on disk records the change-log sequence it
covers and whose change log that is (the database's identity and its change at that
sequence); loading replays every later change, and with no snapshot, or one of another
database or of another history of this one (a restored backup), the index is rebuilt
from the store. Before each lookup `catch_up()` applies changes other processes made
(one cheap query), so a retraction anywhere stops matching everywhere at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from hashdb.errors import IndexStale
from hashdb.bits import hex_to_codes
from hashdb.index._files import make_folder, remove_leftovers
from hashdb.index.base import HashIndex, load_saved
from hashdb.index.linear import LinearIndex
from hashdb.index.registry import LINEAR_MAX_SIZE
from hashdb.store.base import HashStore

log = logging.getLogger(__name__)

# Bit signals with a Hamming index; vpdq indexes video frames (PDQ) keyed by frame id, and
# pdq_derived the derived PDQs of image records (hashing/derived.py) keyed by their row id.
DERIVED = "pdq_derived"
INDEXED_SIGNALS: dict[str, int] = {"pdq": 256, "phash": 64, "dhash": 64, "vpdq": 256, DERIVED: 256}
REPLAY_PAGE = 10_000
# Replaying more than this at start-up means the snapshot is old: save a fresh one.
SAVE_AFTER_REPLAYING = 10_000


def _default_factory(bits: int, expected_size: int) -> HashIndex:
    from hashdb.index.registry import make_index

    return make_index(bits, expected_size)


class IndexSet:
    def __init__(self, store: HashStore, directory: Path | None = None,
                 factory: Callable[[int, int], HashIndex] | None = None) -> None:
        self.store = store
        self.directory = directory
        self.factory = factory or _default_factory
        self.indexes: dict[str, HashIndex] = {}
        self.seq = 0
        self.ready = False
        self._lock = threading.RLock()

    def get(self, signal: str) -> HashIndex:
        if not self.ready:
            raise IndexStale("the index is still loading")
        return self.indexes[signal]

    def search(self, signal: str, hexes: Sequence[str], radius: int) -> list[list[tuple[int, int]]]:
        """Range search under the set's lock: an index must not be written while it is searched
        (catch_up from another thread of the same worker would otherwise race it)."""
        index = self.get(signal)
        if not len(index):  # the derived index of a list without framed images, say
            return [[] for _ in hexes]
        codes = hex_to_codes(hexes, INDEXED_SIGNALS[signal])
        with self._lock:
            return index.search(codes, radius)

    def load(self, progress: Callable[[str, int], None] | None = None) -> None:
        """Load snapshots and replay later changes, or rebuild from the store when there are none."""
        with self._lock:
            loaded: dict[str, tuple[HashIndex, int]] = {}
            not_ours: dict[str, list[str]] = {}
            if self.directory is not None:
                for signal in INDEXED_SIGNALS:
                    path = self._path(signal)
                    # A process killed while saving leaves its half-written files: clear them.
                    removed = remove_leftovers(path)
                    if removed:
                        log.info("removed %d files of an unfinished index save at %s", removed, path)
                    if path.exists():
                        try:
                            index, manifest = load_saved(path)
                        except Exception as exc:  # a damaged snapshot is rebuilt, never trusted
                            log.warning("index snapshot %s unreadable (%s); rebuilding", path, exc)
                            continue
                        foreign = self._foreign(manifest.owner, manifest.covers_seq)
                        if foreign:
                            not_ours.setdefault(foreign, []).append(signal)
                        else:
                            loaded[signal] = index, manifest.covers_seq
                for why, signals in not_ours.items():
                    log.warning("index snapshot %s (%s) %s; rebuilding", self.directory, ", ".join(signals), why)
            if set(loaded) == set(INDEXED_SIGNALS):
                self.indexes = {s: idx for s, (idx, _) in loaded.items()}
                # Replay from the oldest snapshot: add and remove are idempotent.
                self.seq = min(seq for _, seq in loaded.values())
                self.ready = True
                snapshot_is_old = self.catch_up() > SAVE_AFTER_REPLAYING
            else:
                self.rebuild(progress)
                snapshot_is_old = True
            if snapshot_is_old:
                self.save()

    def _owner(self, seq: int) -> str:
        """What a snapshot covering change `seq` of this store records as its owner."""
        return f"{self.store.database_id()}/{seq}/{self.store.change_mark(seq) or ''}"

    def _foreign(self, owner: str, seq: int) -> str:
        """Why a snapshot saved by `owner` covering `seq` is not this store's ("" if it is).
        Replaying this store's changes onto another database's index would answer lookups
        with its hashes under this store's record ids: a wrong match, not a missed one."""
        if owner.split("/", 1)[0] != self.store.database_id():
            return "was saved from another database" if owner else "does not say which database it was saved from"
        if owner != self._owner(seq):
            return ("covers a history this database does not have (the database was restored "
                    "from an older backup?)")
        return ""

    def rebuild(self, progress: Callable[[str, int], None] | None = None) -> None:
        with self._lock:
            # Read the sequence first: anything committed while we read is replayed after.
            seq = self.store.last_seq()
            indexes = {signal: self._build(signal, progress) for signal in INDEXED_SIGNALS}
            self.indexes, self.seq, self.ready = indexes, seq, True
            self.catch_up()

    def _build(self, signal: str, progress: Callable[[str, int], None] | None = None) -> HashIndex:
        """A fresh index of every live hash of `signal`, its structure chosen for their number."""
        bits = INDEXED_SIGNALS[signal]
        ids: list[np.ndarray] = []
        codes: list[np.ndarray] = []
        for batch in self.store.live_hashes(signal):
            ids.append(np.fromiter((i for i, _ in batch), dtype=np.int64, count=len(batch)))
            codes.append(hex_to_codes([h for _, h in batch], bits))
            if progress is not None:
                progress(signal, len(batch))
        total = sum(len(chunk) for chunk in ids)
        index = self.factory(bits, total)
        if total:
            index.add(np.concatenate(ids), np.concatenate(codes))
        return index

    def catch_up(self) -> int:
        """Apply change-log rows after self.seq; returns how many were applied."""
        applied = 0
        with self._lock:
            while True:
                changes = self.store.changes_since(self.seq, REPLAY_PAGE)
                if not changes:
                    return applied
                adds = [c.record_id for c in changes if c.kind == "add" and c.status != "retracted"]
                gone = [c.record_id for c in changes if c.kind == "retract"]
                self._apply(adds, gone)
                self.seq = changes[-1].seq
                applied += len(changes)
                self._upgrade_outgrown()

    def _upgrade_outgrown(self) -> None:
        # A small deployment starts on brute force; once an index outgrows it, rebuild that
        # signal so make_index can choose the structure for its new size.
        for signal, index in self.indexes.items():
            if isinstance(index, LinearIndex) and len(index) > LINEAR_MAX_SIZE:
                self.indexes[signal] = self._build(signal)

    def _apply(self, adds: Sequence[int], gone: Sequence[int]) -> None:
        """Add and remove whole pages per index: one add/remove call per signal, not per record."""
        entries = self.store.index_entries([*adds, *gone])
        video_ids = [i for i in [*adds, *gone] if i in entries and entries[i][0] == "vpdq"]
        frames = self.store.video_frames(video_ids) if video_ids else {}
        pdq_ids = [i for i in [*adds, *gone] if i in entries and entries[i][0] == "pdq"]
        derived = self.store.derived_hashes(pdq_ids) if pdq_ids else {}
        # Keyed by index key, so a key added twice in one page is added once.
        added: dict[str, dict[int, str]] = {signal: {} for signal in INDEXED_SIGNALS}
        removed: dict[str, list[int]] = {signal: [] for signal in INDEXED_SIGNALS}
        for record_id in adds:
            if record_id not in entries:
                continue
            signal, value, status = entries[record_id]
            if status == "retracted":
                continue
            if signal == "vpdq":
                added["vpdq"].update((f, h) for f, h, _ in frames.get(record_id, []))
            elif signal in added:
                added[signal][record_id] = value
                added[DERIVED].update((d, h.hash.hex) for d, h in derived.get(record_id, []))
        for record_id in gone:
            if record_id not in entries:
                continue
            signal = entries[record_id][0]
            if signal == "vpdq":
                removed["vpdq"].extend(f for f, _, _ in frames.get(record_id, []))
            elif signal in removed:
                removed[signal].append(record_id)
                removed[DERIVED].extend(d for d, _ in derived.get(record_id, []))
        for signal, bits in INDEXED_SIGNALS.items():
            # Removals first, then the records live now: a page that adds and retracts a record
            # leaves it out (it is retracted now, so not added), and one that retracts a record
            # and adds it again (shared again by its organisation) leaves it in.
            if removed[signal]:
                self.indexes[signal].remove(removed[signal])
            if added[signal]:
                keys = added[signal]
                self.indexes[signal].add(list(keys), hex_to_codes(list(keys.values()), bits))

    def save(self) -> None:
        if self.directory is None:
            return
        with self._lock:
            make_folder(self.directory)
            owner = self._owner(self.seq)
            for signal, index in self.indexes.items():
                index.save(self._path(signal), self.seq, owner)

    def sizes(self) -> dict[str, int]:
        return {signal: len(index) for signal, index in self.indexes.items()}

    def _path(self, signal: str) -> Path:
        assert self.directory is not None
        return self.directory / f"{signal}.faiss"
