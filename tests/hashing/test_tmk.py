"""TMK+PDQF: our `.tmk` parser and our two-level scores against tmkpy (Meta's TMK C++ behind
SWIG) as the oracle, strict refusal of malformed hashes, and what a re-encode, a smaller copy
and an unrelated video score.

Measured: our level-1 and level-2 scores equal tmkpy's within 6e-7 on every pair of the fixture
and reference videos (the kernel's offsets are evaluated exactly here, by a float32 recurrence
there); the test allows SCORE_TOLERANCE.
"""

from __future__ import annotations

import base64
import itertools
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
import tmkpy

from hashdb.errors import InvalidHash, ToolMissing
from hashdb.hashing import tmk, tmk_video

from support import tmk_of

SCORE_TOLERANCE = 1e-5
FIXTURES = ("clip", "clip_reencoded", "other")


def tmkpy_features(path: Path, out: Path):
    """tmkpy's own hash of a video, written to a .tmk file by tmkpy itself."""
    features = tmkpy.hashVideo(str(path), "/usr/bin/ffmpeg")
    features.writeToOutputFile(str(out), "test")
    return features


@pytest.fixture(scope="module")
def theirs(media: Path, tmp_path_factory) -> dict[str, tuple[object, bytes]]:
    folder = tmp_path_factory.mktemp("tmk")
    out = {}
    for name in FIXTURES:
        target = folder / f"{name}.tmk"
        features = tmkpy_features(media / f"{name}.mp4", target)
        out[name] = (features, target.read_bytes())
    return out


def test_our_parse_of_a_tmk_file_is_what_tmkpy_holds(theirs):
    for name, (features, data) in theirs.items():
        mine = tmk.parse_tmk(data)
        assert mine.frame_count == features.getFrameFeatureCount()
        assert np.array_equal(mine.average, np.array(features.getPureAverageFeature(), dtype=np.float32))
        assert np.array_equal(mine.cos, np.array(features.getCosFeatures(), dtype=np.float32))
        assert np.array_equal(mine.sin, np.array(features.getSinFeatures(), dtype=np.float32))
        assert tuple(features.getPeriods()) == tmk.PERIODS


def test_poullot_coefficients_from_their_formula_equal_tmks_table():
    table = np.array(tmkpy.TMKFeatureVectors.makePoullotFourierCoefficients(), dtype=np.float32)
    assert np.allclose(tmk.poullot_coefficients(), table, rtol=1e-6, atol=0)


def test_our_scores_equal_tmkpys_on_every_pair(theirs):
    for a, b in itertools.product(theirs, repeat=2):
        (fa, da), (fb, db) = theirs[a], theirs[b]
        mine_a, mine_b = tmk.parse_tmk(da), tmk.parse_tmk(db)
        assert tmk.level1(mine_a, mine_b) == pytest.approx(
            tmkpy.TMKFeatureVectors.computeLevel1Score(fa, fb), abs=SCORE_TOLERANCE), (a, b)
        assert tmk.level2(mine_a, mine_b) == pytest.approx(
            tmkpy.TMKFeatureVectors.computeLevel2Score(fa, fb), abs=SCORE_TOLERANCE), (a, b)


@pytest.mark.vectors
def test_a_trimmed_copy_matches_through_the_time_shift(vectors, tmp_path):
    # chair-19-sd-bar is chair-orig-22-sd-bar from its frame 111 on: level 2 finds the offset.
    videos = vectors / "vpdq" / "videos"
    a = tmkpy_features(videos / "chair-19-sd-bar.mp4", tmp_path / "a.tmk")
    b = tmkpy_features(videos / "chair-orig-22-sd-bar.mp4", tmp_path / "b.tmk")
    mine_a, mine_b = tmk.parse_tmk((tmp_path / "a.tmk").read_bytes()), tmk.parse_tmk((tmp_path / "b.tmk").read_bytes())
    level2 = tmk.level2(mine_a, mine_b)
    assert level2 == pytest.approx(tmkpy.TMKFeatureVectors.computeLevel2Score(a, b), abs=SCORE_TOLERANCE)
    assert level2 >= tmk.LEVEL2_THRESHOLD and tmk.level1(mine_a, mine_b) >= tmk.LEVEL1_THRESHOLD


