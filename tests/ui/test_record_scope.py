"""What the console tells each key about a record is what the API tells the same key: a consumer
what a lookup answers, a partner what the export feed carries, the contributing organisation
(and an admin) everything, whatever the record's status. In-process, signed in by the form."""

from __future__ import annotations

import random
import re

import pytest

from app_fixtures import app, keys  # noqa: F401  (the API tests' in-process fixtures)
from console_client import bearer, signed_in
from hashdb.types import Principal
from support import random_pdq

INCIDENT = "attack-1"
REFERENCE = "case-7731"
NOTE = "our reviewer saw a broadcast still"


@pytest.fixture
def shared(app, keys):
    """Alpha's record under an open incident, with its reference id and beta's vote with a note."""
    client = app.test_client()
    opened = client.post("/v1/incidents", json={"name": INCIDENT}, headers=bearer(keys["admin"]))
    assert opened.status_code == 201, opened.get_json()
    value = random_pdq(random.Random(41))
    item = {"hashes": [{"signal": "pdq", "hash": value, "quality": 100}], "labels": ["glorification"],
            "incident": INCIDENT, "reference": REFERENCE}
    reply = client.post("/v1/hashes", json={"items": [item]}, headers=bearer(keys["alpha"]))
    assert reply.status_code == 201, reply.get_json()
    [record_id] = reply.get_json()["results"][0]["ids"]
    voted = client.post(f"/v1/hashes/{record_id}/feedback", json={"verdict": "agree", "note": NOTE},
                        headers=bearer(keys["beta"]))
    assert voted.status_code == 200, voted.get_json()
    return record_id, value


def test_a_consumer_sees_of_a_record_what_its_lookup_answers(app, keys, shared):
    record_id, value = shared
    client = app.test_client()
    [match] = client.get(f"/v1/lookup?signal=pdq&hash={value}", headers=bearer(keys["consumer"])).get_json()["matches"]
    assert match["id"] == record_id and "incident" not in match and "reference" not in match
    assert client.get("/v1/incidents/1", headers=bearer(keys["consumer"])).status_code == 403

    for who in ("consumer", "beta"):  # a consumer, and a contributor that is not the owner
        page = signed_in(app, keys[who]).get(f"/ui/records/{record_id}").get_data(as_text=True)
        assert "glorification" in page and "Support" in page  # what the lookup answers
        for withheld in (INCIDENT, REFERENCE, value, "alpha", NOTE, "Created"):
            assert withheld not in page, (who, withheld)


def test_a_partner_sees_of_a_record_what_the_export_feed_carries(app, keys, shared):
    record_id, value = shared
    feed = app.test_client().get("/v1/export", headers=bearer(keys["partner"])).get_json()["changes"]
    # Its addition, then beta's vote (a status change carrying the counts; the note stays out).
    [added, entry] = [e for e in feed if e["id"] == record_id]
    assert (added["kind"], entry["kind"], entry["agree"]) == ("add", "status", 1) and NOTE not in str(feed)
    assert entry["incident"] == INCIDENT and entry["hash"] == value and "reference" not in entry

    page = signed_in(app, keys["partner"]).get(f"/ui/records/{record_id}").get_data(as_text=True)
    assert INCIDENT in page and value in page
    for withheld in (REFERENCE, "alpha", NOTE, "History"):
        assert withheld not in page, withheld


def test_the_owner_and_an_admin_see_all_of_it(app, keys, shared):
    record_id, value = shared
    for who in ("alpha", "admin"):
        page = signed_in(app, keys[who]).get(f"/ui/records/{record_id}").get_data(as_text=True)
        for shown in (INCIDENT, REFERENCE, value, "alpha", NOTE, "History"):
            assert shown in page, (who, shown)


def test_a_consumer_key_of_the_owning_organisation_is_told_what_a_lookup_says(app, keys, shared):
    record_id, value = shared
    service = app.extensions["hashdb"].service()
    operator = service.store.get_org("operator")
    key, _ = service.create_key("alpha", "consumer", Principal(operator.id, "operator", "admin"))
    page = signed_in(app, key).get(f"/ui/records/{record_id}").get_data(as_text=True)
    assert value not in page and INCIDENT not in page and REFERENCE not in page
    # It may not retract or relabel (DELETE /v1/hashes/{id} is 403 for it): no such forms.
    assert app.test_client().delete(f"/v1/hashes/{record_id}", headers=bearer(key)).status_code == 403
    assert "/retract" not in page and "/relabel" not in page


