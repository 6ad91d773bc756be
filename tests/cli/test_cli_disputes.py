"""`hashdb dispute list` and `hashdb dispute uphold` on a local database: an admin finds what
members' votes dispute and rules that a record stands (service/trust.py, uphold, has the rule);
`quarantine release` says how when a released record is still disputed."""

from __future__ import annotations

import json


def _disputed(run) -> str:
    shared = run("submit", "md5:" + "ab" * 16, "--label", "glorification", "--org", "alpha", "--json")
    record_id = str(json.loads(shared.stdout)["ids"][0])
    for org, verdict in (("beta", "--disagree"), ("gamma", "--false-positive")):
        voted = run("feedback", record_id, verdict, "--note", f"{org} says no", "--org", org)
        assert voted.exit_code == 0, voted.output
    return record_id


def test_an_admin_lists_the_disputed_records_and_upholds_one(run):
    record_id = _disputed(run)
    listed = run("dispute", "list")
    assert listed.exit_code == 0
    assert f"{record_id}  md5  [glorification]  0 agree / 1 disagree / 1 false positive" in listed.stdout
    assert "beta disagree: beta says no; gamma false_positive: gamma says no" in listed.stdout

    upheld = run("dispute", "uphold", record_id, "--reason", "reviewed: genuine", "--json")
    assert upheld.exit_code == 0, upheld.output
    doc = json.loads(upheld.stdout)
    assert (doc["status"], doc["disagree"], doc["false_positive"]) == ("active", 1, 1)
    assert run("dispute", "list").stderr == "no disputed records\n"

    audit = [json.loads(line) for line in run("audit", "list", "--json").stdout.splitlines()]
    [ruling] = [e for e in audit if e["action"] == "dispute.uphold"]
    assert ruling["target"] == f"record:{record_id}" and json.loads(ruling["detail"])["reason"] == "reviewed: genuine"

    # Its votes are listed as overruled once a new wave disputes it again.
    for org in ("delta", "epsilon"):
        run("feedback", record_id, "--disagree", "--org", org)
    [again] = [json.loads(line) for line in run("dispute", "list", "--json").stdout.splitlines()]
    assert [(v["org"], v["overruled_at"] is not None) for v in again["votes"]] == [
        ("beta", True), ("gamma", True), ("delta", False), ("epsilon", False)]


def test_a_release_that_leaves_it_disputed_says_how_to_rule_and_a_ruling_holds_after_it(run):
    record_id = _disputed(run)
    run("quarantine", "add", record_id, "--reason", "held for review")
    released = run("quarantine", "release", record_id, "--reason", "reviewed")
    assert released.stdout.startswith(f"{record_id}: disputed (members' votes dispute it: "
                                      f"`hashdb dispute uphold {record_id} --reason ...`")
    assert run("dispute", "uphold", record_id, "--reason", "reviewed").stdout == f"{record_id}: active\n"
    run("quarantine", "add", record_id, "--reason", "second look")
    assert run("quarantine", "release", record_id, "--reason", "fine").stdout == f"{record_id}: active\n"


def test_uphold_refuses_with_one_line_and_a_non_zero_exit(run):
    record_id = _disputed(run)
    missing = run("dispute", "uphold", record_id)
    assert missing.exit_code == 2 and "Missing option '--reason'" in missing.stderr
    blank = run("dispute", "uphold", record_id, "--reason", " ")
    assert blank.exit_code == 1 and "say why the record stands" in blank.stderr
    run("dispute", "uphold", record_id, "--reason", "reviewed")
    twice = run("dispute", "uphold", record_id, "--reason", "reviewed")
    assert twice.exit_code == 1
    assert twice.stderr.strip() == f"Error: hash record {record_id} is active, not disputed: only a disputed record is upheld"


def test_uphold_is_refused_for_a_record_local_shared_and_allowed_for_another_organisations(run):
    # `dispute uphold --db` acts as the organisation "local", which `submit` uses when no --org
    # is given: the ruling on its own record is another organisation's admin's.
    shared = run("submit", "md5:" + "cd" * 16, "--label", "glorification", "--json")
    own = str(json.loads(shared.stdout)["ids"][0])
    for org in ("beta", "gamma"):
        run("feedback", own, "--disagree", "--org", org)
    refused = run("dispute", "uphold", own, "--reason", "ours is right")
    assert refused.exit_code == 1
    assert f"record {own} is your organisation's own: another organisation's admin must rule" in refused.stderr
    assert run("dispute", "uphold", _disputed(run), "--reason", "reviewed").exit_code == 0
