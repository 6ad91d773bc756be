"""The vPDQ match rule as pure functions over frame hashes: no decoding, no I/O.

Meta's rule as python-threatexchange applies it: frames of quality >= 50, each hash value once,
a frame matches within 31 bits, and the query's and the stored video's matched shares.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from hashdb.bits import hex_to_codes, popcount
from hashdb.config import Settings
from hashdb.errors import InvalidInput
from hashdb.hashing.pdq import PdqSignal
from hashdb.types import FrameHash, VideoMatch

VPDQ, CONTAINED = "vpdq", "contained"


@dataclass(frozen=True, slots=True)
class VpdqRule:
    """Meta's vPDQ rule as python-threatexchange applies it, every number settable."""

    distance: int = 31
    min_quality: int = 50
    # PRODUCT.md puts the 80 % on the query: "is most of this upload known?". A short clip cut
    # from a long stored video still matches; the stored side is reported, and can be required.
    query_pct: float = 80.0
    stored_pct: float = 0.0
    # The alternative for a query longer than the stored video (see Settings); 0 turns it off.
    contained_pct: float = 0.0
    contained_min_frames: int = 5

    def __post_init__(self) -> None:
        if not 0 <= self.distance <= 256:
            raise InvalidInput(f"vPDQ frame distance must be from 0 to 256, got {self.distance}")
        if not 0 <= self.min_quality <= 100:
            raise InvalidInput(f"vPDQ minimum quality must be from 0 to 100, got {self.min_quality}")
        for label, pct in (("query", self.query_pct), ("stored", self.stored_pct),
                           ("contained", self.contained_pct)):
            if not (math.isfinite(pct) and 0 <= pct <= 100):
                raise InvalidInput(f"vPDQ {label} percentage must be from 0 to 100, got {pct}")

    @classmethod
    def from_settings(cls, settings: Settings) -> VpdqRule:
        return cls(
            distance=settings.pdq_threshold,
            min_quality=settings.pdq_min_quality,
            query_pct=settings.vpdq_query_pct,
            stored_pct=settings.vpdq_stored_pct,
            contained_pct=settings.vpdq_contained_pct,
            contained_min_frames=settings.vpdq_contained_min_frames,
        )

    def is_match(self, match: VideoMatch, query_frames: int = 0, stored_frames: float = 0.0) -> bool:
        return self.which(match, query_frames, stored_frames) is not None

    def which(self, match: VideoMatch, query_frames: int = 0, stored_frames: float = 0.0) -> str | None:
        """"vpdq": vPDQ's rule on the query's share; "contained": the stored video found
        (nearly) whole inside a longer query (given the query's number of sampled frames and
        the stored video's length in query samples, the matched query frames cover
        contained_pct of the stored video); None: neither."""
        # No good frames on a side gives 0 %, never a match, even with a 0 % requirement.
        if match.query_pct > 0 and match.query_pct >= self.query_pct and match.stored_pct >= self.stored_pct:
            return VPDQ
        if (self.contained_pct > 0 and stored_frames >= self.contained_min_frames
                and match.query_pct * query_frames >= self.contained_pct * stored_frames):
            return CONTAINED
        return None


def unique_good_hashes(frames: Iterable[FrameHash], min_quality: int = 50) -> tuple[str, ...]:
    """Hex of the frames with quality >= min_quality, each value once, in first-seen order."""
    seen: dict[str, None] = {}
    for frame in frames:
        quality = frame.hash.quality
        if quality is not None and quality >= min_quality:
            seen.setdefault(frame.hash.hex, None)
    return tuple(seen)


def video_match_from_pairs(
    query_unique: Sequence[str], stored_unique: Sequence[str], matching_pairs: Iterable[tuple[int, int]]
) -> VideoMatch:
    """Both percentages from the (query index, stored index) pairs within the frame distance.

    The pairs may come from an index search; only which frames take part matters, so
    repeated pairs are harmless. Sides with no frames give 0 %.
    """
    matched_query: set[int] = set()
    matched_stored: set[int] = set()
    for q, s in matching_pairs:
        if not (0 <= q < len(query_unique) and 0 <= s < len(stored_unique)):
            raise InvalidInput(
                f"matching pair ({q}, {s}) is outside {len(query_unique)} query "
                f"and {len(stored_unique)} stored frames"
            )
        matched_query.add(q)
        matched_stored.add(s)
    return VideoMatch(
        query_pct=_pct(len(matched_query), len(query_unique)),
        stored_pct=_pct(len(matched_stored), len(stored_unique)),
    )


def _pct(part: int, whole: int) -> float:
    return 100.0 * part / whole if whole else 0.0


