"""The console's record page offers an admin the ruling on a disputed record (uphold: it stands),
posts it through the same service call as the CLI, and shows the votes it overruled. In-process
(Flask test client, signed in through the sign-in form)."""

from __future__ import annotations

import re

from app_fixtures import app, keys  # noqa: F401  (the API tests' in-process fixtures)
from console_client import bearer, signed_in


def disputed_record(app, keys) -> int:
    client = app.test_client()
    body = {"items": [{"signal": "md5", "hash": "ab" * 16, "labels": ["glorification"]}]}
    record_id = client.post("/v1/hashes", json=body, headers=bearer(keys["alpha"])).get_json()["results"][0]["ids"][0]
    for who, verdict in (("beta", "disagree"), ("consumer", "false_positive")):
        voted = client.post(f"/v1/hashes/{record_id}/feedback", json={"verdict": verdict}, headers=bearer(keys[who]))
        assert voted.status_code == 200
    assert voted.get_json()["status"] == "disputed"
    return record_id


def test_an_admin_upholds_a_disputed_record_from_its_page(app, keys):
    record_id = disputed_record(app, keys)
    admin = signed_in(app, keys["admin"])
    page = admin.get(f"/ui/records/{record_id}").get_data(as_text=True)
    assert f'action="/ui/records/{record_id}/uphold"' in page
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)

    refused = admin.post(f"/ui/records/{record_id}/uphold", data={"reason": " ", "csrf_token": token})
    assert refused.status_code == 400 and "say why" in refused.get_data(as_text=True)

    done = admin.post(f"/ui/records/{record_id}/uphold", data={"reason": "reviewed: genuine", "csrf_token": token},
                      follow_redirects=True)
    text = done.get_data(as_text=True)
    assert done.status_code == 200
    assert f"Record {record_id} upheld: it is active" in text
    assert 'status-active">active' in text
    assert text.count("(overruled ") == 2
    assert "dispute.uphold" in text and "reviewed: genuine" in text  # its history, from the audit log
    assert f'action="/ui/records/{record_id}/uphold"' not in text

    # A lookup answers it active, with the votes as they were cast.
    answer = app.test_client().get(f"/v1/lookup?signal=md5&hash={'ab' * 16}", headers=bearer(keys["consumer"]))
    [match] = answer.get_json()["matches"]
    assert (match["status"], match["disagree"], match["false_positive"]) == ("active", 1, 1)


def test_the_ruling_is_not_offered_to_its_contributor(app, keys):
    record_id = disputed_record(app, keys)
    page = signed_in(app, keys["alpha"]).get(f"/ui/records/{record_id}").get_data(as_text=True)
    assert "/uphold" not in page
