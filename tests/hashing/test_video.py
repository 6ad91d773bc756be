"""Video hashing against Meta's vPDQ reference output, the vPDQ match rule, the per-frame
format, and refusal of bad or oversized input."""

from __future__ import annotations

import dataclasses
import itertools
import math
import struct
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from hashdb.config import MediaLimits, Settings
from hashdb.errors import HashDBError, InvalidHash, InvalidInput, MediaTooLarge, UnsupportedMedia
from hashdb.hashing.pdq import PdqSignal
from hashdb.hashing.video import VideoSampling, hash_video, hash_video_bytes
from hashdb.hashing.vpdq_rule import (
    VpdqRule,
    compare_videos,
    matching_pairs,
    samples_in,
    stored_share_by_sample,
    unique_good_hashes,
    video_match_from_pairs,
)
from hashdb.hashing.vpdq_format import read_vpdq, write_vpdq
from hashdb.types import FrameHash, HashValue, VideoMatch
from support import write_video

VECTOR_VIDEOS = (
    "chair-19-sd-bar",
    "chair-orig-22-sd-bar",
    "doorknob-hd-no-bar",
    "pattern-hd-no-bar",
    "test-padded-dimensions",
)
# chair-19-sd-bar is chair-orig-22-sd-bar from its frame 111 on (Meta's own hashes of the two
# agree frame for frame within 6 bits, see test_chair_19_is_a_trimmed_copy_of_chair_orig_22).
SOURCE = {name: "chair" if name.startswith("chair") else name for name in VECTOR_VIDEOS}
RULE = VpdqRule()


def distance(a: str, b: str) -> int:
    # Independent of the numpy code under test: Python integers.
    return (int(a, 16) ^ int(b, 16)).bit_count()


@pytest.fixture(scope="module")
def meta(vectors: Path) -> dict[str, tuple[FrameHash, ...]]:
    return {n: read_vpdq((vectors / "vpdq" / "hashes" / f"{n}.txt").read_text()) for n in VECTOR_VIDEOS}


@pytest.fixture(scope="module")
def ours(vectors: Path) -> dict[str, tuple[FrameHash, ...]]:
    return {n: hash_video(vectors / "vpdq" / "videos" / f"{n}.mp4") for n in VECTOR_VIDEOS}


@pytest.fixture(scope="module")
def ours_dense(vectors: Path, ours: dict, meta: dict) -> dict[str, tuple[FrameHash, ...]]:
    # At least 12 samples a video, so the 4-second one gives enough frames to compare.
    out = {}
    for n in VECTOR_VIDEOS:
        fps = max(1, math.ceil(12 / meta[n][-1].timestamp))
        path = vectors / "vpdq" / "videos" / f"{n}.mp4"
        out[n] = ours[n] if fps == 1 else hash_video(path, sampling=VideoSampling(fps=fps))
    return out


@pytest.fixture(scope="module")
def fixture_videos(media: Path) -> dict[str, tuple[FrameHash, ...]]:
    return {n: hash_video(media / f"{n}.mp4") for n in ("clip", "clip_reencoded", "other")}


def write_avi(path: Path, images: list[np.ndarray], fps: float = 30.0) -> Path:
    """Motion-JPEG AVI: each frame coded alone, so identical inputs decode identically."""
    return write_video(path, images, fps, "MJPG")


def textured(seed: int, width: int = 160, height: int = 120) -> np.ndarray:
    coarse = np.random.default_rng(seed).uniform(0, 255, (6, 8, 3)).astype(np.float32)
    return cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC).clip(0, 255).astype(np.uint8)


def frame(hex_: str, quality: int = 100, n: int = 0) -> FrameHash:
    return FrameHash(n, float(n), HashValue("pdq", hex_, quality))


def flip_bits(hex_: str, count: int) -> str:
    return f"{int(hex_, 16) ^ ((1 << count) - 1):064x}"


# --- agreement with Meta's vPDQ -----------------------------------------------------------------


