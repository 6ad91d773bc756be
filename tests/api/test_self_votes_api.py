"""Over the API, a vote by the record's own organisation is a 403 that says what to do instead
(tests/service/test_self_votes.py has the rule)."""

from __future__ import annotations


def test_over_the_api_it_is_a_403_with_the_reason(client, keys):
    body = {"items": [{"signal": "md5", "hash": "cd" * 16, "labels": ["glorification"]}]}
    shared = client.post("/v1/hashes", json=body, headers={"Authorization": f"Bearer {keys['alpha']}"})
    record_id = shared.get_json()["results"][0]["ids"][0]
    reply = client.post(f"/v1/hashes/{record_id}/feedback", json={"verdict": "agree"},
                        headers={"Authorization": f"Bearer {keys['alpha']}"})
    assert reply.status_code == 403 and "retract or relabel" in reply.get_json()["error"]["message"]
    other = client.post(f"/v1/hashes/{record_id}/feedback", json={"verdict": "agree"},
                        headers={"Authorization": f"Bearer {keys['beta']}"})
    assert other.status_code == 200


def test_a_co_sharer_is_refused_as_the_owner_is(client, keys):
    # beta shared the same hash (a record of its own): its vote on alpha's copy is the owner's
    # 403, same code, naming beta's record.
    body = {"items": [{"signal": "md5", "hash": "cd" * 16, "labels": ["glorification"]}]}
    ids = {who: client.post("/v1/hashes", json=body, headers={"Authorization": f"Bearer {keys[who]}"})
           .get_json()["results"][0]["ids"][0] for who in ("alpha", "beta")}
    owner = client.post(f"/v1/hashes/{ids['alpha']}/feedback", json={"verdict": "agree"},
                        headers={"Authorization": f"Bearer {keys['alpha']}"})
    co_sharer = client.post(f"/v1/hashes/{ids['alpha']}/feedback", json={"verdict": "agree"},
                            headers={"Authorization": f"Bearer {keys['beta']}"})
    assert owner.status_code == co_sharer.status_code == 403
    assert owner.get_json()["error"]["code"] == co_sharer.get_json()["error"]["code"] == "forbidden"
    assert f"record {ids['beta']}" in co_sharer.get_json()["error"]["message"]
    consumer = client.post(f"/v1/hashes/{ids['alpha']}/feedback", json={"verdict": "agree"},
                           headers={"Authorization": f"Bearer {keys['consumer']}"})
    assert consumer.status_code == 200 and consumer.get_json()["agree"] == 1
