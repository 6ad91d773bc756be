"""Console pages a new user's trial found wanting: a mistyped console address answered the
API's raw JSON, and the check page left out the false-positive reports the API's lookup answer
counts. In-process, signed in by the form."""

from __future__ import annotations

import random
import re

from app_fixtures import app, keys  # noqa: F401  (the API tests' in-process fixtures)
from console_client import signed_in
from support import random_pdq


def test_an_unknown_console_page_is_an_html_404(app, keys):
    client = signed_in(app, keys["consumer"])
    for path in ("/ui/nope", "/ui/records/abc", "/ui/a/b/c"):
        reply = client.get(path)
        assert reply.status_code == 404 and reply.mimetype == "text/html", (path, reply.get_data()[:200])
        assert "<html" in reply.get_data(as_text=True).lower()
    # Signed out, it asks to sign in first, as every page does; the API's paths stay JSON.
    assert app.test_client().get("/ui/nope").status_code == 302
    assert app.test_client().get("/v1/nope").mimetype == "application/json"
    static = client.get("/ui/static/check.js")
    static.close()
    assert static.status_code == 200


def test_the_check_page_shows_false_positive_reports(app, keys):
    api = app.test_client()
    value = random_pdq(random.Random(77))
    shared = api.post("/v1/hashes", headers={"Authorization": f"Bearer {keys['alpha']}"}, json={"items": [
        {"signal": "pdq", "hash": value, "quality": 100, "labels": ["glorification"]}]})
    [record_id] = shared.get_json()["results"][0]["ids"]
    voted = api.post(f"/v1/hashes/{record_id}/feedback", headers={"Authorization": f"Bearer {keys['consumer']}"},
                     json={"verdict": "false_positive"})
    assert voted.status_code == 200, voted.get_json()
    looked = api.get(f"/v1/lookup?signal=pdq&hash={value}", headers={"Authorization": f"Bearer {keys['beta']}"})
    [match] = looked.get_json()["matches"]
    assert (match["agree"], match["disagree"], match["false_positive"]) == (0, 0, 1)
    client = signed_in(app, keys["beta"])
    page = client.get("/ui/check").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    answer = client.post("/ui/check", data={"hashes": f"pdq:{value}", "csrf_token": token}).get_data(as_text=True)
    assert "Agree / disagree / false positive" in answer
    assert "<td>0 / 0 / 1</td>" in answer, answer


def test_sign_in_goes_only_to_a_console_page_whatever_next_says(app, keys):
    # Found in trial: a `next` with a line break answered 500 right after the member typed
    # their key (a Location header may not hold one); `/ui/../v1/export` went out of the console.
    for target, lands in (("/ui/records?q=1\r\nSet-Cookie: x=1", "/ui/"), ("/ui/x\nX-Evil: 1", "/ui/"),
                          ("/ui/../v1/export", "/ui/"), ("/ui/%2e%2e/v1/export", "/ui/"),
                          ("https://evil.example/", "/ui/"), ("/ui/records?q=1", "/ui/records?q=1")):
        client = app.test_client()
        form = client.get("/ui/signin").get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
        reply = client.post("/ui/signin", data={"key": keys["consumer"], "csrf_token": token, "next": target})
        assert reply.status_code == 302, (target, reply.status_code)
        assert reply.headers["Location"] == lands, target


def test_a_safelist_paste_over_the_limit_is_refused_whole_not_cut(app, keys):
    # Found in trial: the form cut the paste at 200,000 characters and safelisted the first
    # part, saying "Safelisted 2400 new hash(es)" for a paste of 3,000.
    rng = random.Random(3)
    line = " ".join(f"sha256:{rng.getrandbits(256):064x}" for _ in range(3))
    lines = [line.ljust(250) for _ in range(1000)]
    client = signed_in(app, keys["admin"])
    page = client.get("/ui/admin/safelist").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    reply = client.post("/ui/admin/safelist", data={"hashes": "\n".join(lines), "csrf_token": token})
    assert reply.status_code == 400, reply.status_code
    assert "the limit is 200000" in reply.get_data(as_text=True)
    assert app.extensions["hashdb"].service().store.safelist_version()[0] == 0


def test_wrong_keys_at_the_sign_in_form_count_against_the_failed_key_limit(tmp_path):
    # Found in trial: the API answered 429 after the burst of wrong keys from one address, the
    # console's form never did, so it was a way round the limit.
    from hashdb.api import create_app
    from serverproc import make_keys

    app = create_app({"DB": str(tmp_path / "db.sqlite"), "LOAD_INDEX_IN_BACKGROUND": False, "RATE_LIMIT": 0,
                      "TESTING": True, "AUTH_FAILURE_RATE": 0.001, "AUTH_FAILURE_BURST": 3})
    try:
        good = make_keys(app.config["DB"], {"consumer": ("gamma", "consumer")})["consumer"][0]
        client = app.test_client()
        form = client.get("/ui/signin").get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
        statuses = [client.post("/ui/signin", data={"key": f"hdb_{n:012x}_{'x' * 43}", "csrf_token": token}).status_code
                    for n in range(5)]
        assert statuses == [401, 401, 401, 429, 429]
        # The API's key check shares the bucket: it is empty for this address now.
        assert app.test_client().get("/v1/stats", headers={"Authorization": "Bearer hdb_x_y"}).status_code == 429
        # A right key not checked before waits too from this address, as at the API.
        limited = client.post("/ui/signin", data={"key": good, "csrf_token": token})
        assert limited.status_code == 429 and "Retry-After" in limited.headers
    finally:
        app.extensions["hashdb"].close()
