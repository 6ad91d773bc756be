"""Edited copies of a video through the service: letterboxed SD re-encodes, time shifts, a
longer copy, and an unrelated video. Videos are made here with OpenCV from fixture photos."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from hashdb.hashing.video import VideoSampling, hash_video
from hashdb.service import HashDB

from support import principal, write_video

LABELS = ("attacker_manifesto",)
FPS = 15


def pan(photo: Path, seconds: float, size: tuple[int, int], start: int = 0) -> list[np.ndarray]:
    """A camera panning across a photo, as BGR frames of `size` (width, height)."""
    image = cv2.imread(str(photo))
    image = cv2.resize(image, (1024, 1024), interpolation=cv2.INTER_CUBIC)
    width, height = size
    frames = []
    for n in range(start, start + int(seconds * FPS)):
        x = (n * 7) % (1024 - 640)
        y = (n * 3) % (1024 - 360)
        frames.append(cv2.resize(image[y:y + 360, x:x + 640], (width, height), interpolation=cv2.INTER_AREA))
    return frames


def scenes(media: Path, seconds: float = 3.0) -> list[np.ndarray]:
    return [*pan(media / "astronaut.jpg", seconds, (640, 360)), *pan(media / "coffee.jpg", seconds, (640, 360))]


def letterboxed(frames: list[np.ndarray], width: int = 480, height: int = 360) -> list[np.ndarray]:
    """An SD 4:3 re-encode of 16:9 frames: scaled to the width, black bars above and below."""
    out = []
    for frame in frames:
        inner_h = round(width * frame.shape[0] / frame.shape[1])
        canvas = np.zeros((height, width, 3), np.uint8)
        top = (height - inner_h) // 2
        canvas[top:top + inner_h] = cv2.resize(frame, (width, inner_h), interpolation=cv2.INTER_AREA)
        out.append(canvas)
    return out


def pillarboxed(frames: list[np.ndarray]) -> list[np.ndarray]:
    """4:3 frames (the middle of each) shown in a 16:9 frame with black bars beside them."""
    out = []
    for frame in frames:
        middle = frame[:, 80:560]
        canvas = np.zeros((360, 640, 3), np.uint8)
        canvas[:, 80:560] = middle
        out.append(canvas)
    return out


def write(path: Path, frames: list[np.ndarray]) -> Path:
    return write_video(path, frames, FPS)


def submit(service: HashDB, actor, path: Path) -> int:
    """The id of the video's vPDQ record (these edits are about vPDQ; a tmk record comes after it)."""
    [result] = service.submit([service.submission_for(service.hash_file(path), LABELS)], actor)
    records = service.store.get_records(list(result.ids))
    [vpdq] = [i for i in result.ids if records[i].signal == "vpdq"]
    return vpdq


def lookup(service: HashDB, actor, path: Path):
    return service.lookup([service.query_for(service.hash_file(path, dihedral=True))], actor)[0]


@pytest.fixture
def videos(media: Path, tmp_path: Path) -> dict[str, Path]:
    original = scenes(media)
    return {
        "original": write(tmp_path / "original.mp4", original),
        "letterbox": write(tmp_path / "letterbox.mp4", letterboxed(original)),
        "shifted": write(tmp_path / "shifted.mp4", original[2:]),
        "longer": write(tmp_path / "longer.mp4", [*pan(media / "chelsea.jpg", 2.0, (640, 360)), *original]),
        "unrelated": write(tmp_path / "unrelated.mp4", [*pan(media / "chelsea.jpg", 3.0, (640, 360)),
                                                         *pan(media / "rocket.jpg", 3.0, (640, 360))]),
    }


def test_edited_copies_match_the_original_and_an_unrelated_video_does_not(service, videos):
    alice = principal(service, "alice", "contributor")
    record = submit(service, alice, videos["original"])
    for name in ("letterbox", "shifted", "longer"):
        result = lookup(service, alice, videos[name])
        assert record in [m.id for m in result.matches], name
    assert not lookup(service, alice, videos["unrelated"]).matched


def test_a_video_match_counts_the_stored_side_in_the_query_s_samples_and_names_its_rule(service, videos):
    # The stored video is sampled ten times denser than a query: an identical copy was shown as
    # 10 % of it (its samples' frames only), and a longer copy as a match on shares far below
    # the 80 % the output seemed to need, with nothing saying the stored video was inside it.
    alice = principal(service, "alice", "contributor")
    record = submit(service, alice, videos["original"])
    [same] = [m.video for m in lookup(service, alice, videos["original"]).matches if m.id == record]
    assert same is not None and (same.query_pct, same.stored_pct, same.rule) == (100.0, 100.0, "vpdq")
    [longer] = [m.video for m in lookup(service, alice, videos["longer"]).matches if m.id == record]
    assert longer is not None and longer.rule == "contained"
    assert longer.query_pct < 80 and longer.stored_pct >= 80


def test_hd_copy_matches_a_stored_letterboxed_sd_video(service, videos):
    alice = principal(service, "alice", "contributor")
    record = submit(service, alice, videos["letterbox"])
    assert record in [m.id for m in lookup(service, alice, videos["original"]).matches]


def test_pillarboxed_copy_matches_the_original(service, media, tmp_path):
    alice = principal(service, "alice", "contributor")
    original = [frame[:, 80:560] for frame in scenes(media)]
    record = submit(service, alice, write(tmp_path / "four_three.mp4", original))
    boxed = write(tmp_path / "pillarbox.mp4", pillarboxed(scenes(media)))
    assert record in [m.id for m in lookup(service, alice, boxed).matches]


def test_the_whole_frame_hash_is_kept_first(videos):
    # Frames with bars keep vPDQ's whole-frame hash; the hash inside the bars comes beside it.
    whole_only = hash_video(videos["letterbox"])
    plain = hash_video(videos["letterbox"], sampling=VideoSampling(trim_bars=True))
    times = [f.timestamp for f in plain]
    assert len(times) == 2 * len(set(times))
    whole = [f for n, f in enumerate(plain) if n % 2 == 0]
    inside = [f for n, f in enumerate(plain) if n % 2 == 1]
    assert all(a.timestamp == b.timestamp and a.hash.hex != b.hash.hex for a, b in zip(whole, inside))
    assert [f.hash for f in whole] == [f.hash for f in whole_only]
