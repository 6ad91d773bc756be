"""Incidents: only an open incident may tag a submission; admins open and close them."""

from __future__ import annotations

import random

import pytest

from hashdb.errors import Conflict, Forbidden, InvalidInput
from hashdb.types import HashValue, Submission
from support import principal, random_pdq
from trust_helpers import lines


def sub(value: str, incident: str | None) -> Submission:
    return Submission(value, ("attacker_manifesto",), (HashValue("md5", value),), incident=incident)


def test_submission_must_name_an_open_incident(make_service):
    service = make_service()
    admin, contributor = principal(service, "ops", "admin"), principal(service, "a", "contributor")
    with pytest.raises(InvalidInput, match="no incident 'attack-1': a submission's incident must be one an admin opened"):
        service.submit([sub("a" * 32, "attack-1")], contributor)
    opened = service.open_incident("attack-1", admin, "live stream")
    [by_name] = service.submit([sub("a" * 32, "attack-1")], contributor)
    [by_id] = service.submit([sub("b" * 32, str(opened.id))], contributor)
    records = service.store.get_records([by_name.ids[0], by_id.ids[0]])
    assert {r.incident for r in records.values()} == {"attack-1"}  # an id is stored as the name
    service.close_incident(opened.id, admin)
    with pytest.raises(InvalidInput, match="was closed"):
        service.submit([sub("c" * 32, "attack-1")], contributor)
    # The whole batch is refused, the good item included.
    with pytest.raises(InvalidInput):
        service.submit([sub("d" * 32, None), sub("e" * 32, "attack-1")], contributor)
    assert service.store.find_values("md5", ["d" * 32]) == []


def test_incident_rules(make_service):
    service = make_service()
    admin, contributor = principal(service, "ops", "admin"), principal(service, "a", "contributor")
    with pytest.raises(Forbidden):
        service.open_incident("x", contributor)
    with pytest.raises(InvalidInput, match="all digits"):
        service.open_incident("2026", admin)
    with pytest.raises(InvalidInput, match="empty"):
        service.open_incident("  ", admin)
    service.open_incident("x", admin)
    with pytest.raises(Conflict):
        service.open_incident("x", admin)
    actions = [e.action for e in service.store.audit_entries(0, 100)]
    assert actions.count("incident.open") == 1


def test_incident_names_that_read_alike_are_one_incident(make_service):
    # Found in trial: Attack-2026-12, аttack-2026-12 (Cyrillic а) and attack‑2026‑12 (U+2011)
    # opened beside attack-2026-12 as separate incidents, and members' tags split between them.
    service = make_service()
    admin, contributor = principal(service, "ops", "admin"), principal(service, "a", "contributor")
    service.open_incident("attack-2026-12", admin)
    for alike in ("Attack-2026-12", "attack\u20112026\u201112", "ＡＴＴＡＣＫ-2026-12"):
        with pytest.raises(Conflict, match="reads the same"):
            service.open_incident(alike, admin)
    with pytest.raises(InvalidInput, match="mixes Cyrillic and Latin letters"):
        service.open_incident("\u0430ttack-2026-12", admin)
    service.open_incident("Атака-2026-12", admin)  # one script, any script
    service.open_incident("attack-東京", admin)  # Latin beside Han reads as nothing else
    # A submission naming it in another case finds it.
    [result] = service.submit([sub("f" * 32, "ATTACK-2026-12")], contributor)
    assert service.store.get_records(result.ids)[result.ids[0]].incident == "attack-2026-12"


def test_cli_incident_open_list_close_and_submit(run):
    opened = lines(run("incident", "open", "--json", "attack-9", "--description", "stream"))[0]
    assert (opened["name"], opened["status"]) == ("attack-9", "open")
    value = random_pdq(random.Random(4))
    ok = run("submit", "--pdq-quality", "100", "--json", f"pdq:{value}", "--label", "attacker_manifesto", "--incident", "attack-9")
    assert ok.exit_code == 0
    assert [d["name"] for d in lines(run("incident", "list", "--open", "--json"))] == ["attack-9"]
    assert run("incident", "close", str(opened["id"])).exit_code == 0
    assert lines(run("incident", "list", "--open", "--json")) == []
    refused = run("submit", "--pdq-quality", "100", f"pdq:{random_pdq(random.Random(5))}", "--label", "glorification",
                  "--incident", "attack-9")
    assert refused.exit_code == 1 and "was closed" in refused.stderr and "Traceback" not in refused.stderr


def test_a_mirror_import_keeps_incident_tags_it_has_no_incident_for(run, tmp_path):
    from trust_helpers import Run

    run("incident", "open", "attack-9")
    run("submit", "--pdq-quality", "100", f"pdq:{random_pdq(random.Random(6))}", "--label", "glorification", "--incident", "attack-9")
    feed = tmp_path / "feed.jsonl"
    feed.write_text(run("export").stdout)
    mirror = Run(tmp_path / "mirror.sqlite")
    imported = mirror("import", "--json", str(feed))
    assert imported.exit_code == 0, imported.stderr
    assert [e["incident"] for e in lines(mirror("export"))] == ["attack-9"]
