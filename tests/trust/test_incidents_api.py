"""POST /v1/incidents and GET /v1/incidents/{id}: admins only; what they open, submissions may name."""

from __future__ import annotations

import random

import pytest

from support import random_pdq


@pytest.fixture
def api(tmp_path):
    from hashdb.api import create_app
    from serverproc import make_keys

    db = tmp_path / "db.sqlite"
    keys = make_keys(db, {"admin": ("operator", "admin"), "alpha": ("alpha", "contributor")})
    app = create_app({"DB": str(db), "LOAD_INDEX_IN_BACKGROUND": False, "RATE_LIMIT": 0, "TESTING": True})
    auth = {name: {"Authorization": f"Bearer {key}"} for name, (key, _) in keys.items()}
    yield app.test_client(), auth
    app.extensions["hashdb"].close()


def test_admin_opens_an_incident_a_contributor_then_names(api):
    client, auth = api
    item = {"signal": "pdq", "hash": random_pdq(random.Random(1)), "quality": 100, "labels": ["attacker_manifesto"],
            "incident": "attack-1"}
    refused = client.post("/v1/hashes", json={"items": [item]}, headers=auth["alpha"])
    assert refused.status_code == 422 and refused.get_json()["error"]["code"] == "unknown_incident"

    assert client.post("/v1/incidents", json={"name": "attack-1"}, headers=auth["alpha"]).status_code == 403
    opened = client.post("/v1/incidents", json={"name": "attack-1", "description": "stream"}, headers=auth["admin"])
    assert opened.status_code == 201
    doc = opened.get_json()
    assert (doc["name"], doc["description"], doc["status"], doc["closed_at"]) == ("attack-1", "stream", "open", None)
    again = client.post("/v1/incidents", json={"name": "attack-1"}, headers=auth["admin"])
    assert again.status_code == 409

    assert client.get(f"/v1/incidents/{doc['id']}", headers=auth["admin"]).get_json() == doc
    assert client.get(f"/v1/incidents/{doc['id']}", headers=auth["alpha"]).status_code == 403
    assert client.get("/v1/incidents/999", headers=auth["admin"]).status_code == 404
    assert client.post("/v1/hashes", json={"items": [item]}, headers=auth["alpha"]).status_code == 201


@pytest.mark.parametrize("body", [{}, {"name": 5}, {"name": "x", "extra": 1}, {"name": "123"}, {"name": ""}])
def test_bad_incident_bodies_are_400(api, body):
    client, auth = api
    response = client.post("/v1/incidents", json=body, headers=auth["admin"])
    assert response.status_code == 400 and set(response.get_json()) == {"error"}
