"""Members' votes reach partners' mirrors: the change feed carries each record's counts (and a
vote is a change), so a mirror's lookup answers say what the source's say, against a real
`hashdb serve` and the real `hashdb sync`; feeds from before the counts still import."""

from __future__ import annotations

import json
import random

import pytest
from partner_helpers import share_pdq
from serverproc import make_keys, serving
from support import random_pdq
from test_sync import ROLES, hashdb

from hashdb.partners.client import Client


@pytest.fixture
def served(tmp_path):
    with serving(tmp_path / "server.sqlite", ROLES) as served:
        yield served


def votes_of(answer: dict) -> tuple:
    [match] = answer["matches"]
    return match["status"], match["agree"], match["disagree"], match["false_positive"]


def lookup(*args: str) -> dict:
    done = hashdb("lookup", "--json", *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_mirror_answers_with_the_sources_votes(served, tmp_path):
    server, keys = served
    voters = make_keys(server.db, {"beta": ("beta", "consumer"), "epsilon": ("epsilon", "consumer")})
    pdq = random_pdq(random.Random(21))
    [record_id] = share_pdq(server.url, keys["alpha"], pdq)
    Client(server.url, voters["beta"][0]).feedback(record_id, "disagree")
    Client(server.url, voters["epsilon"][0]).feedback(record_id, "false_positive")
    at_server = lookup(f"pdq:{pdq}", "--server", server.url, "--api-key", keys["consumer"])
    assert votes_of(at_server) == ("disputed", 0, 1, 1)

    mirror = tmp_path / "mirror.sqlite"
    sync = ["sync", "--from", server.url, "--api-key", keys["partner"], "--db", str(mirror)]
    assert hashdb(*sync).returncode == 0
    assert votes_of(lookup(f"pdq:{pdq}", "--db", str(mirror))) == ("disputed", 0, 1, 1)
    done = hashdb("lookup", f"pdq:{pdq}", "--db", str(mirror))
    assert "disputed, 1 org(s), 0 agree / 1 disagree / 1 false positive" in done.stdout

    # A vote that moves no status still reaches the mirror at its next sync.
    Client(server.url, keys["consumer"]).feedback(record_id, "agree")
    assert votes_of(lookup(f"pdq:{pdq}", "--server", server.url, "--api-key", keys["consumer"])) == \
        ("disputed", 1, 1, 1)
    again = hashdb(*sync, "--json")
    assert again.returncode == 0, again.stderr
    assert [json.loads(line)["changed"] for line in again.stdout.splitlines()] == [1]
    assert votes_of(lookup(f"pdq:{pdq}", "--db", str(mirror))) == ("disputed", 1, 1, 1)
    # Nothing new: nothing changes.
    assert [json.loads(line)["changed"] for line in hashdb(*sync, "--json").stdout.splitlines()] == [0]

    # The mirror's own export carries the counts on (a mirror of the mirror).
    exported = hashdb("export", "--db", str(mirror))
    latest = [json.loads(line) for line in exported.stdout.splitlines()][-1]
    assert (latest["agree"], latest["disagree"], latest["false_positive"]) == (1, 1, 1)
    second = tmp_path / "second.sqlite"
    feed = tmp_path / "mirror-feed.jsonl"
    feed.write_text(exported.stdout)
    assert hashdb("import", "--db", str(second), str(feed)).returncode == 0
    assert votes_of(lookup(f"pdq:{pdq}", "--db", str(second))) == ("disputed", 1, 1, 1)


def test_a_feed_from_before_the_counts_still_imports(served, tmp_path):
    server, keys = served
    pdq = random_pdq(random.Random(22))
    share_pdq(server.url, keys["alpha"], pdq)
    docs, _ = Client(server.url, keys["partner"]).export(None, 100)
    old = [{k: v for k, v in d.items() if k not in ("agree", "disagree", "false_positive")} for d in docs]
    assert old != docs  # the counts were there to take out
    feed = tmp_path / "old-feed.jsonl"
    feed.write_text("".join(json.dumps(d) + "\n" for d in old))
    mirror = tmp_path / "mirror.sqlite"
    done = hashdb("import", "--json", "--db", str(mirror), str(feed))
    assert done.returncode == 0, done.stderr
    assert votes_of(lookup(f"pdq:{pdq}", "--db", str(mirror))) == ("active", 0, 0, 0)

    # Half a set of counts is a one-line error naming the line.
    partial = tmp_path / "partial.jsonl"
    partial.write_text(json.dumps({**docs[0], "agree": None}) + "\n")
    done = hashdb("import", "--db", str(tmp_path / "other.sqlite"), str(partial))
    assert done.returncode == 1 and done.stderr.count("\n") == 1
    assert f"{partial}:1" in done.stderr and "disagree, false_positive" in done.stderr
    negative = tmp_path / "negative.jsonl"
    negative.write_text(json.dumps({**docs[0], "agree": -1}) + "\n")
    done = hashdb("import", "--db", str(tmp_path / "other.sqlite"), str(negative))
    assert done.returncode == 1 and "agree must be a count" in done.stderr
