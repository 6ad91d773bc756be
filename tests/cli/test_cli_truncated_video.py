"""A truncated upload (a video cut short in transfer) must not be hashed as if it were whole: a
faststart MP4 cut anywhere in its media data still opens, and its frames that decode gave a
partial video's hashes, which a contributor would then share. It is refused in one line, as a
truncated PNG is; the whole file still hashes."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from hashdb.errors import UnsupportedMedia
from hashdb.hashing.media_headers import check_video_whole
from support import empty_database, require_or_skip, run_cli


def ffmpeg_video(path: Path, *options: str) -> Path:
    require_or_skip(shutil.which("ffmpeg") is not None, "ffmpeg (apt-get install ffmpeg)")
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc=s=160x120:d=4:r=25",
                    "-pix_fmt", "yuv420p", *options, str(path)], check=True, timeout=120)
    return path


def avi_video(path: Path) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (96, 64))
    for n in range(30):
        writer.write(np.random.default_rng(n).integers(0, 255, (64, 96, 3), np.uint8))
    writer.release()
    return path


def cut(path: Path, share: float = 0.6) -> Path:
    """The first `share` of the file, as an upload that stopped part way."""
    short = path.with_name(path.stem + "_cut" + path.suffix)
    data = path.read_bytes()
    short.write_bytes(data[:int(len(data) * share)])
    return short


MAKERS = {
    "faststart mp4": (lambda d: ffmpeg_video(d / "v.mp4", "-movflags", "+faststart"), "MP4"),
    "mov": (lambda d: ffmpeg_video(d / "v.mov"), "MOV"),
    "webm": (lambda d: ffmpeg_video(d / "v.webm", "-c:v", "libvpx", "-b:v", "200k"), "MKV"),
    "avi": (lambda d: avi_video(d / "v.avi"), "AVI"),
}


@pytest.mark.parametrize("kind", list(MAKERS))
def test_a_truncated_video_is_refused_in_one_line(tmp_path, kind):
    make, fmt = MAKERS[kind]
    whole = make(tmp_path)
    assert run_cli("hash", str(whole)).exit_code == 0
    short = cut(whole)
    result = run_cli("hash", "--json", str(short))
    assert result.exit_code == 1 and result.stdout.count("\n") == 1, result.output
    error = json.loads(result.stdout)["error"]
    assert error.startswith(f"{fmt} is truncated:") and "whole file" in error, error
    # Nothing of it is shared either.
    db = empty_database(tmp_path / "db.sqlite")
    shared = run_cli("submit", "--db", str(db), str(short), "--label", "glorification")
    assert shared.exit_code == 1 and "is truncated" in shared.output, shared.output
    assert run_cli("export", "--db", str(db)).stdout == ""


def test_a_faststart_mp4_cut_short_decodes_yet_is_refused(tmp_path):
    # Why the container is checked: the cut file opens and yields frames, so the decoder alone
    # would have hashed it (the defect this guards against).
    short = cut(ffmpeg_video(tmp_path / "v.mp4", "-movflags", "+faststart"))
    capture = cv2.VideoCapture(str(short), cv2.CAP_FFMPEG)
    try:
        assert capture.isOpened() and capture.read()[0]
    finally:
        capture.release()
    with pytest.raises(UnsupportedMedia, match="'mdat' box is cut short"):
        check_video_whole(short.read_bytes(), "MP4")


def box(kind: bytes, payload: bytes = b"", size: int | None = None) -> bytes:
    return (len(payload) + 8 if size is None else size).to_bytes(4, "big") + kind + payload


def test_what_a_whole_container_may_hold_is_accepted():
    ftyp = box(b"ftyp", b"isom\0\0\2\0")
    check_video_whole(ftyp + box(b"moov", b"x" * 20) + box(b"mdat", b"y" * 50), "MP4")
    # A last box of size 0 runs to the end of the file, whatever is there.
    check_video_whole(ftyp + box(b"mdat", b"y" * 50, size=0), "MP4")
    # A 64-bit size (size 1) is read from after the type.
    check_video_whole(ftyp + (1).to_bytes(4, "big") + b"mdat" + (16 + 5).to_bytes(8, "big") + b"12345", "MP4")
    # Bytes after the boxes that are not a box (no printable type) play, so they pass too.
    check_video_whole(ftyp + box(b"mdat", b"y" * 10) + b"\0\1\2\3\xff\xff\xff\xff", "MP4")
    with pytest.raises(UnsupportedMedia, match="'mdat' box is cut short \\(18 of its 58 bytes"):
        check_video_whole(ftyp + box(b"mdat", b"y" * 50)[:18], "MP4")
    with pytest.raises(UnsupportedMedia, match="header of its 'mdat' box"):
        check_video_whole(ftyp + (1).to_bytes(4, "big") + b"mdat" + b"\0\0", "MP4")
    # AVI: a RIFF size never filled in (0) cannot say; one larger than the file can.
    check_video_whole(b"RIFF" + (0).to_bytes(4, "little") + b"AVI LIST", "AVI")
    with pytest.raises(UnsupportedMedia, match="RIFF chunk is cut short \\(8 of its 100 bytes"):
        check_video_whole(b"RIFF" + (100).to_bytes(4, "little") + b"AVI LIST", "AVI")
    # Matroska: a Segment of unknown size (a live recording) cannot say; a sized one can.
    ebml = bytes.fromhex("1A45DFA3") + bytes([0x80 | 4]) + b"abcd"
    check_video_whole(ebml + bytes.fromhex("18538067") + bytes([0xFF]) + b"cluster", "MKV")
    check_video_whole(ebml + bytes.fromhex("18538067") + bytes([0x80 | 7]) + b"cluster", "MKV")
    with pytest.raises(UnsupportedMedia, match="Segment is cut short \\(7 of its 9 bytes"):
        check_video_whole(ebml + bytes.fromhex("18538067") + bytes([0x80 | 9]) + b"cluster", "MKV")
