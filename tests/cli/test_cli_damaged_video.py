"""A damaged video (bytes changed inside it, not cut short) must not be hashed from the frames
that decode before the damage: OpenCV stops at the first packet it cannot decode, so the clip
with bytes flipped gave one frame of 88 (its tail damaged: 4.8 s of 5.9 s), shared as if it were
the whole video. It is refused in one line, as a truncated upload is; what a whole video may be
(a copy trimmed by an edit list, a variable frame rate) still hashes."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from hashdb.errors import UnsupportedMedia
from hashdb.hashing.media_headers import video_seconds
from hashdb.hashing.video import hash_video
from support import empty_database, require_or_skip, run_cli


def damaged(media: Path, out: Path, seed: int, start: int) -> Path:
    """The fixture clip with 200 bytes flipped after `start`, as the trial made it."""
    data = bytearray((media / "clip.mp4").read_bytes())
    rng = random.Random(seed)
    for _ in range(200):
        data[rng.randrange(start, len(data))] ^= rng.randrange(1, 256)
    out.write_bytes(bytes(data))
    return out


def test_a_damaged_video_is_refused_in_one_line_and_shares_nothing(tmp_path, media):
    bad = damaged(media, tmp_path / "clip_damaged.mp4", seed=10, start=3000)
    # Why the frames' end is checked: the file is whole, so the container check passes it.
    result = run_cli("hash", "--json", str(bad))
    assert result.exit_code == 1 and result.stdout.count("\n") == 1, result.output
    error = json.loads(result.stdout)["error"]
    assert "the video is damaged: its frames decode to 1.6 s of its 5.9 s (24 frames)" in error, error
    assert "whole video" in error
    db = empty_database(tmp_path / "db.sqlite")
    shared = run_cli("submit", "--db", str(db), str(bad), "--label", "glorification")
    assert shared.exit_code == 1 and "the video is damaged" in shared.output, shared.output
    assert run_cli("export", "--db", str(db)).stdout == ""


def test_hash_video_alone_refuses_by_the_frame_count(tmp_path, media):
    # Without the container's duration (a caller of hash_video alone), the frame count over the
    # frame rate (88 at 15 fps) is the length the frames must reach.
    bad = damaged(media, tmp_path / "clip_damaged.mp4", seed=10, start=3000)
    with pytest.raises(UnsupportedMedia, match="decode to 1.6 s of its 5.9 s"):
        hash_video(bad)
    assert len(hash_video(media / "clip.mp4")) > 1


def ffmpeg(*args: str) -> None:
    require_or_skip(shutil.which("ffmpeg") is not None, "ffmpeg (apt-get install ffmpeg)")
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", *args], check=True, timeout=120)


def test_a_copy_trimmed_by_edit_list_is_whole(tmp_path, media):
    # Cut without re-encoding, the MP4 keeps every packet from the keyframe before the cut and
    # an edit list that hides the first 1.3 s: 88 frames in its sample table, 68 shown.
    h264 = tmp_path / "h264.mp4"
    ffmpeg("-i", str(media / "clip.mp4"), "-c:v", "libx264", str(h264))
    trimmed = tmp_path / "trimmed.mp4"
    ffmpeg("-ss", "1.3", "-i", str(h264), "-c", "copy", str(trimmed))
    assert video_seconds(trimmed.read_bytes(), "MP4") == pytest.approx(4.57, abs=0.01)
    result = run_cli("hash", "--json", str(trimmed))
    assert result.exit_code == 0 and "frames" in json.loads(result.stdout), result.output


@pytest.mark.parametrize("suffix", [".mp4", ".webm"])
def test_a_variable_frame_rate_video_is_whole(tmp_path, media, suffix):
    # The second half at half speed: 88 frames over 11.7 s; a WebM's count is its duration
    # times its nominal 15 fps (175 frames), of which 88 decode, to its end.
    vfr = tmp_path / f"vfr{suffix}"
    codec = ["-c:v", "libvpx", "-b:v", "200k"] if suffix == ".webm" else ["-c:v", "libx264"]
    ffmpeg("-i", str(media / "clip.mp4"), "-vf", "setpts='if(lt(N,40),PTS,PTS*2)'", "-fps_mode", "vfr",
           *codec, str(vfr))
    result = run_cli("hash", "--json", str(vfr))
    assert result.exit_code == 0 and "frames" in json.loads(result.stdout), result.output


@pytest.mark.parametrize("suffix", [".mp4", ".webm", ".avi"])
def test_sound_running_on_past_the_picture_is_whole(tmp_path, media, suffix):
    # 9 s of sound over the clip's 5.9 s of picture. A Matroska file's duration is its longest
    # track's (9 s): held to it, the WebM was refused as damaged.
    out = tmp_path / f"long_sound{suffix}"
    codecs = {".mp4": ["-c:v", "libx264", "-c:a", "aac"], ".webm": ["-c:v", "libvpx", "-b:v", "200k", "-c:a", "libopus"],
              ".avi": ["-c:v", "mjpeg", "-c:a", "pcm_s16le"]}[suffix]
    ffmpeg("-i", str(media / "clip.mp4"), "-f", "lavfi", "-i", "sine=d=9", "-map", "0:v", "-map", "1:a", *codecs, str(out))
    result = run_cli("hash", "--json", str(out))
    assert result.exit_code == 0 and "frames" in json.loads(result.stdout), result.output


def test_a_damaged_webm_without_sound_is_refused(tmp_path, media):
    webm = tmp_path / "clip.webm"
    ffmpeg("-i", str(media / "clip.mp4"), "-c:v", "libvpx", "-b:v", "200k", str(webm))
    data = bytearray(webm.read_bytes())
    rng = random.Random(1)
    for _ in range(200):  # as damaged() does the MP4
        data[rng.randrange(3000, len(data))] ^= rng.randrange(1, 256)
    webm.write_bytes(bytes(data))
    result = run_cli("hash", "--json", str(webm))
    assert result.exit_code == 1 and "the video is damaged" in result.stdout, result.output


def test_the_video_track_duration_is_read_from_the_mp4_boxes(media):
    assert video_seconds((media / "clip.mp4").read_bytes(), "MP4") == pytest.approx(88 / 15, abs=0.001)
    assert video_seconds((media / "other.mp4").read_bytes(), "MP4") == pytest.approx(76 / 15, abs=0.001)
    assert video_seconds(b"\0\0\0\x10ftypisom\0\0\0\0", "MP4") is None  # no moov: cannot say
    assert video_seconds((media / "clip.mp4").read_bytes(), "AVI") is None
