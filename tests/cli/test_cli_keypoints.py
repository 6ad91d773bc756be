"""An image's keypoints in the CLI (local mode): `submit IMAGE` stores them with its PDQ record,
`hash --keypoints --json` prints them and a hash line carries them into `submit`; a lookup's
are never printed, nor computed against a database that holds none; a malformed line is a
one-line error that stores nothing."""

from __future__ import annotations

import json
import os
from pathlib import Path

from hashdb.hashing import keypoints, keypoints_text
from hashdb.store.sqlite_store import SQLiteStore

from support import json_lines as lines


def stored(record_ids) -> dict[int, bytes]:
    store = SQLiteStore(os.environ["HASHDB_DB"])
    try:
        return store.keypoints_of(list(record_ids))
    finally:
        store.close()


def pdq_id(record_ids) -> int:
    store = SQLiteStore(os.environ["HASHDB_DB"])
    try:
        return next(r.id for r in store.get_records(list(record_ids)).values() if r.signal == "pdq")
    finally:
        store.close()


def test_submitting_an_image_stores_its_keypoints(run, media):
    result = run("submit", "--json", "--label", "glorification", str(media / "chelsea.jpg"))
    assert result.exit_code == 0, result.output
    [submitted] = lines(result)
    kept = stored(submitted["ids"])
    assert list(kept) == [pdq_id(submitted["ids"])]
    assert len(keypoints.parse(kept[pdq_id(submitted["ids"])]).points) >= keypoints.MIN_KEYPOINTS


def test_hash_json_prints_them_and_a_hash_line_submits_them(run, media, tmp_path):
    [plain] = lines(run("hash", "--json", str(media / "chelsea.jpg")))
    assert "keypoints" not in plain  # no hash: only when asked for
    [doc] = lines(run("hash", "--keypoints", "--json", str(media / "chelsea.jpg")))
    assert {k: v for k, v in doc.items() if k != "keypoints"} == plain
    blob = keypoints.from_text(doc["keypoints"])
    text = run("hash", "--keypoints", str(media / "chelsea.jpg")).stdout
    assert f"keypoints:({len(doc['keypoints'])} base64 characters" in text and doc["keypoints"][:40] not in text
    hashed = tmp_path / "hashes.jsonl"
    hashed.write_text(json.dumps(doc) + "\n")
    [submitted] = lines(run("submit", "--json", "--label", "glorification", str(hashed)))
    assert stored(submitted["ids"]) == {pdq_id(submitted["ids"]): blob}


def test_a_lookups_keypoints_are_never_printed(run, media):
    [doc] = lines(run("hash", "--for-lookup", "--json", str(media / "chelsea.jpg")))
    assert "keypoints" not in doc and "probe" not in doc
    refused = run("hash", "--for-lookup", "--keypoints", str(media / "chelsea.jpg"))
    assert refused.exit_code == 2 and "--keypoints" in refused.output
    [answer] = lines(run("lookup", "--json", str(media / "chelsea.jpg")))
    assert "keypoints" not in json.dumps(answer) and "probe" not in json.dumps(answer)


def test_a_malformed_hash_line_is_one_line_and_stores_nothing(run, media, tmp_path):
    [doc] = lines(run("hash", "--keypoints", "--json", str(media / "chelsea.jpg")))
    blob = keypoints.from_text(doc["keypoints"])
    for n, bad in enumerate((keypoints_text.encode_text(blob[:-1]), "*" + doc["keypoints"][1:], 12,
                             keypoints_text.encode_text(b"XX" + blob[2:]))):
        hashed = tmp_path / f"bad{n}.jsonl"
        hashed.write_text(json.dumps({**doc, "keypoints": bad}) + "\n")
        result = run("submit", "--label", "glorification", str(hashed))
        assert result.exit_code != 0 and result.output.count("\n") == 1, result.output
        assert "keypoints" in result.output
    exported = run("export").stdout
    assert exported.strip() == ""