@pytest.mark.parametrize("name", VECTOR_VIDEOS)
def test_frames_agree_with_meta(name: str, ours_dense: dict, meta: dict) -> None:
    reference = meta[name]
    times = np.array([f.timestamp for f in reference])
    close = total = 0
    for mine in ours_dense[name]:
        theirs = reference[int(np.abs(times - mine.timestamp).argmin())]
        assert abs(theirs.timestamp - mine.timestamp) < 0.02, "timestamps drift from Meta's"
        if mine.hash.quality >= 50 and theirs.hash.quality >= 50:
            total += 1
            close += distance(mine.hash.hex, theirs.hash.hex) <= 31
    assert total >= 8, "too few comparable frames for the check to mean anything"
    assert close >= 0.95 * total, f"{close}/{total} frames within 31 bits of Meta's"


@pytest.mark.parametrize("name", VECTOR_VIDEOS)
def test_recomputed_video_matches_metas_hashes(name: str, ours: dict, meta: dict) -> None:
    # The deployment direction: an upload hashed here is the query, Meta's hashes are stored.
    match = compare_videos(ours[name], meta[name])
    assert match.query_pct >= 80 and RULE.is_match(match), match


@pytest.mark.parametrize("name", VECTOR_VIDEOS)
def test_metas_one_per_second_hashes_match_recomputed(name: str, ours: dict, meta: dict) -> None:
    # Meta's file has every frame; vPDQ at one hash a second keeps the first frame of each second.
    per_second = {int(f.timestamp): f for f in reversed(meta[name])}
    match = compare_videos(per_second.values(), ours[name])
    assert RULE.is_match(match), match


def test_chair_19_is_a_trimmed_copy_of_chair_orig_22(ours: dict, meta: dict) -> None:
    short, full = meta["chair-19-sd-bar"], meta["chair-orig-22-sd-bar"]
    assert max(distance(a.hash.hex, b.hash.hex) for a, b in zip(short, full[111:])) <= 8
    assert RULE.is_match(compare_videos(short, full))
    # Our hashes of the short one, queried against the full one as Meta hashed it.
    assert RULE.is_match(compare_videos(ours["chair-19-sd-bar"], full))


@pytest.mark.parametrize("a, b", [p for p in itertools.permutations(VECTOR_VIDEOS, 2) if SOURCE[p[0]] != SOURCE[p[1]]])
def test_different_vector_videos_do_not_match(a: str, b: str, ours: dict, meta: dict) -> None:
    # They really differ: by Meta's own hashes, hardly any frame of one is near the other.
    assert compare_videos(meta[a], meta[b]).query_pct < 20
    assert not RULE.is_match(compare_videos(ours[a], ours[b]))
    assert not RULE.is_match(compare_videos(ours[a], meta[b]))


def test_reencoded_fixture_matches_and_other_does_not(fixture_videos: dict) -> None:
    clip, reencoded, other = fixture_videos["clip"], fixture_videos["clip_reencoded"], fixture_videos["other"]
    assert RULE.is_match(compare_videos(reencoded, clip))
    assert RULE.is_match(compare_videos(clip, reencoded))
    assert compare_videos(other, clip) == VideoMatch(0.0, 0.0)
    assert not RULE.is_match(compare_videos(clip, other))


# --- sampling -----------------------------------------------------------------------------------


def test_samples_at_the_set_rate(media: Path) -> None:
    # clip.mp4 is 88 frames at 15 fps: whole seconds are frames 0, 15, ..., 75.
    one = hash_video(media / "clip.mp4", sampling=VideoSampling(fps=1, scene_probe_fps=0))
    assert [f.frame_number for f in one] == [0, 15, 30, 45, 60, 75]
    assert [f.timestamp for f in one] == pytest.approx([0, 1, 2, 3, 4, 5])
    two = hash_video(media / "clip.mp4", sampling=VideoSampling(fps=2, scene_probe_fps=0))
    # Half seconds fall between frames: each sample is the first frame at or after k / 2 s.
    assert [f.frame_number for f in two] == [math.ceil(k * 15 / 2) for k in range(12)]


