"""Metric labels in-process (no server): every API route is labelled by its OpenAPI path (console
pages by the same template form), and nothing a client sends becomes a new label value."""

from __future__ import annotations

from prometheus_client import generate_latest

from hashdb.api import spec
from hashdb.api.metrics import path_templates


def test_every_route_is_labelled_by_an_openapi_path(app):
    metrics = app.extensions["hashdb_metrics"]
    paths = set(spec.document(1000)["paths"])
    rules = {r.rule for r in app.url_map.iter_rules()}
    assert set(metrics.templates) == rules
    api_rules = {r for r in rules if not r.startswith("/ui/")}  # the web console is not in the API document
    assert {metrics.templates[r] for r in api_rules} == paths
    # Console pages get the same {name} form, never converter syntax.
    assert all("<" not in label and ">" not in label for label in metrics.templates.values())
    assert metrics.templates["/ui/records/<int(max=9223372036854775807):record_id>"] == "/ui/records/{record_id}"
    assert metrics.templates["/v1/hashes/<int(max=9223372036854775807):record_id>/feedback"] == \
        "/v1/hashes/{id}/feedback"


def test_path_templates_match_on_literal_segments_only():
    got = path_templates(["/v1/a/<int:x>/b", "/v1/c/<y>", "/v1/d"], ["/v1/a/{id}/b", "/v1/c/{name}"])
    assert got == {"/v1/a/<int:x>/b": "/v1/a/{id}/b", "/v1/c/<y>": "/v1/c/{name}", "/v1/d": "/v1/d"}


def test_client_chosen_methods_paths_and_codes_fold_into_fixed_values(app, client, keys):
    for n in range(30):
        client.open(f"/v1/lookup-{n}", method=f"FOO{n}")
        client.get(f"/nowhere/{n}")
        client.post("/v1/hashes", json={"items": [{"signal": "pdq", "hash": "zz"}]},
                    headers={"Authorization": f"Bearer {keys['alpha']}"})
    text = generate_latest(app.extensions["hashdb_metrics"].registry).decode()
    assert "FOO" not in text and "nowhere" not in text and "lookup-" not in text
    assert 'method="other"' in text and 'endpoint="unmatched"' in text
    assert 'hashdb_submissions_refused_total{reason="invalid_input"} 30.0' in text \
        or 'hashdb_submissions_refused_total{reason="invalid_hash"} 30.0' in text


def test_a_metrics_token_is_required_once_set(tmp_path):
    from hashdb.api import create_app

    app = create_app({"DB": str(tmp_path / "db.sqlite"), "LOAD_INDEX_IN_BACKGROUND": False,
                      "RATE_LIMIT": 0, "TESTING": True, "METRICS_TOKEN": "s3cret-scrape"})
    try:
        client = app.test_client()
        for sent in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret-scrape"}):
            refused = client.get("/metrics", headers=sent)
            assert refused.status_code == 401 and refused.get_json()["error"]["code"] == "unauthorized"
            assert b"hashdb_" not in refused.data
        scraped = client.get("/metrics", headers={"Authorization": "Bearer s3cret-scrape"})
        assert scraped.status_code == 200 and b"hashdb_" in scraped.data
    finally:
        app.extensions["hashdb"].close()


def test_metrics_are_open_without_a_token(client):
    assert client.get("/metrics").status_code == 200
