"""Unit-level API tests on the Flask test client: the error shape and status table, the strict
JSON reader, config order, readiness, the rate limit, and that `import hashdb` stays light."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading

import pytest

from hashdb.api import create_app, errors as api_errors, jsonbody
from hashdb.api.ratelimit import TokenBucket
from hashdb.api.runtime import ServiceRuntime
from hashdb import errors
from hashdb.errors import InvalidInput, RateLimited
from hashdb.service.local import open_database
from support import random_pdq

import random


def error_of(response, status):
    assert response.status_code == status, response.data
    assert response.mimetype == "application/json"
    doc = response.get_json()
    assert set(doc) == {"error"} and set(doc["error"]) == {"code", "message"}
    return doc["error"]


def test_error_body_has_one_shape(app):
    with app.test_request_context():
        response = api_errors.error_response(418, "teapot", "short and stout", {"X-Extra": "1"})
    assert response.status_code == 418 and response.headers["X-Extra"] == "1"
    assert json.loads(response.get_data()) == {"error": {"code": "teapot", "message": "short and stout"}}


def all_error_classes(cls=errors.HashDBError):
    for sub in cls.__subclasses__():
        if sub.__module__ == "hashdb.errors":
            yield sub
        yield from all_error_classes(sub)


@pytest.mark.parametrize("cls", sorted(set(all_error_classes()), key=lambda c: c.__name__), ids=lambda c: c.__name__)
def test_every_domain_error_has_a_chosen_status(cls):
    assert any(base in api_errors.STATUS for base in cls.__mro__), f"{cls.__name__} has no status"
    exc = cls("x", 3) if cls is RateLimited else cls("x")
    status = api_errors.status_for(exc)
    # 503 only for "try again shortly": the index loading, the write lock held elsewhere, the
    # database server unreachable.
    assert 400 <= status < 600 and (status < 500 or cls in (errors.IndexStale, errors.Busy, errors.DatabaseUnavailable))


def test_status_table_choices():
    expected = {errors.InvalidHash: 400, errors.InvalidInput: 400, errors.UnknownSignal: 400,
                errors.UnknownLabel: 422, errors.LowQuality: 422, errors.UnknownIncident: 422, errors.Unauthorized: 401,
                errors.Forbidden: 403, errors.NotFound: 404, errors.Conflict: 409, errors.MediaTooLarge: 413,
                errors.UnsupportedMedia: 415, errors.RateLimited: 429}
    for cls, status in expected.items():
        exc = cls("x", 1) if cls is RateLimited else cls("x")
        assert api_errors.status_for(exc) == status, cls.__name__


def test_unexpected_exception_is_a_bare_logged_500(app, caplog):
    def boom():
        raise RuntimeError("secret detail")

    app.add_url_rule("/boom", view_func=boom)
    with caplog.at_level(logging.ERROR, logger="hashdb.api"):
        response = app.test_client().get("/boom", headers={"Authorization": "Bearer hdb_abc_def"})
    error = error_of(response, 500)
    assert error == {"code": "internal_error", "message": "internal server error"}
    assert "secret detail" in caplog.text and "hdb_abc_def" not in caplog.text


@pytest.mark.parametrize("text", [
    '{"a": 1, "a": 2}', '{"a": NaN}', '{"a": Infinity}', '{"a": -Infinity}', '{"a": 1e999999}',
    '{"a": -1e999999}', "[" * 50_000, '{"a": ' + "[" * 17 + "]" * 17 + "}", '{"a": "unterminated', "",
    '{"a": 1' + "0" * 5000 + "}",
])
def test_strict_json_refuses(text):
    with pytest.raises(InvalidInput):
        jsonbody.loads(text.encode())


@pytest.mark.parametrize("data", [b"\xff", b'{"a": "\xc3"}', b'{"a": "\xed\xa0\x80"}'])
def test_strict_json_refuses_invalid_utf8(data):
    with pytest.raises(InvalidInput, match="UTF-8"):
        jsonbody.loads(data)


@pytest.mark.parametrize("text,value", [
    ('{"a": [1, 2.5, "x"]}', {"a": [1, 2.5, "x"]}),
    ('{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}', {"a": "[" * 40}),
    ('{"a": "\\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\\\"}', {"a": '"' + "[" * 38 + "\\"}),
    ('{"a": ' + "[" * 15 + "]" * 15 + "}", {"a": json.loads("[" * 15 + "]" * 15)}),
])
def test_strict_json_accepts_what_is_fine(text, value):
    assert jsonbody.loads(text.encode()) == value


def test_depth_check_counts_only_structure():
    jsonbody.check_depth('"' + "[" * 100 + '"')
    with pytest.raises(InvalidInput):
        jsonbody.check_depth('["\\\\", ' + "[" * 20 + "]" * 20 + "]")


def test_config_order_defaults_then_env_then_mapping(tmp_path, monkeypatch):
    monkeypatch.setenv("HASHDB_MAX_BATCH", "7")
    monkeypatch.setenv("HASHDB_RATE_BURST", "9")
    app = create_app({"DB": str(tmp_path / "db.sqlite"), "RATE_BURST": 3, "LOAD_INDEX_IN_BACKGROUND": False})
    try:
        assert app.config["MAX_BATCH"] == 7 and app.config["RATE_BURST"] == 3
        assert app.config["MAX_CONTENT_LENGTH"] == 4 * 1024 * 1024
    finally:
        app.extensions["hashdb"].close()


def test_batch_limit_follows_the_config(tmp_path, keys, app):
    small = create_app({"DB": app.config["DB"], "MAX_BATCH": 2, "LOAD_INDEX_IN_BACKGROUND": False, "RATE_LIMIT": 0})
    try:
        items = [{"signal": "md5", "hash": "0" * 32}] * 3
        reply = small.test_client().post("/v1/lookup", json={"items": items},
                                          headers={"Authorization": f"Bearer {keys['consumer']}"})
        assert "limit is 2" in error_of(reply, 400)["message"]
        assert small.test_client().get("/openapi.json").get_json()["components"]["schemas"]["LookupRequest"][
            "properties"]["items"]["maxItems"] == 2
    finally:
        small.extensions["hashdb"].close()


class GatedIndexes:
    """Wraps a real IndexSet; load() waits until the test opens the gate."""

    def __init__(self, inner, gate):
        self.inner, self.gate = inner, gate

    def load(self, progress=None):
        self.gate.wait(10)
        self.inner.load(progress)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_readyz_is_503_until_the_index_is_loaded_and_healthz_answers_at_once(app, keys):
    gate = threading.Event()
    db = app.config["DB"]

    def factory():
        service = open_database(db)
        service.indexes = GatedIndexes(service.indexes, gate)
        return service

    runtime = ServiceRuntime(factory, background=True)
    app.extensions["hashdb"] = runtime
    client = app.test_client()
    try:
        assert client.get("/healthz").status_code == 200
        error = error_of(client.get("/readyz"), 503)
        assert error["code"] == "index_loading"
        reply = client.post("/v1/lookup", json={"items": [{"signal": "pdq", "hash": random_pdq(random.Random(1))}]},
                            headers={"Authorization": f"Bearer {keys['consumer']}"})
        assert error_of(reply, 503)["code"] == "index_stale" and reply.headers["Retry-After"] == "1"
        gate.set()
        assert runtime.wait_ready(10)
        assert client.get("/readyz").get_json() == {"status": "ready"}
        reply = client.post("/v1/lookup", json={"items": [{"signal": "pdq", "hash": random_pdq(random.Random(1))}]},
                            headers={"Authorization": f"Bearer {keys['consumer']}"})
        assert reply.status_code == 200
    finally:
        gate.set()
        runtime.close()


def test_token_bucket_refills_at_the_rate():
    now = [100.0]
    bucket = TokenBucket(rate=2.0, burst=3, clock=lambda: now[0])
    for _ in range(3):
        bucket.take("k")
    with pytest.raises(RateLimited) as caught:
        bucket.take("k")
    assert caught.value.retry_after == 1
    bucket.take("other")  # per key
    now[0] += 0.5  # one token back at 2/s
    bucket.take("k")
    with pytest.raises(RateLimited):
        bucket.take("k")
    assert TokenBucket(rate=0, burst=1).enabled is False


def test_rate_limit_gives_429_with_retry_after(tmp_path, app, keys):
    limited = create_app({"DB": app.config["DB"], "RATE_LIMIT": 0.01, "RATE_BURST": 2,
                          "LOAD_INDEX_IN_BACKGROUND": False})
    try:
        client = limited.test_client()
        headers = {"Authorization": f"Bearer {keys['consumer']}"}
        assert [client.get("/v1/stats", headers=headers).status_code for _ in range(2)] == [200, 200]
        reply = client.get("/v1/stats", headers=headers)
        assert error_of(reply, 429)["code"] == "rate_limited"
        assert int(reply.headers["Retry-After"]) >= 1
        other = {"Authorization": f"Bearer {keys['admin']}"}
        assert client.get("/v1/stats", headers=other).status_code == 200
    finally:
        limited.extensions["hashdb"].close()


def test_importing_hashdb_and_its_cli_does_not_import_flask():
    code = ("import sys, hashdb, hashdb.cli, hashdb.partners.client; "
            "bad = [m for m in ('flask', 'werkzeug', 'gunicorn', 'hashdb.api', 'prometheus_client') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_patch_relabels_for_the_owner_only(client, keys):
    auth = {"Authorization": f"Bearer {keys['alpha']}"}
    body = {"items": [{"signal": "md5", "hash": "ab" * 16, "labels": ["glorification"]}]}
    record_id = client.post("/v1/hashes", json=body, headers=auth).get_json()["results"][0]["ids"][0]
    other = client.patch(f"/v1/hashes/{record_id}", json={"labels": ["graphic_violence"]},
                         headers={"Authorization": f"Bearer {keys['beta']}"})
    assert other.status_code == 403 and other.get_json()["error"]["code"] == "forbidden"
    bad = client.patch(f"/v1/hashes/{record_id}", json={"labels": ["nope"]}, headers=auth)
    assert bad.status_code == 422
    ok = client.patch(f"/v1/hashes/{record_id}", json={"labels": ["graphic_violence"]}, headers=auth)
    assert ok.status_code == 200 and ok.get_json()["labels"] == ["graphic_violence"]


def test_an_id_past_the_largest_is_not_found_for_every_method(client, keys):
    auth = {"Authorization": f"Bearer {keys['admin']}"}
    big = f"/v1/hashes/{2**63}"
    assert client.delete(big, headers=auth).status_code == 404
    assert client.patch(big, json={"labels": ["glorification"]}, headers=auth).status_code == 404
    assert client.post(f"{big}/feedback", json={"verdict": "agree"}, headers=auth).status_code == 404


@pytest.mark.parametrize("method,path", [("DELETE", "/v1/hashes/abc"), ("GET", "/v1/incidents/1x"),
                                         ("POST", "/v1/hashes/-3/feedback"), ("GET", "/v1/nothing")])
def test_an_unknown_path_is_named_in_its_404(client, keys, method, path):
    reply = client.open(path, method=method, headers={"Authorization": f"Bearer {keys['admin']}"})
    assert reply.status_code == 404
    error = reply.get_json()["error"]
    assert error["code"] == "not_found"
    assert repr(path) in error["message"] and "/openapi.json" in error["message"]


def test_a_404_cuts_a_long_path():
    from werkzeug.exceptions import NotFound

    path = "/v1/" + "x" * 10_000
    _, _, message, _ = api_errors.http_error(NotFound(), {"PATH_INFO": path})
    assert len(message) < 400 and message.count("x") == api_errors.MAX_PATH_SHOWN - len("/v1/")


@pytest.mark.parametrize("items,where", [
    ([{"signal": "pdq", "hash": "ab" * 32}, {"signal": "pdq", "hash": "ab" * 32}, {"signal": "pdq", "hash": "12"}],
     "items[2]"),
    ([{"signal": "md5", "hash": "ab" * 16}, {"signal": "nosuch", "hash": "ab"}], "items[1]"),
    ([{"hashes": [{"signal": "md5", "hash": "ab" * 16}, {"signal": "md5", "hash": "zz"}]}], "items[0].hashes[1]"),
    ([{"frames": [{"pdq": "ab" * 32, "quality": 90}, {"pdq": "ab", "quality": 90}]}], "items[0].frames[1]"),
])
def test_a_bad_hash_in_a_batch_is_named_by_its_place(client, keys, items, where):
    reply = client.post("/v1/lookup", json={"items": items}, headers={"Authorization": f"Bearer {keys['admin']}"})
    assert reply.status_code == 400
    assert reply.get_json()["error"]["message"].startswith(f"{where}: "), reply.get_json()
