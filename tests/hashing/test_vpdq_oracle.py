"""Meta's `vpdq` package (its C++ vPDQ behind a binding, decoding with FFmpeg) as the oracle for
our video hashes, and python-threatexchange's brute-force vPDQ matcher as the oracle for our
match percentages, on Meta's reference videos and our fixture videos.

Measured tolerances (and why they are what they are):
- Frame PDQs at the same timestamp: 0 bits apart and the same quality on every reference video
  and on clip / clip_reencoded; the test allows FRAME_BITS and QUALITY_POINTS. The exception is other.mp4's first scene, a
  scrolling checkerboard: 44 and 50 bits, because the two decoders' RGB frames differ a little
  and a PDQ of a fine checkerboard aliases (pdqhash on OpenCV's frame gives our hash exactly).
- The same frames in, our rule and pytx's give equal percentages (tolerance 0).
- Each side's own pipeline (our sampling + our rule, vpdq's 1 frame a second + pytx's rule):
  the same match decision on every pair, percentages within PIPELINE_POINTS. Our scene-change
  frames are the difference: clip vs clip_reencoded is 87.5 % here, 100 % there.
- A video a pytx or HMA member shared (vpdq at one frame a second) against our lookup of a copy
  (the service's query sampling): the same decision as pytx's own on every pair, and every
  video matches itself. Before scene-change frames joined their sample, clip and pattern fell
  to 87.5 and 70 % (pattern-hd-no-bar: 0 % for its last second's three cut frames).
"""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest

import vpdq
from threatexchange.extensions.vpdq.vpdq_brute_matcher import match_VPDQ_hash_brute
from threatexchange.extensions.vpdq.vpdq_util import VpdqCompactFeature

from hashdb.config import Settings
from hashdb.hashing.video import hash_video
from hashdb.hashing.vpdq_rule import VpdqRule, compare_videos
from hashdb.service.media_hashing import hash_media_file
from hashdb.types import FrameHash, HashValue

FRAME_BITS = 10  # the PDQ README's bound for a correct port; measured 0
QUALITY_POINTS = 5  # measured 0
PIPELINE_POINTS = 12.5  # measured 12.5 (clip vs clip_reencoded)
CHECKERBOARD = {("other", 0.0), ("other", 1.0)}  # see the module docstring
VECTOR_VIDEOS = ("chair-19-sd-bar", "chair-orig-22-sd-bar", "doorknob-hd-no-bar", "pattern-hd-no-bar",
                 "test-padded-dimensions")
FIXTURE_VIDEOS = ("clip", "clip_reencoded", "other")
RULE = VpdqRule()


