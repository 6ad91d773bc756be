"""What a folder's files are called in the CLI's answers, found in a new user's trial: an SVG in
a folder was "skipped, a text file" (named on its own it is "unsupported format: SVG image"),
an error about a video in a folder named the file twice (`bad/audio_only.mp4: audio_only.mp4:
cannot open ...`), and the formats a refusal lists left out the `.tmk` files hashdb reads."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from support import empty_database, run_cli

MEDIA = Path(__file__).resolve().parents[2] / "fixtures" / "media"
SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>\n'


def test_an_svg_in_a_folder_is_an_unsupported_image_not_a_text_file(tmp_path):
    folder = tmp_path / "removed"
    folder.mkdir()
    (folder / "x.svg").write_text(SVG)
    (folder / "README.txt").write_text("what these are\n")
    shutil.copy(MEDIA / "chelsea.jpg", folder)
    result = run_cli("hash", str(folder))
    lines = result.output.splitlines()
    assert f"{folder}/README.txt: skipped, a text file, neither media nor a hash file" in lines
    [svg] = [line for line in lines if "x.svg" in line]
    assert svg.startswith(f"{folder}/x.svg: error: unsupported format: SVG image; accepted: "), svg
    # Shared from a folder, it refuses the batch, as any unsupported image does.
    db = empty_database(tmp_path / "db.sqlite")
    shared = run_cli("submit", "--db", str(db), str(folder), "--label", "glorification")
    assert shared.exit_code == 1 and "SVG image" in shared.output, shared.output


def test_a_video_error_in_a_folder_names_the_file_once(tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    # An MP4 container with no playable video: the decoder's error starts with the file's name.
    (folder / "empty_track.mp4").write_bytes((MEDIA / "clip.mp4").read_bytes()[:36] + b"\0" * 64)
    result = run_cli("hash", "--json", str(folder))
    [line] = result.stdout.splitlines()
    doc = json.loads(line)
    assert doc["path"] == f"{folder}/empty_track.mp4"
    assert not doc["error"].startswith("empty_track.mp4:"), doc["error"]
    text = run_cli("hash", str(folder)).output
    assert text.count("empty_track.mp4") == 1, text


def test_the_accepted_formats_include_tmk(tmp_path):
    junk = tmp_path / "clip.tmk"
    junk.write_bytes(bytes(range(256)) * 4)
    result = run_cli("hash", str(junk))
    assert result.exit_code == 1 and "(.tmk, as tmk-hash-video writes it)" in result.output, result.output


def test_a_local_export_s_bad_cursor_speaks_of_the_database(tmp_path):
    # Found in trial: a local `export --since` was told of "this server".
    db = empty_database(tmp_path / "db.sqlite")
    for cursor in ("garbage", "djE6OTk5"):  # unreadable; v1:999, past the end of the feed
        result = run_cli("export", "--db", str(db), "--since", cursor)
        assert result.exit_code != 0 and "cursor is not one this database issued" in result.output, result.output
        assert "server" not in result.output
