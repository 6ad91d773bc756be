"""hashdb as an exchange of python-threatexchange (pytx): the real `threatexchange` CLI, in its own
process with its own state directory, loads our extension, fetches a real `hashdb serve` on a
loopback port, and matches; retractions, quarantines and relabels at the server reach it."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image
from partner_helpers import share_pdq
from serverproc import make_keys, serving
from support import random_pdq
from threatexchange.exchanges.fetch_state import AggregateSignalOpinionCategory
from threatexchange.extensions.manifest import ThreatExchangeExtensionManifest
from threatexchange.extensions.vpdq.vpdq import VPDQSignal
from threatexchange.signal_type.md5 import VideoMD5Signal
from threatexchange.signal_type.pdq.signal import PdqSignal
from threatexchange.signal_type.sha256 import VideoSHA256Signal
from threatexchange.utils import dataclass_json

from hashdb.cli import cli
from hashdb.partners.client import Client
from hashdb.partners.pytx import (
    PAGE,
    HashDBCheckpoint,
    HashDBCollabConfig,
    HashDBCredentials,
    HashDBRecord,
    HashDBSignalExchangeAPI,
)

ROOT = Path(__file__).resolve().parents[2]
ROLES = {"alpha": ("alpha", "contributor"), "partner": ("delta", "partner"), "consumer": ("gamma", "consumer")}
EXTENSION = "hashdb.partners.pytx"
TIMEOUT_S = 120


@pytest.fixture
def served(tmp_path):
    db = tmp_path / "server.sqlite"
    with serving(db, ROLES) as served:
        yield served


def hashdb(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), env={"HASHDB_DB": None, "HASHDB_SERVER": None})
    assert result.exit_code == 0, result.output
    return result.stdout


class Tx:
    """The `threatexchange` CLI with its own HOME and state directory, as a partner runs it."""

    def __init__(self, home: Path, key: str | None) -> None:
        home.mkdir(exist_ok=True)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("HASHDB_", "TX_"))}
        self.env.update(HOME=str(home), TX_STATEDIR=str(home / ".threatexchange"))
        if key is not None:
            self.env["TX_HASHDB_API_KEY"] = key

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", "from threatexchange.cli.main import main; main()", *args],
                              env=self.env, capture_output=True, text=True, timeout=TIMEOUT_S)

    def ok(self, *args: str) -> str:
        done = self(*args)
        assert done.returncode == 0, f"threatexchange {' '.join(args)}: {done.stderr[-3000:]}"
        return done.stdout

    def match(self, path: Path) -> list[str]:
        return self.ok("match", "photo", str(path)).splitlines()


def pdq_ids(server, partner_key: str) -> dict[int, str]:
    """Record id -> PDQ hex of the live PDQ records, as the partner's feed says."""
    docs, _ = Client(server.url, partner_key).export(None, 1000)
    latest = {d["id"]: d for d in docs}
    return {i: d["hash"] for i, d in latest.items() if d["signal"] == "pdq" and d["status"] == "active"}