def distance(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


@pytest.fixture(scope="module")
def paths(vectors: Path, media: Path) -> dict[str, Path]:
    out = {n: vectors / "vpdq" / "videos" / f"{n}.mp4" for n in VECTOR_VIDEOS}
    out.update({n: media / f"{n}.mp4" for n in FIXTURE_VIDEOS})
    return out


@pytest.fixture(scope="module")
def ours(paths: dict[str, Path]) -> dict[str, tuple[FrameHash, ...]]:
    return {n: hash_video(p) for n, p in paths.items()}


@pytest.fixture(scope="module")
def theirs(paths: dict[str, Path]) -> dict[str, tuple[FrameHash, ...]]:
    """vpdq's frames, one a second (what pytx and HMA compute), as our FrameHash values."""
    return {n: tuple(FrameHash(f.frame_number, f.timestamp, HashValue("pdq", f.hex, f.quality))
                     for f in vpdq.computeHash(str(p), seconds_per_hash=1))
            for n, p in paths.items()}


def compact(frames: tuple[FrameHash, ...] | list[FrameHash]) -> list[VpdqCompactFeature]:
    return [VpdqCompactFeature(f.hash.hex, int(f.hash.quality or 0), f.timestamp) for f in frames]


def pytx_pcts(query, stored) -> tuple[float, float]:
    result = match_VPDQ_hash_brute(compact(query), compact(stored), RULE.min_quality, RULE.distance)
    return result.query_match_percent, result.compared_match_percent


@pytest.mark.parametrize("name", VECTOR_VIDEOS + FIXTURE_VIDEOS)
def test_our_frame_hashes_equal_vpdq_at_the_same_timestamps(name, ours, theirs):
    ours_at = {round(f.timestamp, 3): f for f in ours[name]}
    compared = 0
    for frame in theirs[name]:
        # Every frame vpdq takes (one a second) is one of ours: the same sampling instants.
        mine = ours_at[round(frame.timestamp, 3)]
        assert abs(int(mine.hash.quality or 0) - int(frame.hash.quality or 0)) <= QUALITY_POINTS
        if (name, frame.timestamp) in CHECKERBOARD or min(mine.hash.quality or 0, frame.hash.quality or 0) < 50:
            continue
        assert distance(mine.hash.hex, frame.hash.hex) <= FRAME_BITS, frame.timestamp
        compared += 1
    assert compared >= 2


def test_the_same_frames_give_the_same_percentages_as_pytx(ours, theirs):
    for frames in (ours, theirs):
        for a, b in itertools.product(frames, repeat=2):
            match = compare_videos(frames[a], frames[b], RULE)
            assert (match.query_pct, match.stored_pct) == pytest.approx(pytx_pcts(frames[a], frames[b]), abs=1e-9)


def test_random_frame_lists_give_the_same_percentages_as_pytx():
    # Near and far hashes, qualities either side of 50. Each hash value appears once: pytx
    # dedupes before it drops low-quality frames and we after, which differs only when one
    # value comes with two qualities on either side of the cut.
    rng = random.Random(20261206)

    def near(value: int) -> str:
        for bit in rng.sample(range(256), rng.randint(0, 60)):  # within 31 bits about half the time
            value ^= 1 << bit
        return f"{value:064x}"

    for _ in range(200):
        pool = [rng.getrandbits(256) for _ in range(4)]
        values = list(dict.fromkeys(near(rng.choice(pool)) for _ in range(rng.randint(1, 14))))
        frames = [FrameHash(i, float(i), HashValue("pdq", v, rng.choice((30, 49, 50, 80, 100))))
                  for i, v in enumerate(values)]
        cut = rng.randint(0, len(frames))
        query, stored = frames[:cut] or frames[:1], frames[cut:] or frames[-1:]
        if not any(f.hash.quality >= 50 for f in query) or not any(f.hash.quality >= 50 for f in stored):
            continue  # pytx divides by zero there; we answer 0 %
        match = compare_videos(query, stored, RULE)
        assert (match.query_pct, match.stored_pct) == pytest.approx(pytx_pcts(query, stored), abs=1e-9)


def test_each_pipeline_decides_the_same_matches(ours, theirs):
    for a, b in itertools.product(ours, repeat=2):
        mine = compare_videos(ours[a], ours[b], RULE)
        query_pct, stored_pct = pytx_pcts(theirs[a], theirs[b])
        assert RULE.is_match(mine) == (query_pct >= RULE.query_pct), (a, b)
        assert abs(mine.query_pct - query_pct) <= PIPELINE_POINTS, (a, b)
        assert abs(mine.stored_pct - stored_pct) <= PIPELINE_POINTS, (a, b)


def test_our_query_finds_every_frame_of_a_video_hashed_by_vpdq(ours, theirs):
    # A video shared by a pytx or HMA member carries vpdq's frames, one a second. Our hash of
    # the same file finds every one of them: the stored side's percentage is 100 %.
    for name in ours:
        if name == "other":
            continue  # the checkerboard frames, see the module docstring
        assert compare_videos(ours[name], theirs[name], RULE).stored_pct == 100.0, name


@pytest.fixture(scope="module")
def lookups(paths: dict[str, Path]) -> dict[str, tuple[FrameHash, ...]]:
    """Our frames of each video as `hashdb lookup` computes them (the service's query sampling)."""
    return {n: hash_media_file(Settings(), p, dihedral=True).frames for n, p in paths.items()}


def test_a_video_shared_by_pytx_at_one_frame_a_second_matches_our_lookup(lookups, theirs):
    for a, b in itertools.product(lookups, repeat=2):
        mine = compare_videos(lookups[a], theirs[b], RULE)
        query_pct, _ = pytx_pcts(theirs[a], theirs[b])
        assert RULE.is_match(mine) == (query_pct >= RULE.query_pct), (a, b, mine)
        if a == b and a != "other":  # the checkerboard frames differ, see the module docstring
            assert mine.query_pct == 100.0, (a, mine)
    assert RULE.is_match(compare_videos(lookups["other"], theirs["other"], RULE))


def test_our_stored_video_matches_a_pytx_lookup_at_one_frame_a_second(paths, theirs):
    settings = Settings()
    for name in ("clip", "clip_reencoded", "pattern-hd-no-bar"):
        stored = hash_media_file(settings, paths[name]).frames  # sampled as a submission is
        for query in ("clip", "clip_reencoded", "pattern-hd-no-bar"):
            match = compare_videos(theirs[query], stored, RULE)
            assert RULE.is_match(match) == (name[:4] == query[:4]), (query, name, match)
