"""A flat video (a still black or one-colour screen, common under an audio track) has no
picture to match: no TMK, no frame of PDQ quality >= 50. It must still be hashed, looked up and
shared by its md5 and sha256, as an image whose PDQ is refused still is."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from hashdb.hashing import tmk_video
from support import empty_database, run_cli


def flat_video(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (96, 64), seconds: int = 2) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, size)
    frame = np.zeros((size[1], size[0], 3), np.uint8)
    frame[:] = colour
    for _ in range(10 * seconds):
        writer.write(frame)
    writer.release()
    return path


invoke = run_cli


@pytest.mark.parametrize("colour", [(0, 0, 0), (0, 0, 255)], ids=["black", "red"])
def test_a_flat_video_is_hashed_shared_and_found_by_its_bytes(tmp_path, colour):
    video = flat_video(tmp_path / "still.mp4", colour)
    md5 = hashlib.md5(video.read_bytes()).hexdigest()
    hashed = invoke("hash", "--json", str(video))
    assert hashed.exit_code == 0, hashed.output
    doc = json.loads(hashed.stdout)
    assert doc["md5"] == md5 and doc["media_type"] == "video"
    # Black decodes to exact zeros, so its TMK features are all zero and it has none; a coded
    # red screen keeps a little noise, enough for a TMK.
    has_tmk = doc.get("tmk") is not None
    assert not (has_tmk and colour == (0, 0, 0))
    assert all(frame["quality"] < 50 for frame in doc["frames"])

    db = empty_database(tmp_path / "db.sqlite")
    shared = invoke("submit", "--db", str(db), "--json", str(video), "--label", "attacker_manifesto")
    assert shared.exit_code == 0, shared.output
    result = json.loads(shared.stdout)
    assert len(result["ids"]) == 2 + has_tmk  # md5 and sha256 (and a TMK), no frames
    assert any("frames not shared" in note for note in result.get("skipped", [])), result

    found = invoke("lookup", "--db", str(db), "--json", str(video))
    assert found.exit_code == 0, found.output
    answer = json.loads(found.stdout)
    assert answer["matched"]
    assert {m["signal"] for m in answer["matches"]} == {"md5", "sha256"} | ({"tmk"} if has_tmk else set())


@pytest.mark.skipif(tmk_video.unavailable() is not None, reason="tmkpy or ffmpeg missing")
def test_asked_for_by_name_a_flat_video_has_no_tmk_and_says_so(tmp_path):
    # `--signals md5,tmk` of a flat video was an error, withholding the md5 asked for beside
    # the TMK: the md5 is the answer, with a note that the TMK was left out and why.
    video = flat_video(tmp_path / "black.mp4", (0, 0, 0))
    result = invoke("hash", "--json", "--signals", "md5,tmk", str(video))
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["md5"] == hashlib.md5(video.read_bytes()).hexdigest()
    assert "tmk" not in doc and "sha256" not in doc
    assert len(doc["notes"]) == 1 and "tmk left out" in doc["notes"][0] and "flat video" in doc["notes"][0]
    text = invoke("hash", "--signals", "md5,tmk", str(video))
    assert text.exit_code == 0 and text.stdout.count("\n") == 1
    assert f"md5:{doc['md5']}" in text.stdout and "(note: tmk left out" in text.stdout
    # Asked for by default, a flat video's TMK is simply not there (tmk is optional then).
    assert "notes" not in json.loads(invoke("hash", "--json", str(video)).stdout)


def test_a_damaged_video_is_one_line_on_stderr(tmp_path):
    import subprocess
    import sys

    media = Path(__file__).resolve().parents[2] / "fixtures" / "media"
    cut = tmp_path / "cut.mp4"
    cut.write_bytes((media / "clip.mp4").read_bytes()[:3000])
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("OPENCV_")}
    done = subprocess.run([sys.executable, "-c", "from hashdb.cli import main; main()", "hash", str(cut)],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode != 0
    # FFmpeg's "moov atom not found" and OpenCV's "[ WARN:0] ... cap.cpp" lines used to come first.
    said = (done.stdout + done.stderr).strip().splitlines()
    assert len(said) == 1 and "cut.mp4" in said[0], said