def compare_videos(
    query_frames: Iterable[FrameHash], stored_frames: Iterable[FrameHash], rule: VpdqRule | None = None,
    sample_interval: float | None = None,
) -> VideoMatch:
    """The vPDQ percentages of a query video against one stored video, by brute force.

    Query frame hashes sharing a timestamp are one frame seen two ways (whole, inside bars):
    that frame matches when either does. With one hash a frame this is vPDQ's rule exactly.
    `sample_interval` (seconds): count the stored side in the query's samples
    (stored_share_by_sample), for a stored video sampled denser than its queries.
    """
    rule = rule or VpdqRule()
    query_frames, stored_frames = list(query_frames), list(stored_frames)
    query = unique_good_hashes(query_frames, rule.min_quality)
    stored = unique_good_hashes(stored_frames, rule.min_quality)
    pairs = matching_pairs(query, stored, rule.distance)
    groups = _groups(query_frames, query)
    matched = video_match_from_pairs(query, stored, pairs)
    if len(set(groups)) != len(query):
        hit = {groups[q] for q, _ in pairs}
        matched = VideoMatch(query_pct=_pct(len(hit), len(set(groups))), stored_pct=matched.stored_pct)
    if sample_interval is not None:
        found = {stored[s] for _, s in pairs}
        matched = VideoMatch(matched.query_pct,
                             stored_share_by_sample(stored_frames, found, sample_interval, rule.min_quality))
    return matched


def stored_share_by_sample(stored_frames: Iterable[FrameHash], found: set[str], interval: float,
                           min_quality: int = 50) -> float:
    """The stored side's share as vPDQ counts it at the query's sampling rate: the stored
    video's good frames grouped by query sample (`interval` seconds each), samples whose
    frames are all the same counted once, as vPDQ counts a repeated frame once; a sample is
    matched when any of its frames is in `found`. A stored video sampled at the query's rate
    (one frame a sample) gives vPDQ's unique-frame share exactly; one stored ten times
    denser no longer shows an identical copy as 10 % of it."""
    distinct = _distinct_samples(stored_frames, interval, min_quality)
    return _pct(sum(1 for hexes in distinct if hexes & found), len(distinct))


def samples_in(stored_frames: Iterable[FrameHash], interval: float, min_quality: int = 50) -> int:
    """A stored video's length in samples of `interval` seconds, counted as
    stored_share_by_sample counts them. From the frames' own timestamps, so whatever rate a
    video was stored at (Settings.video_stored_fps, a lower one fitted to a long video's frame
    cap, one a second for vPDQ hashes from elsewhere), and with no record of it."""
    return len(_distinct_samples(stored_frames, interval, min_quality))


def _distinct_samples(stored_frames: Iterable[FrameHash], interval: float, min_quality: int) -> set[frozenset[str]]:
    """The good frames' hashes grouped by sample of `interval` seconds, identical groups once."""
    samples: dict[int, set[str]] = {}
    for frame in stored_frames:
        if frame.hash.quality is not None and frame.hash.quality >= min_quality:
            # The epsilon keeps a frame stamped 2.9999999 (float time) in sample 3.
            samples.setdefault(math.floor(frame.timestamp / interval + 1e-6), set()).add(frame.hash.hex)
    return {frozenset(hexes) for hexes in samples.values()}


def sampled_frames(frames: Iterable[FrameHash], min_quality: int = 50) -> int:
    """How many sampled frames (timestamps) have a good hash: a query's frame count."""
    return len({round(f.timestamp, 3) for f in frames if (f.hash.quality or 0) >= min_quality})


def _groups(frames: Sequence[FrameHash], unique: Sequence[str]) -> list[int]:
    """For each unique hash, the first sampled frame (by timestamp) it belongs to."""
    first: dict[float, int] = {}
    by_hex: dict[str, int] = {}
    for frame in frames:
        group = first.setdefault(round(frame.timestamp, 3), len(first))
        by_hex.setdefault(frame.hash.hex, group)
    return [by_hex[h] for h in unique]


# Upper bound on the XOR block held at once (bytes), so two long videos never need gigabytes.
_BLOCK_BYTES = 1 << 24


def matching_pairs(query: Sequence[str], stored: Sequence[str], distance: int) -> list[tuple[int, int]]:
    """Every (query index, stored index) whose PDQ hashes are within `distance` bits."""
    q, s = hex_to_codes(query, PdqSignal.bits), hex_to_codes(stored, PdqSignal.bits)
    if len(q) == 0 or len(s) == 0:
        return []
    rows = max(1, _BLOCK_BYTES // (32 * len(s)))
    pairs: list[tuple[int, int]] = []
    for start in range(0, len(q), rows):
        block = q[start : start + rows]
        bits = popcount(block[:, None, :] ^ s[None, :, :]).sum(axis=2, dtype=np.uint16)
        for i, j in zip(*np.nonzero(bits <= distance)):
            pairs.append((start + int(i), int(j)))
    return pairs
