"""What a lookup against a local database or mirror says: the source's record id and source on
every match from a mirror (feedback goes to the source by that id), and member visibility
(quarantined records do not match) unless the operator asks for --admin."""

from __future__ import annotations

import json
import random

from click.testing import CliRunner
from partner_helpers import admin_of, feed_docs, jsonl
from support import principal, random_pdq

from hashdb.cli import cli
from hashdb.service.local import open_database
from hashdb.types import HashValue, Submission

LABELS = ("glorification",)


def run(db, *args):
    result = CliRunner().invoke(cli, [*args, "--db", str(db)], env={"HASHDB_DB": None, "HASHDB_SERVER": None})
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def build_source(path, hexes):
    service = open_database(path)
    alice = principal(service, "alice", "contributor")
    ids = [service.submit([Submission(h, LABELS, (HashValue("pdq", h, 100),))], alice)[0].ids[0] for h in hexes]
    docs = feed_docs(service)
    service.store.close()
    return ids, docs


def test_matches_from_a_mirror_name_the_source_and_its_record_id(tmp_path):
    # Issue item 17: mirror lookups reported the mirror's own ids, so a partner's feedback on
    # that id voted on a different record at the source.
    rng = random.Random(17)
    hexes = [random_pdq(rng) for _ in range(3)]
    source_ids, docs = build_source(tmp_path / "source.sqlite", hexes)
    mirror_db = tmp_path / "mirror.sqlite"
    # The mirror holds a record of its own first, so its ids and the source's differ.
    run(mirror_db, "submit", f"pdq:{random_pdq(rng)}", "--pdq-quality", "100", "--label", "glorification")
    feed = tmp_path / "feed.jsonl"
    feed.write_text(jsonl(docs))
    run(mirror_db, "import", str(feed), "--source", "https://hashdb.example.org")
    results = run(mirror_db, "lookup", "--json", *(f"pdq:{h}" for h in hexes))
    for result, source_id in zip(results, source_ids):
        [match] = result["matches"]
        assert match["source"] == {"name": "https://hashdb.example.org", "id": source_id}
        assert match["id"] != source_id
    # A record of the database's own says no source.
    own = run(mirror_db, "lookup", "--json", f"pdq:{docs[0]['hash']}")[0]["matches"]
    assert all("source" not in m or m["source"]["id"] in source_ids for m in own)


def test_local_lookups_follow_member_visibility_unless_admin(tmp_path):
    # Issue item 18: local mode acted as admin, so quarantined records matched offline while
    # the API answered no match for the same hash.
    db = tmp_path / "db.sqlite"
    value = random_pdq(random.Random(18))
    [doc] = run(db, "submit", "--json", f"pdq:{value}", "--pdq-quality", "100", "--label", "glorification")
    run(db, "quarantine", "add", str(doc["ids"][0]), "--reason", "member report")
    [member] = run(db, "lookup", "--json", f"pdq:{value}")
    assert member["matched"] is False and member["matches"] == []
    [operator] = run(db, "lookup", "--json", "--admin", f"pdq:{value}")
    assert [(m["id"], m["status"]) for m in operator["matches"]] == [(doc["ids"][0], "quarantined")]


def test_a_mirror_holds_back_what_the_source_quarantined(tmp_path):
    rng = random.Random(181)
    hexes = [random_pdq(rng) for _ in range(2)]
    source = open_database(tmp_path / "source.sqlite")
    alice = principal(source, "alice", "contributor")
    ids = [source.submit([Submission(h, LABELS, (HashValue("pdq", h, 100),))], alice)[0].ids[0] for h in hexes]
    source.quarantine(ids[0], admin_of(source), "member report")
    docs = feed_docs(source)
    source.store.close()
    mirror_db = tmp_path / "mirror.sqlite"
    feed = tmp_path / "feed.jsonl"
    feed.write_text(jsonl(docs))
    run(mirror_db, "import", str(feed))
    held, live = run(mirror_db, "lookup", "--json", *(f"pdq:{h}" for h in hexes))
    assert held["matched"] is False and live["matched"] is True
