"""An image's keypoints over HTTP: a submit item's "keypoints" (base64) is stored with its PDQ
record, as the OpenAPI document says; a malformed one is a 400 JSON error and stores nothing; a
lookup item takes none; the export never carries them."""

from __future__ import annotations

from contextlib import closing

import jsonschema
import pytest

from hashdb.hashing import keypoints, keypoints_text
from hashdb.config import Settings
from hashdb.service import HashingService
from hashdb.store.sqlite_store import SQLiteStore

LABELS = ["glorification"]


def store_of(app):
    return SQLiteStore(app.config["DB"])


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def hashed(media):
    return HashingService(Settings()).hash_file(media / "chelsea.jpg")


def item(hashes, text: object) -> dict[str, object]:
    pdq = hashes.get("pdq")
    return {"input": "chelsea", "hashes": [{"signal": "pdq", "hash": pdq.hex, "quality": pdq.quality}],
            "keypoints": text, "labels": LABELS}


def test_submitted_keypoints_are_stored_with_the_pdq_record_and_never_exported(app, client, keys, hashed):
    spec = client.get("/openapi.json").get_json()
    text = keypoints_text.encode_text(hashed.keypoints)
    body = {"items": [item(hashed, text)]}
    jsonschema.Draft202012Validator({**spec, "$ref": "#/components/schemas/SubmitRequest"}).validate(body)
    shared = client.post("/v1/hashes", headers=auth(keys["alpha"]), json=body)
    assert shared.status_code == 201, shared.get_json()
    [record_id] = shared.get_json()["results"][0]["ids"]
    with closing(store_of(app)) as store:
        assert store.keypoints_of([record_id]) == {record_id: hashed.keypoints}
    exported = client.get("/v1/export", headers=auth(keys["partner"]))
    assert exported.status_code == 200 and [c["id"] for c in exported.get_json()["changes"]] == [record_id]
    assert "keypoints" not in exported.get_data(as_text=True) and text[:40] not in exported.get_data(as_text=True)
    record = client.get(f"/v1/hashes/{record_id}", headers=auth(keys["alpha"]))
    assert text[:40] not in record.get_data(as_text=True)


def _bad(blob: bytes) -> dict[str, object]:
    text = keypoints_text.encode_text(blob)
    return {
        "short": keypoints_text.encode_text(blob[:-1]),
        "not base64": "*" + text[1:],
        "too long": "A" * (len(keypoints_text.encode_text(b"\0" * keypoints.MAX_BYTES)) + 4),
        "wrong mark": keypoints_text.encode_text(b"XX" + blob[2:]),
        "empty": "",
        "a number": 12,
        "an object": {"data": text},
    }


@pytest.mark.parametrize("what", ["short", "not base64", "too long", "wrong mark", "empty", "a number", "an object"])
def test_malformed_keypoints_are_400_and_store_nothing(app, client, keys, hashed, what):
    bad = _bad(hashed.keypoints)[what]
    shared = client.post("/v1/hashes", headers=auth(keys["alpha"]), json={"items": [
        {"input": "ok", "hashes": [{"signal": "md5", "hash": "a" * 32}], "labels": LABELS},
        item(hashed, bad)]})
    assert shared.status_code == 400, shared.get_json()
    error = shared.get_json()["error"]
    assert error["code"] == "invalid_input" and "items[1]" in error["message"] and "keypoints" in error["message"]
    assert client.get("/v1/export", headers=auth(keys["partner"])).get_json()["changes"] == []
    with closing(store_of(app)) as store:
        assert store.keypoint_rows(0, 10) == [] and store.last_seq() == 0


def test_keypoints_on_a_videos_item_are_400(client, keys, hashed):
    refused = client.post("/v1/hashes", headers=auth(keys["alpha"]), json={"items": [
        {"hashes": [{"signal": "md5", "hash": "a" * 32}], "media_type": "video",
         "keypoints": keypoints_text.encode_text(hashed.keypoints), "labels": LABELS}]})
    assert refused.status_code == 400 and "keypoints" in refused.get_json()["error"]["message"]


def test_a_lookup_item_takes_no_keypoints(client, keys, hashed):
    text = keypoints_text.encode_text(hashed.keypoints)
    pdq = hashed.get("pdq")
    for form in ({"signal": "pdq", "hash": pdq.hex, "keypoints": text},
                 {"hashes": [{"signal": "pdq", "hash": pdq.hex}], "keypoints": text}):
        looked = client.post("/v1/lookup", headers=auth(keys["consumer"]), json={"items": [form]})
        assert looked.status_code == 400
        assert looked.get_json()["error"]["message"] == "items[0]: unknown field 'keypoints'"
    spec = client.get("/openapi.json").get_json()
    assert all("keypoints" not in form["properties"] for form in spec["components"]["schemas"]["LookupItem"]["oneOf"])
    assert all("keypoints" in form["properties"] for form in spec["components"]["schemas"]["SubmitItem"]["oneOf"])
