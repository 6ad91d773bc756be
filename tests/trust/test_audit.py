"""The audit log is tamper-evident: edits and deletions behind the application's back are found."""

from __future__ import annotations

import random
import sqlite3

import pytest

from trust_helpers import lines
from support import random_pdq


def make_history(run) -> int:
    """A few audited writes through the CLI; returns how many audit rows exist."""
    rng = random.Random(5)
    hashes = [f"pdq:{random_pdq(rng)}" for _ in range(3)]
    assert run("submit", "--pdq-quality", "100", hashes[0], "--label", "glorification").exit_code == 0
    assert run("submit", "--pdq-quality", "100", hashes[1], hashes[2], "--label", "recruitment_instruction", "--org", "b").exit_code == 0
    assert run("feedback", "1", "--agree", "--org", "b").exit_code == 0
    assert run("keys", "create", "--org", "c", "--role", "consumer").exit_code == 0
    assert run("retract", "2", "--org", "b", "--reason", "mistake").exit_code == 0
    with sqlite3.connect(run.db) as conn:
        (count,) = conn.execute("SELECT COUNT(*) FROM audit").fetchone()
    return int(count)


def tamper(run, sql: str, *params) -> None:
    conn = sqlite3.connect(run.db)
    with conn:
        conn.execute(sql, params)
    conn.close()


def verify(run, *args: str):
    result = run("audit", "verify", "--json", *args)
    [doc] = lines(result)
    return result.exit_code, doc


