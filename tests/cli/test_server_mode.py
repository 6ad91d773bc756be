"""The CLI against a real server (`--server URL --api-key KEY`) prints exactly what local mode
prints for the same data: submit, lookup, export, retract, feedback, errors included."""

from __future__ import annotations

import random
import pytest
from click.testing import CliRunner

from hashdb.cli import cli
from hashdb.partners.client import query_item, submission_item
from hashdb.service.local import open_database
from hashdb.types import HashValue, Query, Submission
from hashdb.types import Principal
from serverproc import serving
from support import empty_database, flip, random_pdq

ROLES = {"alpha": ("alpha", "contributor"), "partner": ("delta", "partner"), "admin": ("operator", "admin")}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    db = tmp_path_factory.mktemp("served") / "db.sqlite"
    with serving(db, ROLES, workers=2) as served:
        yield served


def run(*args, env=None):
    result = CliRunner().invoke(cli, list(args), env={"HASHDB_SERVER": None, "HASHDB_API_KEY": None,
                                                      "HASHDB_DB": None, **(env or {})})
    return result.exit_code, result.stdout, result.stderr


def local(db, *args):
    if not db.exists():
        empty_database(db)
    return run(*args, "--db", str(db))


def remote(served, who, *args):
    server, keys = served
    return run(*args, "--server", server.url, "--api-key", keys[who])


@pytest.fixture(scope="module")
def data(media, served, tmp_path_factory):
    """What both modes submit: hashes, an image and a video (hashed on this side)."""
    rng = random.Random(21)
    hashes = [random_pdq(rng) for _ in range(3)]
    inputs = [f"pdq:{h}" for h in hashes] + [str(media / "astronaut.jpg"), str(media / "clip.mp4")]
    return hashes, inputs


def test_submit_prints_the_same(served, data, tmp_path):
    _, inputs = data
    args = ("submit", "--pdq-quality", "100", *inputs, "--label", "glorification", "--ref", "case-1")
    for as_json in (("--json",), ()):
        mine = local(tmp_path / "local.sqlite", *args, *as_json)
        theirs = remote(served, "alpha", *args, *as_json)
        assert mine[0] == 0 and mine == theirs


@pytest.fixture(scope="module")
def populated(served, data):
    _, inputs = data
    code, _, err = remote(served, "alpha", "submit", "--pdq-quality", "100", *inputs, "--label", "glorification")
    assert code == 0, err
    service = open_database(served[0].db)  # a submission may only name an open incident
    try:
        operator = service.store.ensure_org("operator")
        service.open_incident("=cmd|x", Principal(operator.id, operator.name, "admin"))
    finally:
        service.store.close()
    incident = f"pdq:{random_pdq(random.Random(25))}"
    code, _, err = remote(served, "alpha", "submit", "--pdq-quality", "100", incident, "--label", "glorification", "--incident", "=cmd|x")
    assert code == 0, err
    return served


def test_lookup_prints_the_same(populated, data, media):
    server, _ = populated
    hashes, _ = data
    rng = random.Random(22)
    queries = [f"pdq:{flip(hashes[0], 12, rng).upper()}", f"pdq:{random_pdq(rng)}", str(media / "astronaut_jpeg30.jpg"),
               str(media / "astronaut_rotation.jpg"), str(media / "clip_reencoded.mp4"), str(media / "chelsea.jpg")]
    for extra in (("--json",), (), ("--threshold", "pdq=8", "--no-dihedral")):
        mine = local(server.db, "lookup", *queries, *extra)
        theirs = remote(populated, "alpha", "lookup", *queries, *extra)
        assert mine[0] == 0 and mine == theirs
    assert "MATCH" in mine[1] and "no match" in mine[1]  # both kinds of answer were compared


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "te"])
def test_export_prints_the_same(populated, fmt):
    server, _ = populated
    mine = local(server.db, "export", "--format", fmt)
    theirs = remote(populated, "partner", "export", "--format", fmt)
    assert mine[0] == 0 and mine == theirs
    assert mine[1].count("\n") >= 4
    if fmt == "csv":
        assert "'=cmd|x" in mine[1]
    cursor = mine[2].strip().rsplit(" ", 1)[1]
    assert local(server.db, "export", "--since", cursor) == remote(populated, "partner", "export", "--since", cursor)


def renumber(text, record_id):
    return text.replace(f'"id": {record_id},', '"id": 1,').replace(f"{record_id}: ", "1: ")


