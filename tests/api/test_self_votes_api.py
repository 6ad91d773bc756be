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
