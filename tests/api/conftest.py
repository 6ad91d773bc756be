"""Fixtures for the API tests: an app over a temporary database (Flask test client), keys
for each role, and one real `hashdb serve` per session for the end-to-end tests."""

from __future__ import annotations

import pytest

from app_fixtures import ROLES, app, client, keys  # noqa: F401  (fixtures shared with tests/ui)
from serverproc import TEST_MAX_CONTENT_LENGTH, make_keys, start_server


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
