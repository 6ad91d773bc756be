"""Reloading the answer to a create-form re-sends it; the console must not create twice."""

from __future__ import annotations

import re

from app_fixtures import app, keys  # noqa: F401  (the API tests' in-process fixtures)
from console_client import signed_in


def field(page: str, name: str) -> str:
    return re.search(rf'name="{name}" value="([^"]+)"', page).group(1)


def key_count(app) -> int:
    return len(app.extensions["hashdb"].service().store.list_api_keys())


def test_a_reloaded_create_key_form_makes_one_key(app, keys):
    client = signed_in(app, keys["admin"])
    page = client.get("/ui/admin/keys").get_data(as_text=True)
    form = {"csrf_token": field(page, "csrf_token"), "once": field(page, "once"), "org": "newco", "role": "consumer"}
    before = key_count(app)
    first = client.post("/ui/admin/keys", data=form)
    assert first.status_code == 201 and key_count(app) == before + 1
    again = client.post("/ui/admin/keys", data=form)  # what the browser's reload sends
    assert again.status_code == 303 and key_count(app) == before + 1
    assert "sent already" in client.get(again.headers["Location"]).get_data(as_text=True)
    # A form rendered afresh (the answer carries one) creates a second key on purpose.
    form["once"] = field(first.get_data(as_text=True), "once")
    assert client.post("/ui/admin/keys", data=form).status_code == 201 and key_count(app) == before + 2


def test_a_create_form_without_its_token_creates_nothing(app, keys):
    client = signed_in(app, keys["admin"])
    page = client.get("/ui/admin/webhooks").get_data(as_text=True)
    # delta: an organisation holding a partner key, which a webhook's needs.
    reply = client.post("/ui/admin/webhooks", data={"csrf_token": field(page, "csrf_token"),
                                                    "org": "delta", "url": "https://example.org/hook"})
    assert reply.status_code == 303
    assert app.extensions["hashdb"].service().store.webhooks(active_only=False) == []


def test_a_create_form_the_role_may_not_send_is_refused_as_such(app, keys):
    client = signed_in(app, keys["consumer"])
    page = client.get("/ui/").get_data(as_text=True)  # a valid CSRF token of its own session
    before = key_count(app)
    reply = client.post("/ui/admin/keys", data={"csrf_token": field(page, "csrf_token"), "org": "gamma",
                                                "role": "admin"})
    assert reply.status_code == 403 and key_count(app) == before
    assert "consumer role may not create API keys" in reply.get_data(as_text=True)
    reply = client.post("/ui/admin/webhooks", data={"csrf_token": field(page, "csrf_token"), "org": "alpha",
                                                    "url": "https://example.org/hook"})
    assert reply.status_code == 403
    assert "sent already" not in client.get("/ui/").get_data(as_text=True)