def test_scene_changes_are_sampled(media: Path) -> None:
    # clip.mp4 cuts to a new scene every 22 frames (1.5 s at 15 fps, rounded down).
    frames = hash_video(media / "clip.mp4", sampling=VideoSampling(fps=0.01))
    cuts = [22 / 15, 44 / 15, 66 / 15]
    assert frames[0].frame_number == 0
    starts = [f.timestamp for f in frames[1:]]
    assert len(starts) == len(cuts)
    for cut, start in zip(cuts, starts):
        assert cut - 1e-6 <= start <= cut + 0.2 + 1 / 15, (cut, start)
    assert len(hash_video(media / "clip.mp4", sampling=VideoSampling(fps=0.01, scene_probe_fps=0))) == 1


def test_static_video_collapses_to_one_frame(tmp_path: Path) -> None:
    path = write_avi(tmp_path / "static.avi", [textured(1)] * 90)  # 3 s of one picture
    frames = hash_video(path, sampling=VideoSampling(fps=5))
    assert len(frames) == 1
    assert (frames[0].frame_number, frames[0].timestamp) == (0, 0.0)


def test_consecutive_duplicates_only_collapse(tmp_path: Path) -> None:
    a, b = textured(1), textured(2)
    path = write_avi(tmp_path / "aab.avi", [a] * 30 + [b] * 30 + [a] * 30)
    frames = hash_video(path, sampling=VideoSampling(fps=1, scene_probe_fps=0))
    assert [f.frame_number for f in frames] == [0, 30, 60]
    assert frames[0].hash == frames[2].hash != frames[1].hash


def test_frames_are_hashed_as_rgb_not_bgr(tmp_path: Path) -> None:
    # FFV1 is lossless, so the decoded frame is exactly the written one and its PDQ is known.
    # Red and blue tiles: a swapped channel order inverts the luminance pattern PDQ sees.
    y, x = np.mgrid[0:128, 0:192]
    red = (y // 32 + x // 48) % 2 == 0
    bgr = textured(3, 192, 128) // 8
    bgr[red, 2] = 255
    bgr[~red, 0] = 255
    path = tmp_path / "tiles.mkv"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), 10, (192, 128))
    for _ in range(3):
        writer.write(bgr)
    writer.release()
    (only,) = hash_video(path)
    right = PdqSignal().compute(Image.fromarray(np.ascontiguousarray(bgr[:, :, ::-1])))
    wrong = PdqSignal().compute(Image.fromarray(bgr))
    assert distance(right.hex, wrong.hex) > 31, "the test image must tell the orders apart"
    assert only.hash == right


def test_sampling_from_settings_and_validation() -> None:
    assert VideoSampling.from_settings(Settings(video_fps=2.5)).fps == 2.5
    for bad in ({"fps": 0}, {"fps": float("nan")}, {"scene_probe_fps": -1}, {"scene_threshold": 300}, {"decode_threads": -2},
                {"min_fps": 2}, {"min_fps": -1}):
        with pytest.raises(InvalidInput):
            VideoSampling(**bad)


def test_hash_video_bytes_equals_path_and_cleans_up(media: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    data = (media / "clip.mp4").read_bytes()
    assert hash_video_bytes(data) == hash_video(media / "clip.mp4")
    with pytest.raises(UnsupportedMedia):
        hash_video_bytes(b"not a video at all")
    assert list(tmp_path.iterdir()) == []


# --- refusal of bad input -------------------------------------------------------------------------


def test_text_file_named_mp4(tmp_path: Path) -> None:
    path = tmp_path / "notes.mp4"
    path.write_text("#EXTM3U\nfile:///etc/passwd\n")
    with pytest.raises(UnsupportedMedia, match="notes.mp4: "):
        hash_video(path)


def test_image_is_not_a_video(media: Path, tmp_path: Path) -> None:
    path = tmp_path / "photo.mp4"
    path.write_bytes((media / "chelsea.jpg").read_bytes())
    with pytest.raises(UnsupportedMedia, match="photo.mp4: this is an image, not a video"):
        hash_video(path)


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    with pytest.raises(UnsupportedMedia, match="empty"):
        hash_video(path)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedMedia, match="cannot read"):
        hash_video(tmp_path / "missing.mp4")
    with pytest.raises(UnsupportedMedia, match="not a regular file"):
        hash_video(tmp_path)


