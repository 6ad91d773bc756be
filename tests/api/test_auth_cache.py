"""Key checks: a refused key costs no database read when retried, failed attempts are rate
limited per client address, and a revoke in another process counts from the next request
even though accepted keys are cached."""

from __future__ import annotations

import random

import pytest

from hashdb.api import create_app
from hashdb.trust import keys as key_format
from hashdb.service.local import open_database
from hashdb.types import Principal
from serverproc import make_keys
from support import random_pdq

ROLES = {"consumer": ("gamma", "consumer")}
PATH = "/v1/lookup?signal=pdq&hash=" + random_pdq(random.Random(1))


@pytest.fixture
def app(tmp_path):
    app = create_app({"DB": str(tmp_path / "db.sqlite"), "LOAD_INDEX_IN_BACKGROUND": False, "RATE_LIMIT": 0,
                      "AUTH_FAILURE_RATE": 0.001, "AUTH_FAILURE_BURST": 3, "WEBHOOK_INTERVAL": 0,
                      "TESTING": True})
    yield app
    app.extensions["hashdb"].close()


@pytest.fixture
def made(app):
    return make_keys(app.config["DB"], ROLES)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class CountingReads:
    """Counts the store's key look-ups (the real method still runs)."""

    def __init__(self, store) -> None:
        self.calls = 0
        self._find = store.find_api_key
        store.find_api_key = self

    def __call__(self, prefix: str):
        self.calls += 1
        return self._find(prefix)


def test_a_refused_key_retried_costs_no_database_read(app, made):
    client = app.test_client()
    reads = CountingReads(app.extensions["hashdb"].service().store)
    wrong, _ = key_format.generate()
    for _ in range(3):
        reply = client.get(PATH, headers=bearer(wrong))
        assert reply.status_code == 401
    assert reads.calls == 1


def test_failed_attempts_are_rate_limited_per_address_but_known_keys_still_work(app, made):
    client = app.test_client()
    good = made["consumer"][0]
    assert client.get(PATH, headers=bearer(good)).status_code == 200
    for _ in range(3):  # the burst: each a different well-formed key
        assert client.get(PATH, headers=bearer(key_format.generate()[0])).status_code == 401
    limited = client.get(PATH, headers=bearer(key_format.generate()[0]))
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    # From another address the same attempt is only refused.
    other = client.get(PATH, headers=bearer(key_format.generate()[0]),
                       environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert other.status_code == 401
    # A key this server already accepted is not locked out with its address.
    assert client.get(PATH, headers=bearer(good)).status_code == 200


def test_a_revoke_elsewhere_counts_from_the_next_request(app, made):
    client = app.test_client()
    key, key_id = made["consumer"]
    assert client.get(PATH, headers=bearer(key)).status_code == 200
    assert client.get(PATH, headers=bearer(key)).status_code == 200  # now cached
    elsewhere = open_database(app.config["DB"])  # another connection, as the CLI would be
    try:
        operator = elsewhere.store.ensure_org("operator")
        elsewhere.revoke_key(key_id, Principal(operator.id, operator.name, "admin"))
    finally:
        elsewhere.store.close()
    reply = client.get(PATH, headers=bearer(key))
    assert reply.status_code == 401 and "revoked" in reply.get_json()["error"]["message"]
