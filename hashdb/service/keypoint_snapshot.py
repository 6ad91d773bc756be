"""The keypoint index's snapshot, in the hash indexes' folder (IndexSet.directory): the last
keypoint row it holds and whose database that row is, checked before the snapshot is trusted.

A snapshot of another database, of a history this one does not have (an older backup put back),
or whose last row has since been deleted or its id given to another row, is rebuilt from the
store and never used: its descriptors under this database's record ids would be a wrong match,
not a missed one. The files and their atomic save are index/keypoints.py's and index/_files.py's.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from hashdb.index._files import remove_leftovers, remove_saved
from hashdb.index.keypoints import KeypointIndex
from hashdb.store.base import HashStore

log = logging.getLogger(__name__)

FILE_NAME = "keypoints.faiss"


@dataclass(frozen=True, slots=True)
class Covered:
    """The last keypoint row an index holds, as it was read: a row deleted since (a retraction)
    and its id taken again (an older backup put back, whose ids run on differently) tells apart
    by them."""

    row_id: int
    record_id: int
    digest: str

    @classmethod
    def of(cls, row: tuple[int, int, bytes]) -> Covered:
        row_id, record_id, data = row
        return cls(row_id, record_id, hashlib.blake2b(data, digest_size=8).hexdigest())


@dataclass(frozen=True, slots=True)
class Snapshot:
    index: KeypointIndex
    covered: Covered


def owner(store: HashStore, covered: Covered, seq: int) -> str:
    """What a snapshot holding rows up to `covered`, saved at change `seq`, records as its owner:
    the database's identity, the row, and the change at `seq` (as IndexSet's owner), last since
    a change mark holds "/" itself."""
    return (f"{store.database_id()}/{covered.row_id}/{covered.record_id}/{covered.digest}/"
            f"{seq}/{store.change_mark(seq) or ''}")


def remove(directory: Path) -> None:
    """No snapshot in `directory` (a database left with no keypoints): one saved earlier would
    be loaded, found not to match, and rebuilt, with a warning, at every lookup."""
    remove_saved(directory / FILE_NAME)


def save(store: HashStore, directory: Path, index: KeypointIndex, covered: Covered) -> None:
    # The change read now: the rows the index holds were committed with changes at or before it.
    index.save(directory / FILE_NAME, covered.row_id, owner(store, covered, store.last_seq()))


def load(store: HashStore, directory: Path) -> Snapshot | None:
    """The snapshot in `directory` when there is one and it is this database's; otherwise None,
    logged when one was there but is not used."""
    path = directory / FILE_NAME
    removed = remove_leftovers(path)  # what a process killed while saving left
    if removed:
        log.info("removed %d files of an unfinished keypoint index save at %s", removed, path)
    if not path.exists():
        return None
    try:
        index, manifest = KeypointIndex.load(path)
    except Exception as exc:  # a damaged snapshot is rebuilt, never trusted
        why = str(exc).removesuffix("; rebuild it").removesuffix("; rebuild it from the store")
        log.warning("keypoint index snapshot %s is damaged (%s); rebuilding it from the store", path, why)
        return None
    covered, why = _covered(store, manifest.owner, manifest.covers_seq)
    if covered is None or not len(index):
        log.warning("keypoint index snapshot %s %s; rebuilding it from the store", path, why or "holds nothing")
        return None
    return Snapshot(index, covered)


def _covered(store: HashStore, saved_owner: str, row_id: int) -> tuple[Covered | None, str]:
    """The covered row if a snapshot saved by `saved_owner` holding rows up to `row_id` is this
    store's, else why not."""
    parts = saved_owner.split("/", 5)
    if parts[0] != store.database_id():
        why = "was saved from another database" if saved_owner else "does not say which database it was saved from"
        return None, why
    if len(parts) < 6 or not parts[4].isdigit():
        return None, "does not say which rows it holds"
    rows = store.keypoint_rows(row_id - 1, 1) if row_id > 0 else []
    if not rows or rows[0][0] != row_id:
        # A retraction deleted it (the ids are never given again), or this database is a copy
        # taken before it was stored: either way not the rows the snapshot holds.
        return None, (f"was saved up to keypoint row {row_id}, which this database does not hold (retracted "
                      "since, or a copy of the database taken before it)")
    covered = Covered.of(rows[0])
    if saved_owner != owner(store, covered, int(parts[4])):
        return None, (f"covers a history this database does not have (its keypoint row {row_id} is another "
                      "row now, or the database was restored from an older backup)")
    return covered, ""
