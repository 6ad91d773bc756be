"""A signal is named in any case, in the API as in the CLI. Found in trial: `hashdb submit
PDQ:<hex>` was accepted while the API refused {"signal": "PDQ"} as an unknown signal."""

from __future__ import annotations

import random

from hashdb.hashing.registry import parse_hash, parse_hash_argument
from support import random_pdq


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_the_api_takes_a_signal_in_any_case_as_the_cli_does(client, keys):
    value = random_pdq(random.Random(88))
    assert parse_hash_argument(f"PDQ:{value}") == parse_hash("Pdq", value.upper())
    shared = client.post("/v1/hashes", headers=auth(keys["alpha"]), json={"items": [
        {"signal": "PDQ", "hash": value.upper(), "quality": 90, "labels": ["glorification"]}]})
    assert shared.status_code == 201, shared.get_json()
    [record_id] = shared.get_json()["results"][0]["ids"]
    again = client.post("/v1/hashes", headers=auth(keys["alpha"]), json={"items": [
        {"signal": "pdq", "hash": value, "quality": 90, "labels": ["glorification"]}]})
    assert again.get_json()["results"][0]["ids"] == [record_id]
    for reply in (client.get(f"/v1/lookup?signal=PDQ&hash={value}", headers=auth(keys["consumer"])),
                  client.post("/v1/lookup", headers=auth(keys["consumer"]),
                              json={"items": [{"signal": "Md5", "hash": "ab" * 16}, {"signal": "PDQ", "hash": value}]})):
        assert reply.status_code == 200, reply.get_json()
        doc = reply.get_json()
        result = doc["results"][-1] if "results" in doc else doc
        assert [m["id"] for m in result["matches"]] == [record_id]
        assert result["matches"][0]["signal"] == "pdq"
    unknown = client.get(f"/v1/lookup?signal=PDQX&hash={value}", headers=auth(keys["consumer"]))
    assert unknown.status_code == 400 and "unknown signal 'PDQX'" in unknown.get_json()["error"]["message"]
