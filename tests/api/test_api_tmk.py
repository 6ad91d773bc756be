"""tmk over HTTP: a video's `.tmk` (base64) is shared and looked up as a media item's `tmk`; a
match carries `score` instead of `distance`, as the OpenAPI document says; a malformed tmk is a
400 JSON error and stores nothing."""

from __future__ import annotations

import base64
import struct

import jsonschema
import pytest

from hashdb.hashing import tmk

from support import tmk_of


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def validate(spec, path: str, response) -> None:
    pointer = "/".join(["#/paths", path.replace("/", "~1"), "post", "responses", str(response.status_code),
                        "content", "application~1json", "schema"])
    jsonschema.Draft202012Validator({**spec, "$ref": pointer}).validate(response.get_json())


def test_a_shared_tmk_matches_a_reencoded_copy_with_a_score(client, keys, media):
    spec = client.get("/openapi.json").get_json()
    shared = client.post("/v1/hashes", headers=auth(keys["alpha"]), json={"items": [
        {"input": "clip", "tmk": tmk.encode_text(tmk_of(media / "clip.mp4")), "labels": ["glorification"]}]})
    assert shared.status_code == 201, shared.get_json()
    validate(spec, "/v1/hashes", shared)
    [record_id] = shared.get_json()["results"][0]["ids"]
    looked = client.post("/v1/lookup", headers=auth(keys["consumer"]), json={"items": [
        {"input": "copy", "tmk": tmk.encode_text(tmk_of(media / "clip_reencoded.mp4"))},
        {"input": "other", "tmk": tmk.encode_text(tmk_of(media / "other.mp4"))}]})
    assert looked.status_code == 200
    validate(spec, "/v1/lookup", looked)
    copy, other = looked.get_json()["results"]
    [match] = copy["matches"]
    assert match["id"] == record_id and match["signal"] == "tmk" and "distance" not in match
    assert tmk.LEVEL2_THRESHOLD <= match["score"] <= 1
    assert not other["matched"]
    exported = client.get("/v1/export", headers=auth(keys["partner"])).get_json()["changes"]
    assert [base64.b64decode(c["tmk"]) for c in exported] == [tmk_of(media / "clip.mp4")]


def _bad_texts(data: bytes) -> dict[str, object]:
    text = tmk.encode_text(data)
    return {
        "short": text[:-4],
        "not base64": "*" + text[1:],
        "nan": tmk.encode_text(data[:-4] + struct.pack("<f", float("nan"))),
        "wrong magic": tmk.encode_text(b"TMK1FVECXXXX" + data[12:]),
        "a number": 12,
    }


@pytest.mark.parametrize("what", ["short", "not base64", "nan", "wrong magic", "a number"])
def test_a_malformed_tmk_is_400_and_stores_nothing(client, keys, media, what):
    bad = _bad_texts(tmk_of(media / "clip.mp4"))[what]
    shared = client.post("/v1/hashes", headers=auth(keys["alpha"]), json={"items": [
        {"input": "ok", "hashes": [{"signal": "md5", "hash": "a" * 32}], "labels": ["glorification"]},
        {"input": "bad", "tmk": bad, "labels": ["glorification"]}]})
    assert shared.status_code == 400
    error = shared.get_json()["error"]
    assert error["code"] in ("invalid_hash", "invalid_input") and "tmk" in error["message"]
    looked = client.post("/v1/lookup", headers=auth(keys["consumer"]), json={"items": [{"tmk": bad}]})
    assert looked.status_code == 400 and "tmk" in looked.get_json()["error"]["message"]
    assert client.get("/v1/export", headers=auth(keys["partner"])).get_json()["changes"] == []