def test_mp4_without_frames_cannot_be_opened(tmp_path: Path) -> None:
    # An MP4 writer released before any frame writes a container with no video track.
    path = tmp_path / "noframes.mp4"
    cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, (64, 48)).release()
    assert path.stat().st_size > 0
    with pytest.raises(UnsupportedMedia, match="cannot open as a video"):
        hash_video(path)


def test_avi_with_zero_frames(tmp_path: Path) -> None:
    # The AVI writer keeps its video track, so this one opens and yields no frame.
    path = write_avi(tmp_path / "noframes.avi", [])
    assert cv2.VideoCapture(str(path), cv2.CAP_FFMPEG).isOpened()
    with pytest.raises(UnsupportedMedia, match="no decodable frames"):
        hash_video(path)


def test_truncated_mp4(media: Path, tmp_path: Path) -> None:
    data = (media / "clip.mp4").read_bytes()
    path = tmp_path / "half.mp4"
    path.write_bytes(data[: len(data) // 2])  # the index (moov) is at the end: gone
    with pytest.raises(UnsupportedMedia, match="cannot open"):
        hash_video(path)


def test_caps_from_metadata(media: Path) -> None:
    clip = media / "clip.mp4"  # 5.9 s, 320x240, 6 regular samples
    with pytest.raises(MediaTooLarge, match="second limit"):
        hash_video(clip, MediaLimits(max_video_seconds=3))
    with pytest.raises(MediaTooLarge, match="frame limit"):
        hash_video(clip, MediaLimits(max_video_frames=4))
    with pytest.raises(MediaTooLarge, match="pixel limit"):
        hash_video(clip, MediaLimits(max_video_pixels=320 * 240 - 1))
    with pytest.raises(MediaTooLarge, match="byte limit"):
        hash_video(clip, MediaLimits(max_bytes=1000))
    with pytest.raises(MediaTooLarge, match="byte limit"):
        hash_video_bytes(clip.read_bytes(), MediaLimits(max_bytes=1000))


def test_frame_cap_enforced_while_decoding(media: Path) -> None:
    # The container predicts 6 samples at 1 fps; the scene changes add 2 it cannot know about.
    clip = media / "clip.mp4"
    assert len(hash_video(clip, MediaLimits(max_video_frames=8))) == 8
    with pytest.raises(MediaTooLarge, match="more than 7 sampled frames"):
        hash_video(clip, MediaLimits(max_video_frames=7))


def panning(seconds: float, bars: bool = False, fps: int = 30) -> list[np.ndarray]:
    """A smooth pan (no scene cuts, every frame different), in a 4:3 frame with bars if asked."""
    strip = textured(0, 160 + 2 * int(seconds * fps), 90)
    frames = [strip[:, 2 * n : 2 * n + 160] for n in range(int(seconds * fps))]
    return [cv2.copyMakeBorder(f, 15, 15, 0, 0, cv2.BORDER_CONSTANT) if bars else f for f in frames]


def test_a_video_over_the_frame_cap_is_sampled_at_the_highest_rate_that_fits(tmp_path: Path) -> None:
    path = write_avi(tmp_path / "pan.avi", panning(10))  # 300 frames, 10 s
    limits = MediaLimits(max_video_frames=40)
    with pytest.raises(MediaTooLarge, match="10.0 s at 10 frames per second is over the 40-frame limit"):
        hash_video(path, limits, VideoSampling(fps=10, scene_probe_fps=0))
    frames = hash_video(path, limits, VideoSampling(fps=10, scene_probe_fps=0, min_fps=1))
    # 95 % of the cap over 10 s: 3.8 a second, the first frame (of 30 a second) at or after each k / 3.8.
    expected = [math.ceil(k / 3.8 * 30 - 1e-9) / 30 for k in range(38)]
    assert [f.timestamp for f in frames] == pytest.approx(expected)
    # Never below the lowest rate: past it, the cap refuses the video as before.
    with pytest.raises(MediaTooLarge, match="at 5 frames per second is over the 40-frame limit"):
        hash_video(path, limits, VideoSampling(fps=10, scene_probe_fps=0, min_fps=5))


def test_a_fitted_rate_is_fitted_again_when_bars_double_the_hashes(tmp_path: Path) -> None:
    path = write_avi(tmp_path / "boxed.avi", panning(10, bars=True))
    limits = MediaLimits(max_video_frames=40)
    boxed = VideoSampling(fps=10, scene_probe_fps=0, trim_bars=True, min_fps=1)
    with pytest.raises(MediaTooLarge, match="more than 40 sampled frames"):
        hash_video(path, limits, dataclasses.replace(boxed, min_fps=3.8))  # no lower rate allowed
    frames = hash_video(path, limits, boxed)
    times = sorted({f.timestamp for f in frames})
    # Two hashes a sample (whole frame, inside the bars): about half the 38 samples fit.
    assert len(frames) == 2 * len(times) <= 40 and 15 <= len(times) <= 20
    assert times[-1] > 9 - 1 / 1.5  # the samples still reach the end


def test_duration_cap_enforced_when_the_header_lies(tmp_path: Path) -> None:
    path = write_avi(tmp_path / "liar.avi", [textured(0)] * 30 + [textured(1)] * 30)  # 2 s at 30 fps
    data = bytearray(path.read_bytes())
    for chunk, offset in ((b"avih", 16), (b"strh", 32)):  # total frames / stream length fields
        at = data.index(chunk) + 8 + offset
        assert struct.unpack("<I", data[at : at + 4]) == (60,)
        data[at : at + 4] = struct.pack("<I", 2)
    path.write_bytes(bytes(data))
    assert cv2.VideoCapture(str(path), cv2.CAP_FFMPEG).get(cv2.CAP_PROP_FRAME_COUNT) == 2
    assert len(hash_video(path, MediaLimits(max_video_seconds=2))) == 2
    with pytest.raises(MediaTooLarge, match="frame at 1.0 s is over the 1-second limit"):
        hash_video(path, MediaLimits(max_video_seconds=1))


# --- the vPDQ match rule ------------------------------------------------------------------------

A = PdqSignal.examples[0]
B = flip_bits(A, 128)


def test_frame_distance_threshold_is_inclusive() -> None:
    assert compare_videos([frame(A)], [frame(flip_bits(A, 31))]) == VideoMatch(100.0, 100.0)
    assert compare_videos([frame(A)], [frame(flip_bits(A, 32))]) == VideoMatch(0.0, 0.0)
    assert compare_videos([frame(A)], [frame(flip_bits(A, 32))], VpdqRule(distance=32)).query_pct == 100.0


def test_low_quality_frames_are_dropped_and_duplicates_counted_once() -> None:
    query = [frame(A, 100, 0), frame(A, 90, 1), frame(A, 100, 2), frame(B, 49, 3)]
    stored = [frame(A), frame(flip_bits(B, 200))]
    assert unique_good_hashes(query) == (A,)
    assert compare_videos(query, stored) == VideoMatch(100.0, 50.0)
    assert unique_good_hashes(query, min_quality=0) == (A, B)
    assert compare_videos(query, stored, VpdqRule(min_quality=0)) == VideoMatch(50.0, 50.0)


def test_both_percentages_and_the_settable_thresholds() -> None:
    c, d, e = flip_bits(A, 64), flip_bits(A, 96), flip_bits(A, 160)
    query = [frame(h, n=i) for i, h in enumerate((A, B, c, d, e))]
    stored = [frame(flip_bits(A, 3)), frame(B), frame(c), frame(d)]
    match = compare_videos(query, stored)
    assert match == VideoMatch(80.0, 100.0)
    assert VpdqRule().is_match(match)
    assert not VpdqRule(query_pct=81).is_match(match)
    reverse = compare_videos(stored[:2], query)
    assert reverse == VideoMatch(100.0, 40.0)
    assert VpdqRule().is_match(reverse) and not VpdqRule(stored_pct=50).is_match(reverse)


def test_a_denser_stored_video_is_counted_in_the_query_s_samples() -> None:
    import random

    rng = random.Random(7)
    # Ten frames a second for 6 s, each 100+ bits from the others: a query of the same video
    # at one frame a second holds exactly the frames at whole seconds.
    dense = [FrameHash(n, n / 10, HashValue("pdq", f"{rng.getrandbits(256):064x}", 100)) for n in range(60)]
    query = [f for f in dense if f.frame_number % 10 == 0]
    assert compare_videos(query, dense) == VideoMatch(100.0, 10.0)  # vPDQ's share: 6 of 60
    assert compare_videos(query, dense, sample_interval=1.0) == VideoMatch(100.0, 100.0)
    assert compare_videos(query[:3], dense, sample_interval=1.0) == VideoMatch(100.0, 50.0)
    # A still second (all its frames one hash) is one sample, and so is a repeat of it.
    still = [FrameHash(n, 6 + n / 10, HashValue("pdq", A, 100)) for n in range(20)]
    assert stored_share_by_sample([*dense, *still], {A}, 1.0) == pytest.approx(100 / 7)
    # One frame a sample: vPDQ's unique-frame share exactly, a repeated frame counted once.
    sparse = [FrameHash(n, float(n), HashValue("pdq", h, 100)) for n, h in enumerate((A, B, A, flip_bits(A, 64)))]
    for found in ({A}, {B}, {A, B}, set()):
        pairs = [(0, i) for i, h in enumerate(unique_good_hashes(sparse)) if h in found]
        assert stored_share_by_sample(sparse, found, 1.0) == video_match_from_pairs(
            ("0" * 64,), unique_good_hashes(sparse), pairs).stored_pct


def test_a_stored_video_s_length_in_query_samples_is_read_from_its_frames_times() -> None:
    import random

    rng = random.Random(8)
    hexes = [f"{rng.getrandbits(256):064x}" for _ in range(1200)]
    # 60 s stored at 10 a second (hashdb's rate), at 1 a second (vPDQ from elsewhere), at 2.5 a
    # second (a long video's fitted rate), and at 10 a second with a second hash a frame (bars):
    # 60 one-second samples each.
    for rate, per_frame in ((10, 1), (1, 1), (2.5, 1), (10, 2)):
        frames = [FrameHash(n, n / rate, HashValue("pdq", hexes[(n * per_frame + k) % 1200], 100))
                  for n in range(int(60 * rate)) for k in range(per_frame)]
        assert samples_in(frames, 1.0) == 60
    # A still stretch is one sample however long; low-quality frames are not counted.
    still = [FrameHash(n, float(n), HashValue("pdq", A, 100)) for n in range(10)]
    assert samples_in([*still, FrameHash(10, 10.0, HashValue("pdq", B, 20))], 1.0) == 1


def test_the_rule_says_which_of_its_two_parts_matched() -> None:
    rule = VpdqRule(contained_pct=80, contained_min_frames=5)
    assert rule.which(VideoMatch(90.0, 10.0)) == "vpdq"
    # A 30-sample query holding all of a 6-sample stored video: 20 % of the query.
    assert rule.which(VideoMatch(20.0, 100.0), query_frames=30, stored_frames=6) == "contained"
    assert rule.which(VideoMatch(10.0, 50.0), query_frames=30, stored_frames=6) is None


def test_no_good_frames_never_match() -> None:
    match = compare_videos([frame(A, 10)], [frame(A)])
    assert match == VideoMatch(0.0, 0.0)
    assert not VpdqRule(query_pct=0).is_match(match)


def test_match_from_index_pairs() -> None:
    query, stored = (A, B, flip_bits(A, 64)), (A, B)
    assert video_match_from_pairs(query, stored, [(0, 0), (1, 1), (0, 0)]) == VideoMatch(200 / 3, 100.0)
    assert video_match_from_pairs(query, stored, []) == VideoMatch(0.0, 0.0)
    with pytest.raises(InvalidInput, match="outside"):
        video_match_from_pairs(query, stored, [(3, 0)])
    with pytest.raises(InvalidInput, match="outside"):
        video_match_from_pairs(query, stored, [(0, -1)])


def test_matching_pairs_equal_brute_force() -> None:
    rng = np.random.default_rng(42)
    base = [f"{int.from_bytes(rng.bytes(32), 'big'):064x}" for _ in range(8)]
    # Neighbours of the base hashes at 0..60 bits, so both sides of 31 occur.
    near = [f"{int(h, 16) ^ int.from_bytes(rng.bytes(32), 'big') & ((1 << int(rng.integers(0, 61))) - 1):064x}" for h in base * 5]
    query, stored = base + near[:20], near[20:] + base[:3]
    expected = sorted((i, j) for i, q in enumerate(query) for j, s in enumerate(stored) if distance(q, s) <= 31)
    assert len(expected) > 10
    assert sorted(matching_pairs(query, stored, 31)) == expected
    assert matching_pairs([], stored, 31) == []


def test_rule_from_settings_and_validation() -> None:
    rule = VpdqRule.from_settings(Settings(pdq_threshold=20, vpdq_query_pct=70, vpdq_stored_pct=10))
    assert (rule.distance, rule.min_quality, rule.query_pct, rule.stored_pct) == (20, 50, 70, 10)
    for bad in ({"distance": -1}, {"min_quality": 101}, {"query_pct": 120}, {"stored_pct": float("nan")}):
        with pytest.raises(InvalidInput):
            VpdqRule(**bad)


# --- the per-frame text format ------------------------------------------------------------------


@pytest.mark.parametrize("name", VECTOR_VIDEOS)
def test_vpdq_files_round_trip(name: str, vectors: Path) -> None:
    text = (vectors / "vpdq" / "hashes" / f"{name}.txt").read_text()
    frames = read_vpdq(text)
    assert len(frames) == text.count("\n")
    assert read_vpdq(write_vpdq(frames)) == frames
    assert write_vpdq(frames) == text


def test_vpdq_fields_are_read_as_written() -> None:
    (f,) = read_vpdq(f"7,64,{A.upper()},1.250\r\n")
    assert f == FrameHash(7, 1.25, HashValue("pdq", A, 64))
    assert write_vpdq([f]) == f"7,64,{A},1.250\n"


GOOD = f"0,100,{A},0.000"


@pytest.mark.parametrize(
    "text, error, line",
    [
        (f"{GOOD}\n0,100,{A}", InvalidInput, 2),
        (f"{GOOD}\n1,100,{A},0.1,extra", InvalidInput, 2),
        (f"{GOOD}\n\n1,100,{A},0.1", InvalidInput, 2),
        (f"1,100,{A[:-1]},0.0", InvalidHash, 1),
        (f"1,100,{A[:-1]}g,0.0", InvalidHash, 1),
        (f"1,100,{A[:-1]}\uff10,0.0", InvalidHash, 1),
        (f"{GOOD}\n1,101,{A},0.1", InvalidHash, 2),
        (f"1,-1,{A},0.0", InvalidHash, 1),
        (f"1,,{A},0.0", InvalidHash, 1),
        (f"x,100,{A},0.0", InvalidInput, 1),
        (f"\uff11,100,{A},0.0", InvalidInput, 1),
        (f"1,100,{A},nan", InvalidInput, 1),
        (f"1,100,{A},1e3", InvalidInput, 1),
        (f"1,100,{A},-0.5", InvalidInput, 1),
        (f"1,100,{A},{'9' * 400}", InvalidInput, 1),
        (f"{GOOD}\n{GOOD}", InvalidInput, 2),
        (f"5,100,{A},1.0\n6,100,{A},0.5", InvalidInput, 2),
    ],
)
def test_malformed_vpdq_lines_name_the_line(text: str, error: type[HashDBError], line: int) -> None:
    with pytest.raises(error, match=f"line {line}:"):
        read_vpdq(text)


def test_empty_vpdq_text_and_unwritable_frames() -> None:
    for text in ("", "\n"):
        with pytest.raises(InvalidInput):
            read_vpdq(text)
    with pytest.raises(InvalidInput, match="quality"):
        write_vpdq([FrameHash(0, 0.0, HashValue("pdq", A, None))])
    with pytest.raises(InvalidInput):
        write_vpdq([FrameHash(0, 0.0, HashValue("phash", "0" * 16, 100))])