def test_retract_and_feedback_print_the_same(served, tmp_path):
    db = tmp_path / "local.sqlite"
    server, _ = served
    fresh = random_pdq(random.Random(23))
    local(db, "submit", "--pdq-quality", "100", f"pdq:{fresh}", "--label", "glorification")
    # The server's database already holds other records: find this one's id there.
    code, out, _ = remote(served, "alpha", "submit", "--pdq-quality", "100", "--json", f"pdq:{fresh}", "--label", "glorification")
    remote_id = out.split('"ids": [')[1].split("]")[0]
    for as_json in (("--json",), ()):
        # Voted by another organisation than the one that shared it (policy.check_voter): the
        # operator's admin, an owner's view of the record in both modes.
        mine = local(db, "feedback", "1", "--agree", "--note", "looks right", "--org", "operator", *as_json)
        theirs = remote(served, "admin", "feedback", remote_id, "--agree", "--note", "looks right", *as_json)
        assert mine[0] == 0 and mine == (theirs[0], renumber(theirs[1], remote_id), theirs[2])
    mine = local(db, "retract", "1", "--reason", "mistake")
    theirs = remote(served, "alpha", "retract", remote_id, "--reason", "mistake")
    assert mine == (0, "1: retracted\n", "") and theirs == (0, f"{remote_id}: retracted\n", "")


@pytest.mark.parametrize("args", [
    ("submit", "pdq:" + "a" * 64, "--label", "memes"),  # refused by the server's taxonomy
    ("submit", "pdq:" + "0" * 64, "--label", "glorification"),  # degenerate
    ("lookup", "pdq:" + "a" * 63),  # an error line of its own; nothing is sent
    ("retract", "999999"),
])
def test_errors_print_the_same(served, tmp_path, args):
    mine = local(tmp_path / "local.sqlite", *args)
    theirs = remote(served, "admin", *args)
    assert mine[0] == theirs[0] != 0
    said = 1 if args[0] == "lookup" else 2  # a lookup reports a bad input in its output, per input
    assert mine[said] == theirs[said] and mine[said].count("\n") == 1


def test_a_submit_refused_after_its_first_request_says_how_many_went_in(served, tmp_path):
    # Over --server a submit of more than BATCH inputs is several requests, each all or nothing:
    # refused by a later one, the inputs of those before were stored, and the error says so.
    from hashdb.partners.client import BATCH

    rng = random.Random(31)
    hashes = [f"pdq:{random_pdq(rng)}" for _ in range(BATCH)]
    degenerate = "pdq:" + "0" * 64  # refused by the server's policy, not by this side
    code, _, err = remote(served, "alpha", "submit", "--pdq-quality", "100", *hashes, degenerate,
                          "--label", "glorification")
    assert code == 1 and err.count("\n") == 1
    assert err.rstrip().endswith(f"; the first {BATCH} inputs were submitted, the rest were not"), err
    code, _, err = remote(served, "alpha", "submit", "--pdq-quality", "100", degenerate, *hashes[:3],
                          "--label", "glorification")
    assert code == 1 and err.rstrip().endswith("; nothing was submitted (a batch is refused whole)"), err


def test_server_and_key_from_the_environment(served):
    server, keys = served
    code, out, err = run("lookup", "pdq:" + random_pdq(random.Random(24)),
                         env={"HASHDB_SERVER": server.url, "HASHDB_API_KEY": keys["alpha"]})
    assert code == 0 and out.endswith(": no match\n"), err


def test_server_without_a_key_is_a_usage_error(served):
    code, _, err = run("lookup", "pdq:" + "a" * 64, "--server", served[0].url)
    assert code == 2 and "--api-key" in err


def test_unreachable_server_is_one_line(tmp_path):
    code, _, err = run("lookup", "pdq:" + "a" * 64, "--server", "http://127.0.0.1:9", "--api-key", "hdb_x_y")
    assert code == 1 and err.startswith("Error: cannot reach") and err.count("\n") == 1


def test_a_revoked_key_is_refused(served, tmp_path):
    server, _ = served
    service = open_database(server.db)
    try:
        org = service.store.ensure_org("operator")
        admin = Principal(org.id, org.name, "admin")
        key, record = service.create_key("short-lived", "consumer", admin)
        assert run("lookup", "pdq:" + "a" * 64, "--server", server.url, "--api-key", key)[0] == 0
        service.revoke_key(record.id, admin)
    finally:
        service.store.close()
    code, _, err = run("lookup", "pdq:" + "a" * 64, "--server", server.url, "--api-key", key)
    assert code == 1 and "revoked" in err


def test_only_hashes_are_sent_never_names_or_media():
    value = HashValue("pdq", "ab" * 32, 90)
    assert query_item(Query("/home/me/evidence/case-7.jpg", (value,))) == {"signal": "pdq", "hash": "ab" * 32,
                                                                            "quality": 90}
    item = submission_item(Submission("/secret/name.png", ("glorification",), (value, HashValue("md5", "c" * 32))))
    assert "/secret" not in repr(item) and "input" not in item
