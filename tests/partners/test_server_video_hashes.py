"""pytx's video_md5 / video_sha256 lines submitted through a real `hashdb serve` are stored as a
video's md5 and sha256, as `hashdb submit --db` stores them: so they reach partners in the te
feed, and the real `threatexchange` CLI fetches them from our exchange and matches the video."""

from __future__ import annotations

import hashlib
import json

import pytest
from serverproc import serving
from test_pytx_exchange import EXTENSION, ROLES, Tx, hashdb

from hashdb.partners.client import Client


@pytest.fixture
def served(tmp_path):
    with serving(tmp_path / "server.sqlite", ROLES) as served:
        yield served


def test_pytx_video_lines_submitted_to_a_server_reach_partners_as_video(served, media, tmp_path):
    server, keys = served
    video = media / "other.mp4"
    data = video.read_bytes()
    md5, sha256 = hashlib.md5(data).hexdigest(), hashlib.sha256(data).hexdigest()
    # What a pytx user has: `threatexchange hash video` lines (its own CLI, without vPDQ).
    tx = Tx(tmp_path / "partner-home", keys["partner"])
    lines = tx.ok("hash", "video", str(video))
    assert lines.split() == ["video_md5", md5, "video_sha256", sha256]
    te = tmp_path / "other.txt"
    te.write_text(lines)

    out = hashdb("submit", "--json", str(te), "--label", "attacker_manifesto", "--server", server.url,
                 "--api-key", keys["alpha"])
    assert [json.loads(line)["duplicate"] for line in out.splitlines()] == [False, False]
    feed, _ = Client(server.url, keys["partner"]).export(None, 100)
    assert {(d["signal"], d["hash"], d["media_type"]) for d in feed} == {("md5", md5, "video"),
                                                                         ("sha256", sha256, "video")}
    # The te feed as local mode writes it for the same lines.
    served_te = hashdb("export", "--format", "te", "--server", server.url, "--api-key", keys["partner"])
    assert sorted(served_te.splitlines()) == [f"video_md5 {md5}", f"video_sha256 {sha256}"]
    local = str(tmp_path / "local.sqlite")
    hashdb("submit", str(te), "--label", "attacker_manifesto", "--db", local)
    assert sorted(hashdb("export", "--format", "te", "--db", local).splitlines()) == sorted(served_te.splitlines())

    # A partner's pytx fetches them from our exchange and matches the video file by them.
    tx.ok("config", "extensions", "add", EXTENSION)
    tx.ok("config", "collab", "edit", "hashdb", "--create", "gifct-hashdb", "--server", server.url)
    tx.ok("fetch")
    hits = tx.ok("match", "video", str(video)).splitlines()
    assert sorted(h.split()[0] for h in hits) == ["video_md5", "video_sha256"]
    assert all("attacker_manifesto" in h for h in hits)
    assert tx.ok("match", "video", str(media / "clip.mp4")) == ""


def test_a_submitted_item_says_its_media_type_or_is_refused(served):
    server, keys = served
    md5 = "ab" * 16
    base = {"signal": "md5", "hash": md5, "labels": ["glorification"]}
    for bad, why in (({**base, "media_type": "audio"}, "items[0].media_type must be image or video"),
                     ({**base, "media_type": ["video"]}, "items[0].media_type must be image or video"),
                     ({"frames": [{"pdq": "f" * 64, "quality": 90}], "labels": ["glorification"],
                       "media_type": "image"}, "items[0].media_type is image, but frames and tmk are a video's")):
        reply = server.request("POST", "/v1/hashes", {"items": [bad]}, key=keys["alpha"])
        assert reply.status == 400, reply.body
        assert reply.json()["error"]["message"].startswith(why)
    # A lookup matches by the hash alone: the field is the submission's, not the query's.
    reply = server.request("POST", "/v1/lookup", {"items": [{"signal": "md5", "hash": md5, "media_type": "video"}]},
                           key=keys["consumer"])
    assert reply.status == 400 and "media_type" in reply.json()["error"]["message"]

    # Said of a file's several hashes too (a `hashdb hash --json` line of a video without frames).
    reply = server.request("POST", "/v1/hashes", {"items": [
        {"hashes": [{"signal": "md5", "hash": md5}, {"signal": "sha256", "hash": "cd" * 32}],
         "labels": ["glorification"], "media_type": "video"}]}, key=keys["alpha"])
    assert reply.status == 201, reply.body
    feed, _ = Client(server.url, keys["partner"]).export(None, 100)
    assert {d["media_type"] for d in feed} == {"video"}
    # One record per hash and member: the same md5 again, said to be an image, is a duplicate.
    reply = server.request("POST", "/v1/hashes", {"items": [{**base, "media_type": "image"}]}, key=keys["alpha"])
    assert reply.status == 200 and reply.json()["results"][0]["duplicate"] is True
