"""End to end through a real server: re-uploads framed by a border, a caption band or a phone
screenshot match their originals, the answer says through which derived hash, the export feed
carries the derived hashes, and a retraction takes them away."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from hashdb.cli import cli
from hashdb.cli.common import hashing_service
from serverproc import serving

ROLES = {"alpha": ("alpha", "contributor"), "partner": ("delta", "partner")}
PAIRS = {"coffee_border.jpg": "coffee.jpg", "chelsea_caption.jpg": "chelsea.jpg",
         "astronaut_screenshot.jpg": "astronaut.jpg"}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    db = tmp_path_factory.mktemp("derived") / "db.sqlite"
    with serving(db, ROLES) as served:
        yield served


def remote(served, who, *args, as_json=("--json",)):
    server, keys = served
    result = CliRunner().invoke(cli, [*args, "--server", server.url, "--api-key", keys[who], *as_json],
                                env={"HASHDB_SERVER": None, "HASHDB_API_KEY": None, "HASHDB_DB": None})
    assert result.exit_code == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_framed_reuploads_match_their_originals_through_the_server(served, media):
    originals = sorted(set(PAIRS.values()))
    submitted = remote(served, "alpha", "submit", *(str(media / name) for name in originals),
                       "--label", "glorification")
    ids = {doc["input"].rsplit("/", 1)[-1]: set(doc["ids"]) for doc in submitted}
    feed = remote(served, "partner", "export", "--format", "jsonl", as_json=())
    pdq_ids = {e["id"] for e in feed if e["signal"] == "pdq" and e["kind"] == "add"}
    assert all(e.get("derived") is None for e in feed if e["signal"] != "pdq")

    answers = remote(served, "alpha", "lookup", *(str(media / name) for name in PAIRS))
    for name, doc in zip(PAIRS, answers):
        original = PAIRS[name]
        assert doc["matched"], name
        found = [m for m in doc["matches"] if m["id"] in ids[original] & pdq_ids]
        assert found and found[0]["via"] in ("trimmed", "content") and found[0]["distance"] <= 31, (name, doc)
        # Only its own original: no other known image is named.
        assert all(m["id"] in ids[original] for m in doc["matches"]), (name, doc)

    # Retracting the original's records takes its derived hashes out of matching too.
    for record_id in sorted(ids["chelsea.jpg"]):
        remote(served, "alpha", "retract", str(record_id))
    [after] = remote(served, "alpha", "lookup", str(media / "chelsea_caption.jpg"))
    assert not after["matched"]


def test_the_api_takes_derived_hashes_and_refuses_bad_ones(served, media):
    server, keys = served
    remote(served, "alpha", "submit", str(media / "coffee.jpg"), "--label", "glorification")
    hashed = hashing_service().hash_file(media / "coffee_border.jpg", dihedral=True)
    whole = [{"signal": v.signal, "hash": v.hex} for v in hashed.hashes if v.signal == "pdq"]
    derived = [{"via": d.via, "pdq": d.hash.hex, "quality": d.hash.quality} for d in hashed.derived]
    assert derived
    plain = server.request("POST", "/v1/lookup", {"items": [{"hashes": whole}]}, key=keys["alpha"]).json()
    assert not plain["results"][0]["matched"]
    reply = server.request("POST", "/v1/lookup", {"items": [{"hashes": whole, "derived": derived}]},
                           key=keys["alpha"])
    assert reply.status == 200
    [match] = [m for m in reply.json()["results"][0]["matches"] if m["signal"] == "pdq"]
    assert match["via"] in ("trimmed", "content")
    bad = server.request("POST", "/v1/lookup", {"items": [{"hashes": whole, "derived": [
        {"via": "elsewhere", "pdq": derived[0]["pdq"]}]}]}, key=keys["alpha"])
    assert bad.status == 400 and "via" in bad.json()["error"]["message"]
