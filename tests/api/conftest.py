"""Fixtures for the API tests: an app over a temporary database (Flask test client), keys
for each role, and one real `hashdb serve` per session for the end-to-end tests."""

from __future__ import annotations

import pytest

from api import create_app
from serverproc import TEST_MAX_CONTENT_LENGTH, make_keys, start_server

ROLES = {
    "admin": ("operator", "admin"),
    "alpha": ("alpha", "contributor"),  # contributes the records the tests look up
    "beta": ("beta", "contributor"),
    "consumer": ("gamma", "consumer"),
    "partner": ("delta", "partner"),
}


@pytest.fixture
def app(tmp_path):
    app = create_app({"DB": str(tmp_path / "db.sqlite"), "LOAD_INDEX_IN_BACKGROUND": False,
                      "RATE_LIMIT": 0, "TESTING": True})
    yield app
    app.extensions["hashdb"].close()


@pytest.fixture
def keys(app):
    return {name: key for name, (key, _) in make_keys(app.config["DB"], ROLES).items()}


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def live_db(tmp_path_factory):
    return tmp_path_factory.mktemp("live") / "db.sqlite"


@pytest.fixture(scope="session")
def live_keys(live_db):
    return make_keys(live_db, ROLES)


@pytest.fixture(scope="session")
def live(live_db, live_keys):
    server = start_server(live_db, workers=2, env={
        "HASHDB_MAX_CONTENT_LENGTH": str(TEST_MAX_CONTENT_LENGTH),
        "HASHDB_RATE_LIMIT": "0",
    })
    yield server
    server.stop()
