"""The safelist: benign hashes admins load so that nobody can poison the shared list with them.

A submission within its signal's match threshold of a safelisted hash is stored quarantined
instead of active. The list is read from the store and cached until it changes.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from hashdb.bits import hex_to_codes
from hashdb.config import Settings
from hashdb.errors import InvalidInput
from hashdb.hashing.derived import MASKED
from hashdb.hashing.vpdq_format import video_digest
from hashdb.index.linear import LinearIndex
from hashdb.store.base import HashStore
from hashdb.trust import policy
from hashdb.types import HashValue, MediaHashes, NewRecord, SubmitOutcome

# Signals compared by Hamming distance; every other signal (md5, sha256, a vpdq item digest)
# only by equality. A vpdq digest is a sha256 of the frame list, so nearness means nothing there.
HAMMING_BITS = {"pdq": 256, "phash": 64, "dhash": 64}


@dataclass(frozen=True, slots=True)
class SafelistHit:
    entry_id: int
    distance: int
    # Set when a record's derived hash (hashing/derived.py) was the one near the entry.
    via: str | None = None
    # Set when the record is held for another hash of the same file (its signal) being near.
    sibling: str | None = None

    def reason(self, signal: str) -> str:
        near = self.sibling or signal
        what = f"{near}/{self.via}" if self.via else near
        why = f"{what} within {self.distance} bits of safelist entry {self.entry_id}"
        return f"held with its file's {why}" if self.sibling else why


def values_of(item: HashValue | MediaHashes, settings: Settings) -> list[HashValue]:
    """What a safelisted file contributes: every hash stored for it on submission, its derived
    PDQs too (a benign picture inside a border or caption band is as benign as the whole)."""
    if isinstance(item, HashValue):
        return [item]
    if item.media_type == "video":
        frames = policy.good_frames(item.frames, settings)
        return [*item.hashes, *([video_digest(frames)] if frames else [])]
    # Corner-masked hashes match only each other, within far fewer bits than the safelist's
    # radius (service/matching.py): at PDQ's radius they would hold back pictures that merely
    # share most of a frame.
    derived = [d.hash for d in policy.usable_derived(item.derived, settings) if d.via != MASKED]
    boxes = _keypoint_boxes(item.keypoints)
    unique = {(v.signal, v.hex): v for v in reversed([*item.hashes, *item.variants, *derived, *boxes])}
    return list(reversed(unique.values()))


# A record's keypoints match through the PDQs of their centred boxes (hashing/keypoints.py):
# screened as its derived hashes are, and a safelisted file's boxes listed with its hashes.
KEYPOINTS = "keypoints"


def _keypoint_boxes(data: bytes | None) -> list[HashValue]:
    if data is None:
        return []
    from hashdb.hashing import keypoints

    return keypoints.box_pdqs(keypoints.parse(data))


def check_values(values: Sequence[HashValue], settings: Settings) -> None:
    """A degenerate hash on the safelist would hold back every flat image ever submitted."""
    if not values:
        raise InvalidInput("nothing to add to the safelist")
    for value in values:
        problem = policy.submission_problem(value, settings, need_quality=False)
        if problem is not None:
            raise policy.refusal(value, f"{value.signal}:{value.hex[:16]}...: {problem}")


class SafelistMatcher:
    def __init__(self, store: HashStore, settings: Settings) -> None:
        self.store = store
        self.radii = policy.thresholds(settings, {})
        self._lock = threading.Lock()
        self._version: tuple[int, int, str, str] | None = None
        self._near: dict[str, LinearIndex] = {}
        self._exact: dict[str, dict[str, int]] = {}

    def _refresh(self, signals: set[str]) -> None:
        version = self.store.safelist_version()
        if version != self._version:
            self._near, self._exact, self._version = {}, {}, version
        for signal in signals:
            if signal in self._near or signal in self._exact:
                continue
            entries = self.store.safelist_values(signal)
            if signal in HAMMING_BITS:
                index = LinearIndex(HAMMING_BITS[signal])
                if entries:
                    index.add([i for i, _ in entries], hex_to_codes([v for _, v in entries], HAMMING_BITS[signal]))
                self._near[signal] = index
            else:
                self._exact[signal] = {v: i for i, v in entries}

    def screen(self, values: Sequence[HashValue]) -> dict[int, SafelistHit]:
        """Position in `values` -> the nearest safelist entry within the signal's threshold."""
        if not values:
            return {}
        hits: dict[int, SafelistHit] = {}
        with self._lock:
            self._refresh({v.signal for v in values})
            for signal, index in self._near.items():
                positions = [n for n, v in enumerate(values) if v.signal == signal]
                if not positions or not len(index):
                    continue
                found = index.search(hex_to_codes([values[n].hex for n in positions], HAMMING_BITS[signal]),
                                     self.radii[signal])
                for n, near in zip(positions, found):
                    if near:
                        entry_id, distance = near[0]
                        hits[n] = SafelistHit(int(entry_id), int(distance))
            for n, value in enumerate(values):
                entry = self._exact.get(value.signal, {}).get(value.hex)
                if entry is not None:
                    hits[n] = SafelistHit(entry, 0)
        return hits

    def screen_records(self, records: Sequence[NewRecord]) -> dict[int, SafelistHit]:
        """Position in `records` -> why it is held: its hash or one of its derived hashes is
        near a safelist entry. A derived hash near one would let a benign picture, wrapped in a
        border or a caption, match through the record as if it were the shared content."""
        values = [r.hash for r in records]
        owners: list[tuple[int, str | None]] = [(n, None) for n in range(len(records))]
        for n, record in enumerate(records):
            for d in record.derived:
                if d.via == MASKED:  # see values_of
                    continue
                values.append(d.hash)
                owners.append((n, d.via))
            for value in _keypoint_boxes(record.keypoints):
                values.append(value)
                owners.append((n, KEYPOINTS))
        held: dict[int, SafelistHit] = {}
        for position, hit in sorted(self.screen(values).items()):
            n, via = owners[position]
            if n not in held:
                held[n] = SafelistHit(hit.entry_id, hit.distance, via)
        return held

    @staticmethod
    def whole_inputs(held: Mapping[int, SafelistHit], owners: Sequence[int],
                     records: Sequence[NewRecord]) -> dict[int, SafelistHit]:
        """`held` spread to every record of the same input (`owners`: each record's input). A
        file whose picture is near a safelisted benign one is held whole: its md5 and sha256
        left active would flag exact re-uploads of that benign picture, the commonest copies, as
        what the submission said it was, which is what holding its PDQ was to prevent."""
        by_input: dict[int, int] = {}
        for n in sorted(held):
            by_input.setdefault(owners[n], n)
        spread = dict(held)
        for n, owner in enumerate(owners):
            first = by_input.get(owner)
            if first is not None and n not in spread:
                hit = held[first]
                spread[n] = SafelistHit(hit.entry_id, hit.distance, hit.via, records[first].hash.signal)
        return spread

    def note_holds(self, records: Sequence[NewRecord], outcomes: Sequence[SubmitOutcome],
                   held: Mapping[int, SafelistHit]) -> None:
        """Record why `screen` held back the records a submission stored quarantined, each hold
        as the act of the admin who listed its entry: the submitter asked for the record to be
        shared, and the audit log and the record's history named it as the one who held it."""
        # Written just after the records (not in their transaction, which the store owns); a
        # crash in between leaves a quarantined record listed with an empty reason, never an
        # active one.
        stored = [(n, outcome) for n, outcome in enumerate(outcomes)
                  if n in held and not outcome.duplicate and outcome.status == "quarantined"]
        if not stored:
            return
        listers = self.store.safelist_listers([held[n].entry_id for n, _ in stored])
        for n, outcome in stored:
            # No lister (an entry with no organisation): the rule's own, as the spike rule's are.
            self.store.note_quarantine([outcome.id], "safelist", held[n].reason(records[n].hash.signal),
                                       listers.get(held[n].entry_id))
