"""In-process app fixtures (Flask test client over a temporary database, keys for each role),
shared by the API and console test folders: each folder's conftest imports them."""

from __future__ import annotations

import pytest

from hashdb.api import create_app
from serverproc import make_keys

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