def test_untouched_log_verifies_and_reports_its_head(run):
    count = make_history(run)
    assert count == 5
    code, doc = verify(run)
    assert code == 0
    with sqlite3.connect(run.db) as conn:
        head_id, head_hash = conn.execute("SELECT id, entry_hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
    assert doc == {"ok": True, "checked": 5, "head": {"id": head_id, "hash": head_hash}}


@pytest.mark.parametrize("column, value", [
    ("detail", '{"verdict": "disagree"}'),
    ("action", "hashes.labels"),
    ("target", "record:2"),
    ("org_id", 99),
    ("at", "2020-01-01T00:00:00.000000+00:00"),
])
def test_an_edited_row_is_named_with_its_id(run, column, value):
    make_history(run)
    tamper(run, f"UPDATE audit SET {column} = ? WHERE id = 3", value)
    code, doc = verify(run)
    assert code == 1
    assert doc["ok"] is False and doc["checked"] == 2
    assert doc["broken"]["id"] == 3
    assert "edited" in doc["broken"]["problem"]


def test_an_edit_shows_in_the_text_output_too(run):
    make_history(run)
    tamper(run, "UPDATE audit SET detail = '{}' WHERE id = 2")
    result = run("audit", "verify")
    assert result.exit_code == 1
    assert "BROKEN at entry 2 (hashes.submit)" in result.stdout


def test_a_deleted_middle_row_is_named_at_the_next_entry(run):
    make_history(run)
    tamper(run, "DELETE FROM audit WHERE id = 3")
    code, doc = verify(run)
    assert code == 1
    assert doc["broken"]["id"] == 4
    assert "between 2 and 4 were deleted" in doc["broken"]["problem"]


def test_a_deleted_first_row_is_found(run):
    make_history(run)
    tamper(run, "DELETE FROM audit WHERE id = 1")
    code, doc = verify(run)
    assert code == 1 and doc["broken"]["id"] == 2


def test_a_rehashed_edit_breaks_the_next_link(run):
    """Editing a row and recomputing its own hash still leaves the next entry pointing elsewhere."""
    from hashdb.store.rows import audit_hash

    make_history(run)
    conn = sqlite3.connect(run.db)
    row = conn.execute("SELECT prev_hash, at, org_id, key_id, action, target FROM audit WHERE id = 2").fetchone()
    forged = audit_hash(row[0], row[1], row[2], row[3], row[4], row[5], "{}")
    with conn:
        conn.execute("UPDATE audit SET detail = '{}', entry_hash = ? WHERE id = 2", (forged,))
    conn.close()
    code, doc = verify(run)
    assert code == 1 and doc["broken"]["id"] == 3
    assert "entry 2" in doc["broken"]["problem"]


def test_a_truncated_tail_is_found_only_with_an_anchor(run):
    make_history(run)
    _, before = verify(run)
    head = f"{before['head']['id']}:{before['head']['hash']}"
    tamper(run, "DELETE FROM audit WHERE id = ?", before["head"]["id"])
    assert verify(run)[0] == 0  # the chain alone cannot see a cut-off tail
    code, doc = verify(run, "--anchor", head)
    assert code == 1 and doc["broken"]["id"] == before["head"]["id"]
    assert "no longer in the log" in doc["broken"]["problem"]


def test_a_tail_rewritten_with_fresh_hashes_is_found_only_with_an_anchor(run):
    """The attack the anchor exists for: every entry from 3 on edited and re-chained, so each
    row's own hash and each link hold, and only the hash written down elsewhere disagrees."""
    from hashdb.store.rows import audit_hash

    count = make_history(run)
    _, before = verify(run)
    conn = sqlite3.connect(run.db)
    with conn:
        (prev,) = conn.execute("SELECT entry_hash FROM audit WHERE id = 2").fetchone()
        rows = conn.execute("SELECT id, at, org_id, key_id, action, target FROM audit WHERE id >= 3 ORDER BY id")
        for entry_id, at, org_id, key_id, action, target in rows.fetchall():
            fresh = audit_hash(prev, at, org_id, key_id, action, target, '{"rewritten": true}')
            conn.execute("UPDATE audit SET detail = ?, prev_hash = ?, entry_hash = ? WHERE id = ?",
                         ('{"rewritten": true}', prev, fresh, entry_id))
            prev = fresh
    conn.close()
    assert verify(run)[0] == 0  # a consistently re-hashed tail is a valid chain on its own
    code, doc = verify(run, "--anchor", f"{before['head']['id']}:{before['head']['hash']}")
    assert code == 1 and doc["broken"]["id"] == before["head"]["id"] == count
    assert "differs from the anchor" in doc["broken"]["problem"]
    assert "rewritten from here or earlier" in doc["broken"]["problem"]


def test_an_anchor_that_still_holds_passes(run):
    make_history(run)
    _, before = verify(run)
    assert run("submit", "md5:" + "ab" * 16, "--label", "glorification").exit_code == 0
    code, doc = verify(run, "--anchor", f"{before['head']['id']}:{before['head']['hash']}")
    assert code == 0 and doc["checked"] == 6


def test_a_bad_anchor_is_a_one_line_error(run):
    result = run("audit", "verify", "--anchor", "nonsense")
    assert result.exit_code == 1
    assert "anchor is ID:HASH" in result.stderr


def test_audit_list_shows_entries_in_order(run):
    make_history(run)
    result = run("audit", "list", "--json", "--after", "1", "--limit", "2")
    assert result.exit_code == 0
    docs = lines(result)
    assert [d["id"] for d in docs] == [2, 3]
    assert [d["action"] for d in docs] == ["hashes.submit", "hashes.feedback"]
    # Found in trial: the text said `org 2  key None`; it names the organisation, and "-" for a
    # command run on the database file (no key).
    assert [d["org"] for d in docs] == ["b", "b"]
    text = run("audit", "list", "--after", "1", "--limit", "2").stdout.splitlines()
    assert all("  b  key -  " in line for line in text), text


def test_audit_verify_is_admin_only(tmp_path):
    from hashdb.config import Settings
    from hashdb.errors import Forbidden
    from hashdb.service import HashDB
    from hashdb.store.sqlite_store import SQLiteStore
    from support import principal

    store = SQLiteStore(tmp_path / "x.sqlite")
    service = HashDB(Settings(), store)
    with pytest.raises(Forbidden):
        service.verify_audit(principal(service, "a", "contributor"))
    assert service.verify_audit(principal(service, "a", "admin")).ok
    store.close()