def test_an_owner_sees_its_quarantined_record_and_the_status_filter_finds_it(app, keys, shared):
    record_id, value = shared
    service = app.extensions["hashdb"].service()
    operator = service.store.get_org("operator")
    service.quarantine(record_id, Principal(operator.id, "operator", "admin"), "reported as a news photo")
    owner = signed_in(app, keys["alpha"])
    page = owner.get(f"/ui/records/{record_id}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Quarantined:" in text and "reported as a news photo" in text and value in text
    assert "/retract" in text and "/relabel" not in text  # DELETE works for it; PATCH does not
    listed = owner.get("/ui/records?status=quarantined").get_data(as_text=True)
    assert f'href="/ui/records/{record_id}"' in listed and "No records." not in listed
    assert signed_in(app, keys["beta"]).get(f"/ui/records/{record_id}").status_code == 404  # as to the API

    retracted = owner.post(f"/ui/records/{record_id}/retract",
                           data={"csrf_token": _csrf(owner), "reason": "withdrawn"})
    assert retracted.status_code == 302
    page = owner.get(retracted.headers["Location"]).get_data(as_text=True)
    assert "Retracted:" in page and f"Record {record_id} retracted" in page
    listed = owner.get("/ui/records?status=retracted").get_data(as_text=True)
    assert f'href="/ui/records/{record_id}"' in listed


def _csrf(client) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get("/ui/").get_data(as_text=True)).group(1)


def test_the_records_list_refuses_a_consumer_in_its_own_words(app, keys):
    # A consumer was told it "may not submit hashes" on opening the records list.
    page = signed_in(app, keys["consumer"]).get("/ui/records")
    assert page.status_code == 403
    text = page.get_data(as_text=True)
    assert "may not list records" in text and "submit hashes" not in text


def test_an_action_refused_without_a_form_on_the_page_says_why(app, keys, shared):
    # A second trial: another member's relabel, and the owner's vote on its quarantined record,
    # came back as the plain record page with a 403 or 409 and no word.
    record_id, _ = shared
    other = signed_in(app, keys["beta"])
    relabel = other.post(f"/ui/records/{record_id}/relabel",
                         data={"csrf_token": _csrf(other), "labels": "attacker_manifesto"})
    assert relabel.status_code == 403
    assert re.search(r'role="alert"><strong>Error:</strong> [^<]+', relabel.get_data(as_text=True))

    service = app.extensions["hashdb"].service()
    operator = service.store.get_org("operator")
    service.quarantine(record_id, Principal(operator.id, "operator", "admin"), "member report")
    owner = signed_in(app, keys["alpha"])
    vote = owner.post(f"/ui/records/{record_id}/feedback", data={"csrf_token": _csrf(owner), "verdict": "agree"})
    assert vote.status_code == 409
    assert "takes no votes" in vote.get_data(as_text=True)


def test_a_partner_sees_a_quarantined_record_as_its_feed_does(app, keys, shared):
    # A second trial: the partner's feed carried the record's quarantine, with its hash, while
    # the console answered 404 for it.
    record_id, value = shared
    service = app.extensions["hashdb"].service()
    operator = service.store.get_org("operator")
    service.quarantine(record_id, Principal(operator.id, "operator", "admin"), "member report")
    feed = app.test_client().get("/v1/export", headers=bearer(keys["partner"])).get_json()["changes"]
    assert [e["status"] for e in feed if e["id"] == record_id][-1] == "quarantined"
    page = signed_in(app, keys["partner"]).get(f"/ui/records/{record_id}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert value in text and "Quarantined" in text and "/feedback" not in text  # no votes while held
    for withheld in (REFERENCE, "alpha", NOTE, "member report"):
        assert withheld not in text, withheld
    assert signed_in(app, keys["consumer"]).get(f"/ui/records/{record_id}").status_code == 404
