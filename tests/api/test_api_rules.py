"""Rules that must hold for every key, on the Flask test client over a real SQLite file: who may
change a record, what an id or a cursor may look like, what an idempotency key binds, what an
unknown incident tells a contributor."""

from __future__ import annotations

import pytest

from serverproc import make_keys
from support import random_pdq

import random


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def shared(client, key: str, hex_value: str = "ab" * 16) -> int:
    body = {"items": [{"signal": "md5", "hash": hex_value, "labels": ["glorification"]}]}
    reply = client.post("/v1/hashes", json=body, headers=auth(key))
    assert reply.status_code == 201, reply.data
    return int(reply.get_json()["results"][0]["ids"][0])


@pytest.mark.parametrize("role", ["consumer", "partner"])
def test_read_only_keys_of_the_owning_organisation_cannot_retract_or_relabel(app, client, keys, role):
    # Issue item 3: the ownership check ignored the role.
    [(reader, _)] = make_keys(app.config["DB"], {"reader": ("alpha", role)}).values()
    record_id = shared(client, keys["alpha"])
    relabel = client.patch(f"/v1/hashes/{record_id}", json={"labels": ["graphic_violence"]}, headers=auth(reader))
    assert relabel.status_code == 403 and relabel.get_json()["error"]["code"] == "forbidden"
    retract = client.delete(f"/v1/hashes/{record_id}", headers=auth(reader))
    assert retract.status_code == 403 and retract.get_json()["error"]["code"] == "forbidden"
    # Nothing changed; the contributor key of the same organisation still may.
    ok = client.delete(f"/v1/hashes/{record_id}", headers=auth(keys["alpha"]))
    assert ok.status_code == 200 and ok.get_json()["status"] == "retracted"
    assert ok.get_json()["labels"] == ["glorification"]


@pytest.mark.parametrize("seq", [2**63, 2**64, 10**30])
def test_a_cursor_past_the_largest_sequence_is_400(client, keys, seq):
    # Issue item 8: v1:9223372036854775808 overflowed SQLite's integer binding (500).
    import base64

    cursor = base64.urlsafe_b64encode(f"v1:{seq}".encode()).decode().rstrip("=")
    reply = client.get(f"/v1/export?since={cursor}", headers=auth(keys["partner"]))
    assert reply.status_code == 400, reply.data
    assert reply.get_json()["error"]["code"] == "invalid_input"
    # The largest sequence binds, and is refused as past this feed's end (no server issued it).
    largest = base64.urlsafe_b64encode(f"v1:{2**63 - 1}".encode()).decode().rstrip("=")
    reply = client.get(f"/v1/export?since={largest}", headers=auth(keys["partner"]))
    assert reply.status_code == 400 and "past the end of this feed" in reply.get_json()["error"]["message"]


@pytest.mark.parametrize("digits", ["\uff14\uff18", "\u0664\u0668", "\u06f4\u06f8", "\u096a\u096e"])
def test_record_ids_in_paths_are_ascii_digits_only(client, keys, digits):
    # Issue item 9: full-width and Arabic-Indic digits addressed record 48.
    ids = [shared(client, keys["alpha"], f"{n:032x}") for n in range(1, 49)]
    assert ids[-1] == 48
    for reply in (client.delete(f"/v1/hashes/{digits}", headers=auth(keys["alpha"])),
                  client.patch(f"/v1/hashes/{digits}", json={"labels": ["graphic_violence"]},
                               headers=auth(keys["alpha"])),
                  client.post(f"/v1/hashes/{digits}/feedback", json={"verdict": "agree"},
                              headers=auth(keys["beta"])),
                  client.get(f"/v1/incidents/{digits}", headers=auth(keys["admin"]))):
        assert reply.status_code == 404, reply.data
    record = client.patch("/v1/hashes/48", json={"labels": ["glorification"]}, headers=auth(keys["alpha"]))
    assert record.get_json()["status"] == "active"


def test_an_idempotency_key_replayed_with_another_quality_is_409(client, keys):
    # Issue item 10: the same hash with another quality replayed the old 201.
    pdq = random_pdq(random.Random(10))
    first = {"signal": "pdq", "hash": pdq, "quality": 80, "labels": ["glorification"]}
    headers = {**auth(keys["alpha"]), "Idempotency-Key": "retry-1"}
    assert client.post("/v1/hashes", json={"items": [first]}, headers=headers).status_code == 201
    reply = client.post("/v1/hashes", json={"items": [{**first, "quality": 90}]}, headers=headers)
    assert reply.status_code == 409, reply.data
    assert reply.get_json()["error"]["code"] == "conflict"
    # The same request again is still the replay it always was.
    again = client.post("/v1/hashes", json={"items": [first]}, headers=headers)
    assert again.status_code == 201


