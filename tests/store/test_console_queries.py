"""The console's store queries, on every store: filtered keyset pages agree with a plain Python
filter over what was inserted, a record's history, one-time sign-in links."""

from __future__ import annotations

import random

from store_helpers import actor, pdq, record

from hashdb.types import RecordQuery


def _fill(store):
    rng = random.Random(5)
    alpha, beta = actor(store, "alpha"), actor(store, "beta")
    rows = []  # (id, org, signal, status, labels, incident)
    for n in range(120):
        who = alpha if n % 3 else beta
        labels = (rng.choice(["glorification", "graphic_violence", "graphicXviolence"]),)
        incident = "inc-1" if n % 7 == 0 else None
        signal = "pdq" if n % 4 else "md5"
        hexv = pdq(n) if signal == "pdq" else f"{n:032x}"
        [out] = store.add_records([record(hexv, signal, labels, incident=incident)], who)
        rows.append([out.id, who.org_id, signal, "active", labels, incident, hexv])
    for row in rows[::9]:
        store.set_status(row[0], "disputed", alpha, "votes")
        row[3] = "disputed"
    return rows, alpha, beta


def _all_pages(store, query, page=7):
    got, before = [], None
    while True:
        found = store.search_records(RecordQuery(**{**query, "before": before, "limit": page}))
        got += [r.id for r in found]
        if len(found) < page:
            return got
        before = found[-1].id


def test_filtered_pages_walk_exactly_the_matching_records_newest_first(store):
    rows, alpha, _ = _fill(store)
    cases = [
        ({}, lambda r: True),
        ({"status": "disputed"}, lambda r: r[3] == "disputed"),
        ({"signal": "md5"}, lambda r: r[2] == "md5"),
        ({"org_id": alpha.org_id}, lambda r: r[1] == alpha.org_id),
        ({"incident": "inc-1"}, lambda r: r[5] == "inc-1"),
        # `_` must not act as a LIKE wildcard: graphicXviolence is another label.
        ({"label": "graphic_violence"}, lambda r: r[4] == ("graphic_violence",)),
        ({"status": "active", "org_id": alpha.org_id, "label": "glorification"},
         lambda r: r[3] == "active" and r[1] == alpha.org_id and r[4] == ("glorification",)),
    ]
    for query, keep in cases:
        expected = sorted((r[0] for r in rows if keep(r)), reverse=True)
        assert expected, query
        assert _all_pages(store, query) == expected, query


def test_a_hash_value_search_and_a_floor(store):
    rows, _, _ = _fill(store)
    target = rows[10]
    found = store.search_records(RecordQuery(signal=target[2], value=target[6]))
    assert [r.id for r in found] == [target[0]]
    floor = rows[100][0]
    assert [r.id for r in store.search_records(RecordQuery(floor=floor, limit=500))] == \
        sorted((r[0] for r in rows if r[0] >= floor), reverse=True)


def test_history_lists_the_addition_then_audited_changes(store):
    rows, alpha, _ = _fill(store)
    record_id = rows[9][0]  # disputed by _fill
    history = store.record_history(record_id)
    assert [e.action for e in history] == ["hashes.submit", "hashes.status"]
    assert history[1].org_name == "alpha" and '"to": "disputed"' in history[1].detail


def test_a_signin_link_works_once_and_not_after_it_expires(store):
    alpha = actor(store, "alpha")
    key = store.create_api_key(alpha.org_id, "contributor", "abcdefabcdef", "h")
    store.add_signin_link("t1", key.id, "2026-01-01T00:00:00", "2026-01-02T00:00:00")
    assert store.use_signin_link("t1", "2026-01-03T00:00:00") is None  # expired
    store.add_signin_link("t2", key.id, "2026-01-01T00:00:00", "2026-01-02T00:00:00")
    assert store.use_signin_link("t2", "2026-01-01T12:00:00") == key.id
    assert store.use_signin_link("t2", "2026-01-01T12:00:01") is None  # used
    assert store.use_signin_link("nope", "2026-01-01T12:00:00") is None
    assert store.get_api_key(key.id).prefix == "abcdefabcdef" and store.get_api_key(key.id + 99) is None


def test_an_exact_hash_lookup_probes_the_unique_key_on_sqlite(tmp_path):
    """The console's indexes must not change how lookups read: with an index led by signal and
    then id, SQLite walked every record of the signal for `value IN (...) ORDER BY id`."""
    from hashdb.store.rows import RECORD_COLUMNS
    from hashdb.store.sqlite_store import SQLiteStore

    store = SQLiteStore(tmp_path / "plan.sqlite")
    sql = f"SELECT {RECORD_COLUMNS} FROM records r WHERE r.signal = ? AND r.value IN (?) ORDER BY r.id"
    plan = [row[3] for row in store.db.conn.execute("EXPLAIN QUERY PLAN " + sql, ("md5", "00"))]
    store.close()
    assert "(signal=? AND value=?)" in plan[0], plan
