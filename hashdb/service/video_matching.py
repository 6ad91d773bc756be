"""Video matching by the vPDQ rule: candidates from the frame index, then the exact shares of
query and stored frames (hashing/vpdq_rule.py), at whatever rate each side was sampled."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from hashdb.config import Settings
from hashdb.hashing import vpdq_rule
from hashdb.index.indexset import IndexSet
from hashdb.store.base import HashStore
from hashdb.trust import policy
from hashdb.types import FrameHash, VideoMatch


def video_candidates(settings: Settings, indexes: IndexSet, store: HashStore, frames: Sequence[FrameHash],
                     radius: int) -> dict[int, tuple[int, VideoMatch]]:
    """Stored videos passing the vPDQ rule: candidates from the frame index, then exact percentages."""
    rule = dataclasses.replace(vpdq_rule.VpdqRule.from_settings(settings), distance=radius)
    query = policy.good_frames(frames, settings)
    if not query:
        return {}
    hits = indexes.search("vpdq", [f.hash.hex for f in query], radius)
    owners = store.frame_records([fid for found in hits for fid, _ in found])
    nearest: dict[int, int] = {}
    for found in hits:
        for fid, distance in found:
            record_id = owners.get(fid)
            if record_id is not None and distance < nearest.get(record_id, radius + 1):
                nearest[record_id] = distance
    stored = store.timed_frames(sorted(nearest))
    out: dict[int, tuple[int, VideoMatch]] = {}
    for record_id, distance in nearest.items():
        stored_frames = stored[record_id]
        # Stored videos are sampled denser than queries (video_stored_fps, or less for a long
        # one), queries at video_fps: the stored share is counted in query samples, and the
        # stored video's length in them is what the rule's "contained in a longer copy"
        # needs; both by the stored frames' timestamps, whatever rate they were taken at.
        interval = 1.0 / settings.video_fps
        match = vpdq_rule.compare_videos(query, stored_frames, rule, interval)
        if len({f.timestamp for f in stored_frames}) > 1:
            length: float = vpdq_rule.samples_in(stored_frames, interval, rule.min_quality)
        else:  # a feed from before frames carried times (all at 0) came from a hashdb that
            # stored every video at video_stored_fps (long ones could not be stored)
            length = len(vpdq_rule.unique_good_hashes(stored_frames, rule.min_quality)) * (
                settings.video_fps / settings.video_stored_fps)
        which = rule.which(match, vpdq_rule.sampled_frames(query, rule.min_quality), length)
        if which is not None:
            out[record_id] = (distance, dataclasses.replace(match, rule=which))
    return out