def test_threatexchange_cli_fetches_and_matches_from_hashdb(served, media, tmp_path):
    server, keys = served
    shared = {}
    for name, label in (("chelsea.jpg", "glorification"), ("rocket.jpg", "branded_publication"),
                        ("coffee.jpg", "glorification"), ("camera.png", "graphic_violence")):
        out = hashdb("submit", "--json", "--server", server.url, "--api-key", keys["alpha"],
                     str(media / name), "--label", label)
        shared[name.split(".")[0]] = set(json.loads(out)["ids"])
    live = pdq_ids(server, keys["partner"])
    pdq_of = {name: next(i for i in ids if i in live) for name, ids in shared.items()}

    tx = Tx(tmp_path / "partner-home", keys["partner"])
    added = tx.ok("config", "extensions", "add", EXTENSION)
    assert "hashdb - HashDBSignalExchangeAPI" in added
    tx.ok("config", "collab", "edit", "hashdb", "--create", "gifct-hashdb", "--server", server.url)
    assert tx.ok("config", "collab", "list").split() == ["hashdb", "gifct-hashdb"]
    fetched = tx("fetch")
    assert fetched.returncode == 0, fetched.stderr
    # The 4 images' PDQs and the derived PDQs the feed carries beside them, but for corner-masked ones.
    docs, _ = Client(server.url, keys["partner"]).export(None, 1000)
    offered = {d["hash"] for d in docs if d["signal"] == "pdq"} | {
        x["pdq"] for d in docs for x in d.get("derived") or [] if x["via"] != "masked"}
    assert len(offered) > 4 and f"Building index for pdq with {len(offered)} signals" in fetched.stderr

    [hit] = tx.match(media / "chelsea_jpeg30.jpg")
    signal, distance, collab, category, tags, ids = hit.split()
    assert (signal, collab, category, tags) == ("pdq", "(gifct-hashdb)", "POSITIVE_CLASS", "glorification")
    assert 0 < int(distance) <= 31 and ids == f"hashdb_ids={pdq_of['chelsea']}"
    assert tx.match(media / "astronaut.jpg") == []  # never shared

    # At the server: chelsea retracted, coffee quarantined by the operator, rocket relabelled.
    alpha = Client(server.url, keys["alpha"])
    for record_id in shared["chelsea"]:
        alpha.retract(record_id, "shared by mistake")
    hashdb("quarantine", "add", str(pdq_of["coffee"]), "--reason", "spike of matches", "--db", str(server.db))
    alpha.relabel(pdq_of["rocket"], ["recruitment_instruction"])

    tx.ok("fetch")
    assert tx.match(media / "chelsea_jpeg30.jpg") == []
    assert tx.match(media / "coffee_jpeg30.jpg") == []
    # The index still answers. (pytx's PDQ index never matches when it holds a single hash,
    # pytx issue 1318: camera.png keeps two live hashes here, so this check means something.)
    [hit] = tx.match(media / "rocket_jpeg30.jpg")
    assert hit.split()[3:] == ["POSITIVE_CLASS", "recruitment_instruction", f"hashdb_ids={pdq_of['rocket']}"]

    # Released from quarantine at the server: it matches again after the next fetch.
    hashdb("quarantine", "release", str(pdq_of["coffee"]), "--db", str(server.db))
    tx.ok("fetch")
    [hit] = tx.match(media / "coffee_jpeg30.jpg")
    assert hit.endswith(f"hashdb_ids={pdq_of['coffee']}")


def test_a_centred_crop_is_found_through_pytx_as_through_hashdb(served, media, tmp_path):
    # pytx hashes the whole upload; hashdb matches that PDQ against a record's stored derived
    # hashes too (not the corner-masked ones), so the exchange offers those as more PDQs of the
    # record. The crop is cut here with Pillow, not by hashdb's code.
    server, keys = served
    for name in ("chelsea.jpg", "rocket.jpg"):  # two records: pytx issue 1318 (see above)
        hashdb("submit", "--server", server.url, "--api-key", keys["alpha"], str(media / name),
               "--label", "glorification")
    [chelsea] = [i for i, h in pdq_ids(server, keys["partner"]).items()
                 if h == PdqSignal.hash_from_bytes((media / "chelsea.jpg").read_bytes())]
    with Image.open(media / "chelsea.jpg") as image:
        width, height = image.size
        dx, dy = round(width * 0.08), round(height * 0.08)  # the middle 84 % of each side
        crop = tmp_path / "crop.jpg"
        image.crop((dx, dy, width - dx, height - dy)).save(crop, quality=90)
    whole = PdqSignal.hash_from_bytes((media / "chelsea.jpg").read_bytes())
    assert PdqSignal.compare_hash(PdqSignal.hash_from_file(crop), whole).match is False  # the gap pytx had

    found = json.loads(hashdb("lookup", "--json", "--server", server.url, "--api-key", keys["consumer"], str(crop)))
    assert [(m["id"], m.get("via")) for m in found["matches"] if m["signal"] == "pdq"] == [(chelsea, "cropped")]
    tx = Tx(tmp_path / "partner-home", keys["partner"])
    tx.ok("config", "extensions", "add", EXTENSION)
    tx.ok("config", "collab", "edit", "hashdb", "--create", "gifct-hashdb", "--server", server.url)
    tx.ok("fetch")
    hits = tx.match(crop)
    assert hits and all(h.split()[3:] == ["POSITIVE_CLASS", "glorification", f"hashdb_ids={chelsea}",
                                          f"hashdb_via={chelsea}:cropped"] for h in hits), hits
    assert tx.match(media / "astronaut.jpg") == []
    # A corner-masked hash is not offered: whole against masked is not hashdb's rule.
    api = api_for(server, keys["partner"])
    offered = signals(api, merged(api, api.fetch_iter([PdqSignal], None)))["pdq"]
    assert {via for meta in offered.values() for via in meta.vias.values()} <= {"cropped", "trimmed", "content",
                                                                               "deskewed"}
    assert any(meta.vias for meta in offered.values())


