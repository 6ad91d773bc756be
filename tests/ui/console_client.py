"""Signing in to the console in process (Flask's test client) and the API's bearer header, for the
console tests that drive its forms without a browser."""

from __future__ import annotations

import re


def bearer(key):
    return {"Authorization": f"Bearer {key}"}


def signed_in(app, key):
    """A test client signed in with `key` through the sign-in form (its CSRF token included)."""
    client = app.test_client()
    form = client.get("/ui/signin").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    reply = client.post("/ui/signin", data={"key": key, "csrf_token": token})
    assert reply.status_code == 302, reply.get_data(as_text=True)
    return client