def test_an_idempotency_key_replayed_with_another_media_type_is_a_conflict(app):
    # Issue item 10: the same file hash said to be an image, then a video, replayed the first answer.
    from hashdb.errors import Conflict
    from hashdb.types import HashValue, Principal, Submission

    service = app.extensions["hashdb"].service()
    org = service.store.ensure_org("alpha")
    actor = Principal(org.id, org.name, "contributor")
    md5 = HashValue("md5", "ef" * 16)
    service.submit([Submission("clip", ("glorification",), (md5,), media_type="image")], actor, "k")
    with pytest.raises(Conflict):
        service.submit([Submission("clip", ("glorification",), (md5,), media_type="video")], actor, "k")


def test_an_unknown_incident_does_not_list_the_open_ones(client, keys):
    # Issue item 11: a contributor naming an unknown incident was told every open incident's name.
    opened = client.post("/v1/incidents", json={"name": "secret-operation-x"}, headers=auth(keys["admin"]))
    assert opened.status_code == 201
    body = {"items": [{"signal": "md5", "hash": "cd" * 16, "labels": ["glorification"], "incident": "nope"}]}
    reply = client.post("/v1/hashes", json=body, headers=auth(keys["alpha"]))
    # Well formed, content refused: 422 like an unknown label, not 400 like a malformed body.
    assert reply.status_code == 422
    assert reply.get_json()["error"]["code"] == "unknown_incident"
    message = reply.get_json()["error"]["message"]
    assert "'nope'" in message and "secret-operation-x" not in message


def test_a_closed_incident_is_refused_like_an_unknown_one(app, client, keys):
    opened = client.post("/v1/incidents", json={"name": "over-now"}, headers=auth(keys["admin"]))
    assert opened.status_code == 201
    service = app.extensions["hashdb"].service()
    service.close_incident(opened.get_json()["id"], service.authenticate(keys["admin"]))
    body = {"items": [{"signal": "md5", "hash": "ce" * 16, "labels": ["glorification"], "incident": "over-now"}]}
    reply = client.post("/v1/hashes", json=body, headers=auth(keys["alpha"]))
    assert reply.status_code == 422
    assert reply.get_json()["error"]["code"] == "unknown_incident"
    message = reply.get_json()["error"]["message"]
    # Named by its item's input, in the API's words (no CLI flag).
    assert message.startswith("md5:" + "ce" * 16 + ": ") and "closed" in message and "--" not in message
    assert client.get("/v1/lookup?signal=md5&hash=" + "ce" * 16, headers=auth(keys["alpha"])).get_json()["matched"] is False


@pytest.mark.parametrize("name", ["attack\x1b[2J", "att\x85ack", "attack\x9b31m", "at\u202etack", "a\u200bb",
                                  "line\nbreak"])
def test_incident_names_refuse_control_characters(client, keys, name):
    # Issue item 11: ESC and C1 control characters were accepted in incident names.
    reply = client.post("/v1/incidents", json={"name": name}, headers=auth(keys["admin"]))
    assert reply.status_code == 400, reply.data
    assert "U+" in reply.get_json()["error"]["message"]


def test_a_derived_hash_left_out_is_said(client, keys):
    # A new user's trial: a degenerate derived PDQ was dropped with a 201 and no word.
    whole = random_pdq(random.Random(5))
    body = {"items": [{"hashes": [{"signal": "pdq", "hash": whole, "quality": 90}], "labels": ["glorification"],
                       "derived": [{"via": "trimmed", "pdq": "0" * 64, "quality": 90},
                                   {"via": "content", "pdq": random_pdq(random.Random(6)), "quality": 90}]}]}
    reply = client.post("/v1/hashes", json=body, headers=auth(keys["alpha"]))
    assert reply.status_code == 201, reply.data
    skipped = reply.get_json()["results"][0]["skipped"]
    assert len(skipped) == 1 and skipped[0].startswith("derived trimmed hash not shared: "), skipped


def test_derived_hashes_without_a_pdq_to_go_with_are_said(client, keys):
    body = {"items": [{"hashes": [{"signal": "md5", "hash": "ef" * 16}], "labels": ["glorification"],
                       "derived": [{"via": "content", "pdq": random_pdq(random.Random(7)), "quality": 90}]}]}
    reply = client.post("/v1/hashes", json=body, headers=auth(keys["alpha"]))
    assert reply.status_code == 201, reply.data
    assert any("derived hashes not shared" in note for note in reply.get_json()["results"][0]["skipped"])


def test_an_owner_voting_on_its_quarantined_record_is_told_why(app, client, keys):
    # A second trial: the owner, who sees the record in the console and may retract it, was
    # told "no hash record with id N"; any other member still is, so as not to learn it exists.
    record_id = shared(client, keys["alpha"], "ad" * 16)
    service = app.extensions["hashdb"].service()
    service.quarantine(record_id, service.authenticate(keys["admin"]), "member report")
    mine = client.post(f"/v1/hashes/{record_id}/feedback", json={"verdict": "agree"}, headers=auth(keys["alpha"]))
    assert mine.status_code == 409 and "quarantined" in mine.get_json()["error"]["message"]
    theirs = client.post(f"/v1/hashes/{record_id}/feedback", json={"verdict": "agree"}, headers=auth(keys["beta"]))
    assert theirs.status_code == 404
