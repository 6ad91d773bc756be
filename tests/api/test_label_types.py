"""A label that is not a string is a malformed request: 400 naming the value and saying labels
are strings. A trial sent `"labels": ["glorification", 1]` and was told 422 "unknown label 'int'":
the status of a well-formed request for a label this list lacks, naming a Python type."""

from __future__ import annotations

import pytest

BAD = [(1, "not 1;"), (None, "not null;"), ({"id": "glorification"}, 'not {"id": "glorification"};'),
       (["glorification"], 'not ["glorification"];'), (True, "not true;")]


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _check(reply, shown: str) -> None:
    assert reply.status_code == 400, reply.get_json()
    error = reply.get_json()["error"]
    assert error["code"] == "invalid_input"
    assert "labels are strings" in error["message"] and shown in error["message"], error["message"]


@pytest.mark.parametrize(("label", "shown"), BAD)
def test_submit_refuses_a_label_that_is_not_a_string_with_400(client, keys, label, shown):
    body = {"items": [{"signal": "md5", "hash": "cd" * 16, "labels": ["glorification", label]}]}
    _check(client.post("/v1/hashes", json=body, headers=auth(keys["alpha"])), shown)


@pytest.mark.parametrize(("label", "shown"), BAD)
def test_relabel_refuses_a_label_that_is_not_a_string_with_400(client, keys, label, shown):
    body = {"items": [{"signal": "md5", "hash": "cd" * 16, "labels": ["glorification"]}]}
    shared = client.post("/v1/hashes", json=body, headers=auth(keys["alpha"]))
    record = shared.get_json()["results"][0]["ids"][0]
    reply = client.patch(f"/v1/hashes/{record}", json={"labels": [label]}, headers=auth(keys["alpha"]))
    _check(reply, shown)


def test_an_unknown_string_label_is_still_422_and_a_long_one_is_cut_not_renamed(client, keys):
    for label, shown in (("memes", "'memes'"), ("m" * 300, "'" + "m" * 64 + "…'")):
        body = {"items": [{"signal": "md5", "hash": "cd" * 16, "labels": [label]}]}
        reply = client.post("/v1/hashes", json=body, headers=auth(keys["alpha"]))
        assert reply.status_code == 422 and reply.get_json()["error"]["code"] == "unknown_label"
        assert f"unknown label {shown}" in reply.get_json()["error"]["message"]


def test_a_refused_label_names_its_item_as_a_refused_hash_does(client, keys):
    # Found in trial: an unknown label in a batch did not say which item had it; a bad hash does.
    good = {"signal": "md5", "hash": "cd" * 16, "labels": ["glorification"]}
    for label, code in (("memes", "unknown_label"), (1, "invalid_input")):
        body = {"items": [good, {"signal": "md5", "hash": "ef" * 16, "labels": [label]}]}
        reply = client.post("/v1/hashes", json=body, headers=auth(keys["alpha"]))
        assert reply.get_json()["error"]["code"] == code
        assert reply.get_json()["error"]["message"].startswith("items[1]: "), reply.get_json()
    bad_hash = {"items": [good, {"signal": "md5", "hash": "zz", "labels": ["glorification"]}]}
    reply = client.post("/v1/hashes", json=bad_hash, headers=auth(keys["alpha"]))
    assert reply.get_json()["error"]["message"].startswith("items[1]: ")
    assert client.get("/v1/export", headers=auth(keys["partner"])).get_json()["changes"] == []