def test_a_refused_or_missing_key_is_a_clear_error(served, tmp_path):
    server, keys = served
    # pytx's fetch reports a failed collaboration in one line and logs the reason with -v.
    for name, key, expected in (("consumer", keys["consumer"], "refused the key"),
                                ("missing", None, "populating an environment variable called TX_HASHDB_API_KEY")):
        tx = Tx(tmp_path / name, key)
        tx.ok("config", "extensions", "add", EXTENSION)
        tx.ok("config", "collab", "edit", "hashdb", "--create", "hashdb", "--server", server.url)
        done = tx("-v", "fetch")
        assert done.returncode != 0
        assert expected in done.stderr, done.stderr[-2000:]


# The exchange as a library (how HMA drives it), against the same real server ---------------


def api_for(server, key: str, page_size: int = PAGE) -> HashDBSignalExchangeAPI:
    collab = HashDBCollabConfig(name="hashdb", server=server.url)
    return HashDBSignalExchangeAPI.for_collab(collab, HashDBCredentials(key)) if page_size == PAGE else \
        HashDBSignalExchangeAPI(collab, Client(server.url, key), page_size)


def merged(api: HashDBSignalExchangeAPI, deltas) -> dict:
    state: dict = {}
    for delta in deltas:
        api.naive_fetch_merge(state, delta.updates)
    return state


def signals(api: HashDBSignalExchangeAPI, state: dict, types=(PdqSignal,)) -> dict:
    by_type = api.naive_convert_to_signal_type(list(types), api.collab, state)
    return {s.get_name(): metas for s, metas in by_type.items()}


def test_fetch_pages_and_resumes_from_its_checkpoint(served):
    server, keys = served
    rng = random.Random(13)
    hashes = [random_pdq(rng) for _ in range(7)]
    ids = [r["ids"][0] for r in Client(server.url, keys["alpha"]).submit(
        [{"signal": "pdq", "hash": h, "quality": 100, "labels": ["glorification"]} for h in hashes])]

    api = api_for(server, keys["partner"], page_size=3)
    first = next(api.fetch_iter([PdqSignal], None))  # then abandoned, as an interrupted fetch is
    assert sorted(first.updates) == [str(i) for i in ids[:3]]
    rest = list(api_for(server, keys["partner"], page_size=3).fetch_iter([PdqSignal], first.checkpoint))
    assert [sorted(d.updates) for d in rest] == [[str(i) for i in ids[3:6]], [str(ids[6])]]
    state = merged(api, [first, *rest])
    assert sorted(signals(api, state)["pdq"]) == sorted(hashes)
    assert merged(api, api_for(server, keys["partner"]).fetch_iter([PdqSignal], None)) == state

    # Caught up: the next fetch from the last checkpoint brings only what changed since.
    Client(server.url, keys["alpha"]).retract(ids[0])
    [delta] = list(api.fetch_iter([PdqSignal], rest[-1].checkpoint))
    assert delta.updates == {str(ids[0]): None}
    api.naive_fetch_merge(state, delta.updates)
    assert sorted(signals(api, state)["pdq"]) == sorted(hashes[1:])
    assert delta.checkpoint.get_progress_timestamp() >= rest[-1].checkpoint.get_progress_timestamp()
    [empty] = list(api.fetch_iter([PdqSignal], delta.checkpoint))
    assert empty.updates == {} and empty.checkpoint.cursor == delta.checkpoint.cursor


def test_one_hash_from_several_members_and_a_dispute_are_pytx_opinions(served, tmp_path):
    server, keys = served
    more = make_keys(server.db, {"beta": ("beta", "contributor"), "epsilon": ("epsilon", "consumer")})
    pdq = random_pdq(random.Random(5))
    a = share_pdq(server.url, keys["alpha"], pdq)
    b = share_pdq(server.url, more["beta"][0], pdq, "attacker_manifesto")
    api = api_for(server, keys["partner"])
    [meta] = signals(api, merged(api, api.fetch_iter([PdqSignal], None)))["pdq"].values()
    agg = meta.get_as_aggregate_opinion()
    assert agg.category == AggregateSignalOpinionCategory.POSITIVE_CLASS
    assert agg.tags == {"glorification", "attacker_manifesto"}
    assert sorted(o.record_id for o in meta.get_as_opinions()) == sorted(a + b)

    # Two members disagree with alpha's record: disputed at the server, DISPUTED in pytx.
    for voter in (keys["consumer"], more["epsilon"][0]):
        Client(server.url, voter).feedback(a[0], "disagree")
    [meta] = signals(api, merged(api, api.fetch_iter([PdqSignal], None)))["pdq"].values()
    assert meta.get_as_aggregate_opinion().category == AggregateSignalOpinionCategory.DISPUTED
    assert str(meta).startswith("DISPUTED ")