def test_a_reencode_and_a_smaller_copy_match_an_unrelated_video_does_not(media, tmp_path):
    small = tmp_path / "clip_small.mp4"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(media / "clip.mp4"), "-vf",
                    "scale=iw/2:ih/2", "-c:v", "libx264", "-crf", "32", str(small)], check=True)
    original = tmk.parse_tmk(tmk_of(media / "clip.mp4"))
    rule = tmk.TmkRule()
    for copy in (media / "clip_reencoded.mp4", small):
        other = tmk.parse_tmk(tmk_video.hash_tmk(copy))
        assert tmk.level1(original, other) >= rule.level1 and tmk.level2(original, other) >= rule.level2, copy
    unrelated = tmk.parse_tmk(tmk_of(media / "other.mp4"))
    assert tmk.level1(original, unrelated) < rule.level1
    assert tmk.level2(original, unrelated) < rule.level2


def test_our_hash_of_a_video_is_tmkpys_file_byte_for_byte(media, theirs):
    assert tmk_of(media / "clip.mp4") == theirs["clip"][1]


def test_text_form_round_trips(theirs):
    data = theirs["clip"][1]
    text = tmk.encode_text(data)
    assert len(text) == tmk.TEXT_LENGTH and base64.b64decode(text) == data
    assert tmk.parse_text(text).data == data


def _with(data: bytes, offset: int, packed: bytes) -> bytes:
    return data[:offset] + packed + data[offset + len(packed):]


def test_malformed_tmk_files_are_refused(theirs):
    data = theirs["clip"][1]
    floats = 32 + 4 * len(tmk.PERIODS)  # where the float32s start
    bad = {
        "short": data[:-4],
        "long": data + b"\0\0\0\0",
        "magic": b"TMK1FVECXXXX" + data[12:],
        "fps": _with(data, 12, struct.pack("<i", 30)),
        "no frames": _with(data, 28, struct.pack("<i", 0)),
        "periods": _with(data, 32, struct.pack("<i", 2732)),
        "coefficients": _with(data, floats, struct.pack("<f", 0.5)),
        "nan": _with(data, len(data) - 4, struct.pack("<f", float("nan"))),
        "infinity": _with(data, floats + 4 * 40, struct.pack("<f", float("inf"))),
        "zero average": _with(data, floats + 4 * tmk.COEFFICIENTS, bytes(4 * tmk.DIMENSION)),
    }
    for what, blob in bad.items():
        with pytest.raises(InvalidHash):
            tmk.parse_tmk(blob)
        with pytest.raises(InvalidHash):
            tmk.parse_text(tmk.encode_text(blob))
        assert what


@pytest.mark.parametrize("text", ["", "abc", "A" * (tmk.TEXT_LENGTH - 1), "*" * tmk.TEXT_LENGTH,
                                  "é" * tmk.TEXT_LENGTH, 12, None])
def test_malformed_tmk_text_is_refused(text):
    with pytest.raises(InvalidHash):
        tmk.parse_text(text)


def test_missing_ffmpeg_is_a_clear_error(media, monkeypatch, tmp_path):
    monkeypatch.setenv("HASHDB_FFMPEG", str(tmp_path / "no-ffmpeg"))
    assert "ffmpeg" in (tmk_video.unavailable() or "")
    with pytest.raises(ToolMissing, match="ffmpeg"):
        tmk_video.hash_tmk(media / "clip.mp4")


def test_a_path_the_shell_would_read_is_hashed_as_a_file(media, tmp_path):
    # tmk puts the file name into a shell command line unquoted: ours never reaches it.
    odd = tmp_path / "a b;touch pwned.mp4"
    odd.write_bytes((media / "clip.mp4").read_bytes())
    assert tmk_video.hash_tmk(odd) == tmk_of(media / "clip.mp4")
    assert not (Path.cwd() / "pwned.mp4").exists()
