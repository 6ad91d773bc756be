"""An image's keypoints in the CLI (local mode): `submit IMAGE` stores them with its PDQ record,
`hash --json` prints them and a hash line carries them into `submit`; a lookup's are never
printed; a malformed line is a one-line error that stores nothing."""

from __future__ import annotations

import json
import os

from hashdb.hashing import keypoints
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
    [doc] = lines(run("hash", "--json", str(media / "chelsea.jpg")))
    blob = keypoints.from_text(doc["keypoints"])
    text = run("hash", str(media / "chelsea.jpg")).stdout
    assert f"keypoints:({len(doc['keypoints'])} base64 characters" in text and doc["keypoints"][:40] not in text
    hashed = tmp_path / "hashes.jsonl"
    hashed.write_text(json.dumps(doc) + "\n")
    [submitted] = lines(run("submit", "--json", "--label", "glorification", str(hashed)))
    assert stored(submitted["ids"]) == {pdq_id(submitted["ids"]): blob}


def test_a_lookups_keypoints_are_never_printed(run, media):
    [doc] = lines(run("hash", "--for-lookup", "--json", str(media / "chelsea.jpg")))
    assert "keypoints" not in doc and "probe" not in doc
    [answer] = lines(run("lookup", "--json", str(media / "chelsea.jpg")))
    assert "keypoints" not in json.dumps(answer) and "probe" not in json.dumps(answer)


def test_a_malformed_hash_line_is_one_line_and_stores_nothing(run, media, tmp_path):
    [doc] = lines(run("hash", "--json", str(media / "chelsea.jpg")))
    blob = keypoints.from_text(doc["keypoints"])
    for n, bad in enumerate((keypoints.to_text(blob[:-1]), "*" + doc["keypoints"][1:], 12,
                             keypoints.to_text(b"XX" + blob[2:]))):
        hashed = tmp_path / f"bad{n}.jsonl"
        hashed.write_text(json.dumps({**doc, "keypoints": bad}) + "\n")
        result = run("submit", "--label", "glorification", str(hashed))
        assert result.exit_code != 0 and result.output.count("\n") == 1, result.output
        assert "keypoints" in result.output
    exported = run("export").stdout
    assert exported.strip() == ""
