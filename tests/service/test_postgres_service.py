"""The whole service over PostgreSQL: what several API replicas share."""

from __future__ import annotations

import random

import pytest

from hashdb.service.local import open_database
from hashdb.types import HashValue, Query, Submission

from support import flip, principal, random_pdq

pytestmark = pytest.mark.postgres


def test_two_replicas_see_each_others_writes_and_retractions(postgres_dsn, monkeypatch):
    monkeypatch.setenv("HASHDB_SECRET", "x" * 40)
    first, second = open_database(postgres_dsn), open_database(postgres_dsn)
    try:
        _replicas_agree(first, second)
    finally:
        first.store.close()
        second.store.close()


def _replicas_agree(first, second):
    for replica in (first, second):
        replica.load_index()
    rng = random.Random(31)
    base = random_pdq(rng)
    alice = principal(first, "alice", "contributor")
    [stored] = first.submit([Submission("s", ("glorification",), (HashValue("pdq", base, 90),))], alice)
    query = [Query("q", (HashValue("pdq", flip(base, 9, rng)),))]
    [seen] = second.lookup(query, alice)
    assert [(m.id, m.distance) for m in seen.matches] == [(stored.ids[0], 9)]
    second.retract(stored.ids[0], alice)
    assert not first.lookup(query, alice)[0].matched


def test_postgres_needs_a_shared_secret(postgres_dsn, monkeypatch):
    from hashdb.errors import InvalidInput

    monkeypatch.delenv("HASHDB_SECRET", raising=False)
    with pytest.raises(InvalidInput):
        open_database(postgres_dsn)
