"""A video longer than max_video_frames allows at video_stored_fps (20,000 frames: 33 min 20 s
at 10 fps) is stored at a lower rate, and matched by its frames' own timestamps: through the
service and through a mirror of it. The video is 35 minutes at 1 frame a second, 160x120, so
it is cheap to write and hash, yet its container's duration is what the sampling rate is fitted to."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from hashdb.config import Settings
from hashdb.errors import MediaTooLarge
from hashdb.hashing.video import VideoSampling, hash_video
from hashdb.index.indexset import IndexSet
from hashdb.partners import mirror
from hashdb.service import HashDB
from hashdb.store.sqlite_store import SQLiteStore

from support import INDEX_FACTORY, principal, write_video

LABELS = ("attacker_manifesto",)
SCENE_SECONDS = 420  # five scenes of 7 minutes: 2,100 s, past 2,000 s = 20,000 frames at 10 fps
PHOTOS = ("astronaut.jpg", "coffee.jpg", "rocket.jpg", "camera.png", "chelsea.jpg")


def pan(photo: Path, seconds: int, size: tuple[int, int], start: int = 0) -> list[np.ndarray]:
    """A slow pan across a photo, one frame a second, each frame a little further on."""
    image = cv2.resize(cv2.imread(str(photo)), (512, 512), interpolation=cv2.INTER_AREA)
    frames = []
    for n in range(start, start + seconds):
        x, y = (n * 2) % (512 - 256), (n // 128 * 16) % (512 - 192)
        frames.append(cv2.resize(image[y:y + 192, x:x + 256], size, interpolation=cv2.INTER_AREA))
    return frames


def write(path: Path, frames: list[np.ndarray], fps: float = 1.0) -> Path:
    return write_video(path, frames, fps)


@pytest.fixture(scope="module")
def videos(media: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("long")
    scenes = [pan(media / photo, SCENE_SECONDS, (160, 120)) for photo in PHOTOS]
    whole = [frame for scene in scenes for frame in scene]
    # Minutes 10 to 25, larger: trimmed and re-encoded.
    middle = [cv2.resize(frame, (240, 180), interpolation=cv2.INTER_AREA) for frame in whole[600:1500]]
    unrelated = [*pan(media / "logo_opaque.png", 60, (160, 120)), *pan(media / "camera_16bit.png", 60, (160, 120))]
    return {"long": write(root / "long.mp4", whole), "middle": write(root / "middle.mp4", middle),
            "unrelated": write(root / "unrelated.mp4", unrelated)}


def make_service(path: Path) -> HashDB:
    # TMK left out: this is about the frames (vPDQ), and it would cost more than the rest.
    store = SQLiteStore(path)
    service = HashDB(Settings(tmk_hashes=False), store, IndexSet(store, factory=INDEX_FACTORY),
                     server_secret=b"s" * 32)
    service.load_index()
    return service


def lookup(service: HashDB, path: Path) -> list[Any]:
    actor = principal(service, "checker", "consumer")
    return list(service.lookup([service.query_for(service.hash_file(path, dihedral=True))], actor)[0].matches)


def test_a_video_too_long_for_the_stored_rate_is_stored_and_matched(videos, tmp_path):
    settings = Settings()
    seconds = 5 * SCENE_SECONDS
    assert seconds * settings.video_stored_fps > settings.limits.max_video_frames
    # Without a lowest rate to fall back to, the stored sampling refuses it, as it used to.
    with pytest.raises(MediaTooLarge, match="at 10 frames per second is over the 20000-frame limit"):
        hash_video(videos["long"], settings.limits, VideoSampling(fps=settings.video_stored_fps))

    service = make_service(tmp_path / "db.sqlite")
    try:
        hashed = service.hash_file(videos["long"])
        # One frame a second is all the container holds: every one is a sample, to its end.
        assert len(hashed.frames) == seconds
        assert hashed.frames[-1].timestamp == pytest.approx(seconds - 1)
        [result] = service.submit([service.submission_for(hashed, LABELS)],
                                  principal(service, "member", "contributor"))
        records = service.store.get_records(list(result.ids))
        [stored_id] = [i for i in result.ids if records[i].signal == "vpdq"]

        [match] = lookup(service, videos["middle"])
        assert match.id == stored_id and match.signal == "vpdq" and match.video.rule == "vpdq"
        # The stored share in query samples (seconds), by the stored frames' own times: the
        # good frames of seconds 600 to 1,500 of all the good ones (each a second apart).
        good = [f.timestamp for f in hashed.frames if (f.hash.quality or 0) >= settings.pdq_min_quality]
        assert match.video.query_pct >= 95
        assert match.video.stored_pct == pytest.approx(100 * sum(600 <= t < 1500 for t in good) / len(good), abs=1)
        assert lookup(service, videos["unrelated"]) == []

        # A mirror holds the frames with their times, and answers the same.
        local = make_service(tmp_path / "mirror.sqlite")
        try:
            admin = principal(local, "local", "admin")
            entries = mirror.check_entries(_feed(service), local.taxonomy, lambda n: f"entry {n + 1}")
            mirror.apply(local, mirror.Source.from_url("https://hashdb.example.org"), entries, None, admin)
            [mirrored] = lookup(local, videos["middle"])
            assert dataclasses.asdict(mirrored.video) == dataclasses.asdict(match.video)
            assert lookup(local, videos["unrelated"]) == []
        finally:
            local.store.close()
    finally:
        service.store.close()


def _feed(service: HashDB) -> list[dict[str, Any]]:
    from hashdb.io.output import feed_json

    admin = principal(service, "operator", "admin")
    entries, _ = service.export(admin, None, 1000)
    return [feed_json(e) for e in entries]
