"""The record page in-process (Flask test client, signed in through the sign-in form): a framed
image's derived hashes are shown to whoever may see its hash, as the export feed carries them."""

from __future__ import annotations

import re

from app_fixtures import app, keys  # noqa: F401  (the API tests' in-process fixtures)
from console_client import bearer
from hashdb.cli.common import hashing_service


def record_page(app, key, record_id):
    client = app.test_client()
    form = client.get("/ui/signin").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    signed_in = client.post("/ui/signin", data={"key": key, "csrf_token": token})
    assert signed_in.status_code == 302, signed_in.get_data(as_text=True)
    page = client.get(f"/ui/records/{record_id}")
    assert page.status_code == 200
    return page.get_data(as_text=True)


def test_record_page_shows_derived_hashes_as_the_export_does(app, keys, media):
    hashed = hashing_service().hash_file(media / "coffee_border.jpg")
    assert hashed.derived, "the bordered fixture yields derived hashes"
    item = {"hashes": [{"signal": v.signal, "hash": v.hex, **({"quality": v.quality} if v.quality else {})}
                       for v in hashed.hashes],
            "derived": [{"via": d.via, "pdq": d.hash.hex, "quality": d.hash.quality} for d in hashed.derived],
            "labels": ["glorification"]}
    client = app.test_client()
    reply = client.post("/v1/hashes", json={"items": [item]}, headers=bearer(keys["alpha"]))
    assert reply.status_code == 201, reply.get_json()

    feed = client.get("/v1/export", headers=bearer(keys["partner"])).get_json()["changes"]
    [entry] = [e for e in feed if e["signal"] == "pdq" and e["kind"] == "add"]
    exported = [(d["via"], d["pdq"]) for d in entry["derived"]]
    assert exported == [(d.via, d.hash.hex) for d in hashed.derived]

    for who in ("alpha", "admin"):  # the owner and an admin see the hash, so its derived ones too
        page = record_page(app, keys[who], entry["id"])
        assert entry["hash"] in page
        for via, hexv in exported:
            assert re.search(rf"<dt>Derived hash \({via}\)</dt><dd><code class=\"hash\">{hexv}</code>", page), who
    # Another member sees what a lookup tells it: neither the hash nor its derived ones.
    page = record_page(app, keys["beta"], entry["id"])
    assert entry["hash"] not in page
    assert not any(hexv in page for _, hexv in exported) and "Derived hash" not in page
