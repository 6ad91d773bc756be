"""tmk in the CLI (local mode): `hash` computes it, `.tmk` files and `hash --json` lines are
submitted and looked up, matches say `score`, bad tmk hashes are one-line errors that store
nothing, and export -> import keeps the tmk."""

from __future__ import annotations

import json
import struct


from hashdb.hashing import tmk

from support import json_lines as lines
from support import tmk_of


def test_hash_prints_the_tmk_tmkpy_computes(run, media):
    [doc] = lines(run("hash", "--json", str(media / "clip.mp4")))
    assert tmk.parse_text(doc["tmk"]).data == tmk_of(media / "clip.mp4")
    text = run("hash", str(media / "clip.mp4")).stdout
    assert f"tmk:({tmk.TEXT_LENGTH} base64 characters" in text and doc["tmk"][:40] not in text


def test_a_tmk_file_is_shared_and_a_reencoded_copy_matches_with_a_score(run, media, tmp_path):
    shared = tmp_path / "clip.tmk"
    shared.write_bytes(tmk_of(media / "clip.mp4"))
    result = run("submit", "--json", "--label", "glorification", str(shared))
    assert result.exit_code == 0, result.output
    [submitted] = lines(result)
    found, unrelated = lines(run("lookup", "--json", str(media / "clip_reencoded.mp4"), str(media / "other.mp4")))
    [match] = [m for m in found["matches"] if m["signal"] == "tmk"]
    assert match["id"] in submitted["ids"] and "distance" not in match
    assert tmk.LEVEL2_THRESHOLD <= match["score"] <= 1
    assert not unrelated["matched"]
    assert "tmk score 0.9" in run("lookup", str(media / "clip_reencoded.mp4")).stdout


def test_bad_tmk_files_are_one_line_errors_and_store_nothing(run, media, tmp_path):
    data = tmk_of(media / "clip.mp4")
    bad = {"short.tmk": data[:-1000],
           "nan.tmk": data[:-4] + struct.pack("<f", float("nan"))}
    for name, blob in bad.items():
        path = tmp_path / name
        path.write_bytes(blob)
        result = run("submit", "--label", "glorification", str(path))
        assert result.exit_code != 0
        assert len(result.stderr.strip().splitlines()) == 1 and "tmk" in result.stderr, result.stderr
        looked = run("lookup", str(path))
        assert looked.exit_code == 1 and "tmk" in looked.stdout + looked.stderr
    line = tmp_path / "hashes.jsonl"
    line.write_text(json.dumps({"path": "x.mp4", "media_type": "video", "tmk": "AAAA"}) + "\n")
    result = run("submit", "--label", "glorification", str(line))
    assert result.exit_code != 0 and "tmk hash must be" in result.stderr
    assert run("export").stdout == ""


def test_asking_for_tmk_without_ffmpeg_says_so(run, media, monkeypatch, tmp_path):
    monkeypatch.setenv("HASHDB_FFMPEG", str(tmp_path / "nowhere" / "ffmpeg"))
    result = run("hash", "--signals", "md5,tmk", str(media / "clip.mp4"))
    assert result.exit_code == 1 and "ffmpeg" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    # Not asked for by name: the video is hashed without it.
    [doc] = lines(run("hash", "--json", str(media / "clip.mp4")))
    assert "tmk" not in doc and doc["frames"]


def test_export_then_import_keeps_the_tmk(run, media, tmp_path):
    assert run("submit", "--label", "glorification", str(media / "clip.mp4")).exit_code == 0
    exported = run("export")
    [entry] = [json.loads(line) for line in exported.stdout.splitlines() if '"tmk"' in line]
    assert tmk.parse_text(entry["tmk"]).data == tmk_of(media / "clip.mp4")
    assert entry["hash"] == tmk.tmk_digest(tmk_of(media / "clip.mp4"))
    feed = tmp_path / "feed.jsonl"
    feed.write_text(exported.stdout)
    mirror_db = str(tmp_path / "mirror.sqlite")
    assert run("import", "--db", mirror_db, str(feed)).exit_code == 0
    [found] = lines(run("lookup", "--json", "--db", mirror_db, str(media / "clip_reencoded.mp4")))
    assert "tmk" in {m["signal"] for m in found["matches"]}
    again = run("export", "--db", mirror_db)
    assert [json.loads(line)["tmk"] for line in again.stdout.splitlines() if '"tmk"' in line] == [entry["tmk"]]


def test_hash_json_lines_carry_the_tmk_into_submit(run, media, tmp_path):
    hashed = tmp_path / "hashes.jsonl"
    hashed.write_text(run("hash", "--json", str(media / "clip.mp4")).stdout)
    [submitted] = lines(run("submit", "--json", "--label", "glorification", str(hashed)))
    exported = [json.loads(line) for line in run("export").stdout.splitlines()]
    [entry] = [e for e in exported if e["signal"] == "tmk"]
    assert entry["id"] in submitted["ids"] and tmk.parse_text(entry["tmk"]).data == tmk_of(media / "clip.mp4")