def test_video_records_become_pytx_video_signals(served, media):
    server, keys = served
    hashdb("submit", "--server", server.url, "--api-key", keys["alpha"], str(media / "clip.mp4"),
           str(media / "chelsea.jpg"), "--label", "attacker_manifesto")
    api = api_for(server, keys["partner"])
    state = merged(api, api.fetch_iter([], None))
    got = signals(api, state, (PdqSignal, VideoMD5Signal, VideoSHA256Signal, VPDQSignal))
    data = (media / "clip.mp4").read_bytes()
    # Exact hashes of the video file, computed here independently; the image's md5 and sha256
    # are not offered (pytx's md5/sha256 types are for video).
    assert list(got["video_md5"]) == [hashlib.md5(data).hexdigest()]
    assert list(got["video_sha256"]) == [hashlib.sha256(data).hexdigest()]
    # The image's PDQ, as pytx computes it, and its centred crops (see the crop test above).
    image_pdq = PdqSignal.hash_from_bytes((media / "chelsea.jpg").read_bytes())
    assert image_pdq in got["pdq"]
    assert {via for meta in got["pdq"].values() for via in meta.vias.values()} == {"cropped"}
    assert not got["pdq"][image_pdq].vias
    [vpdq_signal] = got["vpdq"]
    VPDQSignal.validate_signal_str(vpdq_signal)
    # pytx's own vPDQ hash of a re-encoded copy matches what it fetched from us, by pytx's rule.
    query = VPDQSignal.hash_from_file(media / "clip_reencoded.mp4")
    assert VPDQSignal.compare_hash(query, vpdq_signal).match
    assert not VPDQSignal.compare_hash(VPDQSignal.hash_from_file(media / "other.mp4"), vpdq_signal).match


def test_what_hma_stores_round_trips_through_pytx_dataclass_json(served):
    # HMA keeps an exchange's credentials, config and checkpoint as JSON through pytx's
    # dataclass_json, and calls for_collab(config, credentials): the same path, without HMA.
    server, keys = served
    credentials = dataclass_json.dataclass_load_dict({"api_key": keys["partner"]}, HashDBCredentials)
    config = dataclass_json.dataclass_load_dict(
        {"name": "HASHDB_GIFCT", "api": "hashdb", "enabled": True, "server": server.url}, HashDBCollabConfig)
    api = HashDBSignalExchangeAPI.for_collab(config, credentials)
    share_pdq(server.url, keys["alpha"], random_pdq(random.Random(8)), quality=100)
    [delta] = list(api.fetch_iter([PdqSignal], None))
    stored = dataclass_json.dataclass_dump_dict(delta.checkpoint)
    assert dataclass_json.dataclass_load_dict(stored, HashDBCheckpoint) == delta.checkpoint
    assert list(api.fetch_iter([PdqSignal], delta.checkpoint))[0].updates == {}
    # HMA converts one fetched record at a time, keyed by str(key).
    [(key, record)] = delta.updates.items()
    [meta] = HashDBSignalExchangeAPI.naive_convert_to_signal_type([PdqSignal], config, {key: record})[PdqSignal].values()
    assert [o.record_id for o in meta.get_as_opinions()] == [int(key)]
    # A fetched record as pytx stores it; one stored before records carried derived hashes loads too.
    with_derived = dataclasses.replace(record, derived={"ab" * 32: "cropped"})
    assert dataclass_json.dataclass_load_dict(dataclass_json.dataclass_dump_dict(with_derived),
                                              HashDBRecord) == with_derived
    older = {k: v for k, v in dataclass_json.dataclass_dump_dict(record).items() if k != "derived"}
    assert dataclass_json.dataclass_load_dict(older, HashDBRecord) == dataclasses.replace(record, derived={})


def test_hashdb_help_and_the_readme_name_the_extension_pytx_loads():
    help_text = " ".join(hashdb("--help").split())
    assert f"threatexchange config extensions add {EXTENSION}" in help_text
    assert f"threatexchange config extensions add {EXTENSION}\n" in (ROOT / "README.md").read_text()
    manifest = ThreatExchangeExtensionManifest.load_from_module_name(EXTENSION)
    assert [api.get_name() for api in manifest.apis] == ["hashdb"]