def test_a_crop_is_found_through_keypoints_and_a_database_without_them_costs_no_probe(run, media, tmp_path,
                                                                                      monkeypatch):
    from PIL import Image

    photo = Image.open(media / "chelsea.jpg").convert("RGB")
    width, height = photo.size
    crop = tmp_path / "crop.jpg"  # 80 % of each side, from the top right
    photo.crop((width - round(0.8 * width), 0, width, round(0.8 * height))).save(crop, quality=90)
    [plain] = lines(run("lookup", "--json", str(crop)))
    assert not plain["matched"]  # nothing stored yet: and no keypoints to meet
    [hashed] = lines(run("hash", "--json", str(media / "chelsea.jpg")))  # no keypoints
    hashes = tmp_path / "hashes.jsonl"
    hashes.write_text(json.dumps(hashed) + "\n")
    bare = tmp_path / "bare.sqlite"  # a database of hashes alone, as a mirror is
    assert run("submit", "--db", str(bare), "--label", "glorification", str(hashes)).exit_code == 0

    def no_probe(work):  # the lookup below hashes its one file in this process
        raise AssertionError("a lookup against a database without keypoints computed a probe")

    with monkeypatch.context() as patched:
        patched.setattr(keypoints, "probe", no_probe)
        [answer] = lines(run("lookup", "--db", str(bare), "--json", str(crop)))
    assert not answer["matched"]  # PDQ alone misses an 80 % crop off the centre
    [submitted] = lines(run("submit", "--json", "--label", "glorification", str(media / "chelsea.jpg")))
    [answer] = lines(run("lookup", "--json", str(crop)))
    [match] = answer["matches"]
    assert match["id"] == pdq_id(submitted["ids"]) and match["via"] == "aligned"
    assert match["distance"] <= keypoints.ALIGNED_RADIUS


def test_a_lookup_saves_the_keypoint_index_beside_the_database_and_index_rebuild_does_too(run, media, tmp_path):
    from PIL import Image

    from hashdb.index._files import read_manifest

    snapshot = Path(os.environ["HASHDB_DB"] + ".index") / "keypoints.faiss"
    [submitted] = lines(run("submit", "--json", "--label", "glorification", str(media / "chelsea.jpg")))
    assert not snapshot.exists()
    photo = Image.open(media / "chelsea.jpg").convert("RGB")
    width, height = photo.size
    crop = tmp_path / "crop.jpg"
    photo.crop((width - round(0.8 * width), 0, width, round(0.8 * height))).save(crop, quality=90)
    [answer] = lines(run("lookup", "--json", str(crop)))
    assert [(m["id"], m["via"]) for m in answer["matches"]] == [(pdq_id(submitted["ids"]), "aligned")]
    assert read_manifest(snapshot, ("keypoints",)).covers_seq == 1
    snapshot.unlink()
    [rebuilt] = lines(run("index", "rebuild", "--json"))
    held = len(keypoints.parse(stored(submitted["ids"])[pdq_id(submitted["ids"])]).points)
    assert rebuilt["indexed"]["keypoints"] == held and read_manifest(snapshot, ("keypoints",)).count == held
    assert lines(run("lookup", "--json", str(crop))) == [answer]


def test_an_operator_can_turn_keypoints_off(run, media, tmp_path, monkeypatch):
    from PIL import Image

    monkeypatch.setenv("HASHDB_KEYPOINTS", "0")
    [submitted] = lines(run("submit", "--json", "--label", "glorification", str(media / "chelsea.jpg")))
    assert stored(submitted["ids"]) == {}
    photo = Image.open(media / "chelsea.jpg").convert("RGB")
    width, height = photo.size
    crop = tmp_path / "crop.jpg"
    photo.crop((width - round(0.8 * width), 0, width, round(0.8 * height))).save(crop, quality=90)
    [answer] = lines(run("lookup", "--json", str(crop)))
    assert all(m.get("via") != "aligned" for m in answer["matches"])
    monkeypatch.setenv("HASHDB_KEYPOINTS", "maybe")
    refused = run("lookup", str(crop))
    assert refused.exit_code != 0 and "HASHDB_KEYPOINTS" in refused.output


def test_hash_keypoints_is_refused_where_they_are_off(run, media, monkeypatch):
    monkeypatch.setenv("HASHDB_KEYPOINTS", "0")
    refused = run("hash", "--keypoints", "--json", str(media / "chelsea.jpg"))
    assert refused.exit_code == 2 and "HASHDB_KEYPOINTS" in refused.output
