"""Stored keypoints in the export feed: only when asked for (`keypoints=true`) from a database
whose operator shares them (HASHDB_SHARE_KEYPOINTS), on image PDQ entries, as the OpenAPI
document says; asked for otherwise, a 403 that names the setting; never asked for, the feed is
as it was."""

from __future__ import annotations

from contextlib import closing

import jsonschema
import pytest

from hashdb.api import create_app
from hashdb.config import Settings
from hashdb.hashing import keypoints, keypoints_text
from hashdb.service import MAX_KEYPOINT_EXPORT_PAGE, HashingService
from hashdb.store.sqlite_store import SQLiteStore
from serverproc import make_keys

ROLES = {"alpha": ("alpha", "contributor"), "partner": ("delta", "partner"), "consumer": ("gamma", "consumer")}


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def served(tmp_path, monkeypatch, share: str | None):
    """An app over a new database, started with HASHDB_SHARE_KEYPOINTS=`share` (unset: None)."""
    if share is None:
        monkeypatch.delenv("HASHDB_SHARE_KEYPOINTS", raising=False)
    else:
        monkeypatch.setenv("HASHDB_SHARE_KEYPOINTS", share)
    db = tmp_path / f"db-{share}.sqlite"
    keys = {name: key for name, (key, _) in make_keys(db, ROLES).items()}
    app = create_app({"DB": str(db), "LOAD_INDEX_IN_BACKGROUND": False, "RATE_LIMIT": 0, "TESTING": True})
    return app, app.test_client(), keys


@pytest.fixture
def hashed(media):
    return HashingService(Settings()).hash_file(media / "chelsea.jpg")


def share_image(client, key, hashed) -> dict[str, int]:
    """Chelsea's PDQ with its keypoints, its pHash and md5: record ids by signal."""
    pdq, phash, md5 = hashed.get("pdq"), hashed.get("phash"), hashed.get("md5")
    shared = client.post("/v1/hashes", headers=auth(key), json={"items": [{
        "input": "chelsea", "labels": ["glorification"], "keypoints": keypoints_text.encode_text(hashed.keypoints),
        "hashes": [{"signal": "pdq", "hash": pdq.hex, "quality": pdq.quality},
                   {"signal": "phash", "hash": phash.hex}, {"signal": "md5", "hash": md5.hex}]}]})
    assert shared.status_code == 201, shared.get_json()
    ids = shared.get_json()["results"][0]["ids"]
    with closing(SQLiteStore(client.application.config["DB"])) as store:
        return {r.signal: r.id for r in store.get_records(ids).values()}


def test_a_shared_feed_carries_keypoints_on_image_pdq_entries_when_asked(tmp_path, monkeypatch, hashed):
    app, client, keys = served(tmp_path, monkeypatch, "1")
    try:
        ids = share_image(client, keys["alpha"], hashed)
        plain = client.get("/v1/export", headers=auth(keys["partner"]))
        asked = client.get("/v1/export?keypoints=true", headers=auth(keys["partner"]))
        assert plain.status_code == 200 and asked.status_code == 200, asked.get_json()
        spec = client.get("/openapi.json").get_json()
        jsonschema.Draft202012Validator({**spec, "$ref": "#/components/schemas/ExportResponse"}).validate(
            asked.get_json())
        carried = {c["id"]: c.get("keypoints") for c in asked.get_json()["changes"]}
        assert carried == {ids["pdq"]: keypoints_text.encode_text(hashed.keypoints), ids["phash"]: None, ids["md5"]: None}
        assert keypoints.from_text(carried[ids["pdq"]]) == hashed.keypoints
        # Apart from the keypoints, the same feed; and without the parameter none at all.
        assert [{k: v for k, v in c.items() if k != "keypoints"} for c in asked.get_json()["changes"]] == \
            plain.get_json()["changes"]
        assert "keypoints" not in plain.get_data(as_text=True)
        # A retracted record's keypoints are no longer sent.
        assert client.delete(f"/v1/hashes/{ids['pdq']}", headers=auth(keys["alpha"])).status_code == 200
        after = client.get("/v1/export?keypoints=true", headers=auth(keys["partner"])).get_json()["changes"]
        assert [c["id"] for c in after if "keypoints" in c] == []
    finally:
        app.extensions["hashdb"].close()


@pytest.mark.parametrize("share", [None, "0", "false"])
def test_asking_a_database_that_does_not_share_them_is_403(tmp_path, monkeypatch, hashed, share):
    app, client, keys = served(tmp_path, monkeypatch, share)
    try:
        share_image(client, keys["alpha"], hashed)
        refused = client.get("/v1/export?keypoints=true", headers=auth(keys["partner"]))
        assert refused.status_code == 403
        error = refused.get_json()["error"]
        assert error["code"] == "not_shared" and "HASHDB_SHARE_KEYPOINTS" in error["message"]
        plain = client.get("/v1/export", headers=auth(keys["partner"]))
        assert plain.status_code == 200 and len(plain.get_json()["changes"]) == 3
        assert "keypoints" not in plain.get_data(as_text=True)
        # A key that may not read the feed at all is told so first, as before.
        denied = client.get("/v1/export?keypoints=true", headers=auth(keys["consumer"]))
        assert denied.status_code == 403 and denied.get_json()["error"]["code"] == "forbidden"
    finally:
        app.extensions["hashdb"].close()


def test_a_page_with_keypoints_is_capped_and_the_parameter_is_read_strictly(tmp_path, monkeypatch, hashed):
    app, client, keys = served(tmp_path, monkeypatch, "1")
    try:
        most = f"/v1/export?keypoints=true&limit={MAX_KEYPOINT_EXPORT_PAGE}"
        assert client.get(most, headers=auth(keys["partner"])).status_code == 200
        over = client.get(f"/v1/export?keypoints=true&limit={MAX_KEYPOINT_EXPORT_PAGE + 1}",
                          headers=auth(keys["partner"]))
        assert over.status_code == 400 and str(MAX_KEYPOINT_EXPORT_PAGE) in over.get_json()["error"]["message"]
        assert client.get(f"/v1/export?limit={MAX_KEYPOINT_EXPORT_PAGE + 1}",
                          headers=auth(keys["partner"])).status_code == 200
        for spelling in ("yes", "1", "True", ""):
            odd = client.get(f"/v1/export?keypoints={spelling}", headers=auth(keys["partner"]))
            assert odd.status_code == 400 and "keypoints" in odd.get_json()["error"]["message"], spelling
        spec = client.get("/openapi.json").get_json()
        [parameter] = [p for p in spec["paths"]["/v1/export"]["get"]["parameters"] if p["name"] == "keypoints"]
        assert parameter["schema"] == {"type": "boolean", "default": False}
        assert "keypoints" in spec["components"]["schemas"]["Change"]["properties"]
    finally:
        app.extensions["hashdb"].close()
