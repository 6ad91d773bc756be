"""A partner's mirror finds crops through the source's keypoints, end to end with a real server:
a contributor submits an image, `hashdb sync --keypoints` mirrors it with its keypoints from a
server that shares them, and a lookup of a crop against the mirror matches it as 'aligned'; a
mirror synced without --keypoints does not, and a later `sync --keypoints` into it says that the
records it holds will not get theirs. A server that does not share them refuses to (403), and
its feed is as before."""

from __future__ import annotations

import json

from click.testing import CliRunner

from hashdb.cli import cli
from hashdb.hashing import keypoints
from hashdb.service.local import open_database
from serverproc import serving

ROLES = {"alpha": ("alpha", "contributor"), "partner": ("delta", "partner")}
CLEAR = {"HASHDB_SERVER": None, "HASHDB_API_KEY": None, "HASHDB_DB": None, "HASHDB_SHARE_KEYPOINTS": None}


def hashdb(*args):
    result = CliRunner().invoke(cli, list(args), env=CLEAR)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def lines(result) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def off_centre_crop(media, tmp_path):
    from PIL import Image

    photo = Image.open(media / "chelsea.jpg").convert("RGB")
    width, height = photo.size
    crop = tmp_path / "crop.jpg"  # 80 % of each side, from the bottom left
    photo.crop((0, height - round(0.8 * height), round(0.8 * width), height)).save(crop, quality=90)
    return crop


def test_a_mirror_synced_with_keypoints_finds_a_crop_and_one_without_does_not(tmp_path, media):
    crop = off_centre_crop(media, tmp_path)
    with serving(tmp_path / "source.sqlite", ROLES, env={"HASHDB_SHARE_KEYPOINTS": "1"}) as (server, keys):
        submitted = hashdb("submit", str(media / "chelsea.jpg"), "--label", "glorification", "--json",
                           "--server", server.url, "--api-key", keys["alpha"])
        assert submitted.exit_code == 0, submitted.output
        [shared] = lines(submitted)
        for name, extra in (("kp.sqlite", ["--keypoints"]), ("plain.sqlite", [])):
            synced = hashdb("sync", "--from", server.url, "--api-key", keys["partner"], "--db",
                            str(tmp_path / name), *extra)
            assert synced.exit_code == 0, synced.output
    [found] = lines(hashdb("lookup", "--db", str(tmp_path / "kp.sqlite"), "--json", str(crop)))
    [match] = found["matches"]
    # A mirror's match names the source's record.
    assert match["via"] == "aligned" and match["distance"] <= keypoints.ALIGNED_RADIUS
    assert match["id"] in shared["ids"] and match["signal"] == "pdq"
    [missed] = lines(hashdb("lookup", "--db", str(tmp_path / "plain.sqlite"), "--json", str(crop)))
    assert not missed["matched"]
    # Both mirrors hold the whole picture.
    for name in ("kp.sqlite", "plain.sqlite"):
        [whole] = lines(hashdb("lookup", "--db", str(tmp_path / name), "--json", str(media / "chelsea.jpg")))
        assert whole["matched"]


def test_a_server_that_does_not_share_keypoints_refuses_them_and_its_feed_is_unchanged(tmp_path, media):
    with serving(tmp_path / "source.sqlite", ROLES) as (server, keys):
        assert hashdb("submit", str(media / "chelsea.jpg"), "--label", "glorification",
                      "--server", server.url, "--api-key", keys["alpha"]).exit_code == 0
        refused = server.request("GET", "/v1/export?keypoints=true", key=keys["partner"])
        assert refused.status == 403 and refused.json()["error"]["code"] == "not_shared"
        plain = server.request("GET", "/v1/export", key=keys["partner"])
        assert plain.status == 200 and plain.json()["changes"] and b"keypoints" not in plain.body
        mirror_db = tmp_path / "mirror.sqlite"
        synced = hashdb("sync", "--from", server.url, "--api-key", keys["partner"], "--db", str(mirror_db),
                        "--keypoints")
        assert synced.exit_code == 1 and synced.output.count("\n") == 1, synced.output
        assert "HTTP 403" in synced.output and "--keypoints" in synced.output
        exported = hashdb("export", "--server", server.url, "--api-key", keys["partner"], "--keypoints")
        assert exported.exit_code == 1 and "HASHDB_SHARE_KEYPOINTS" in exported.output
        # The same sync without --keypoints mirrors the records as before.
        assert hashdb("sync", "--from", server.url, "--api-key", keys["partner"], "--db",
                      str(mirror_db)).exit_code == 0


def warnings(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("Warning:")]


def test_sync_warns_where_records_go_without_the_keypoints_the_mirror_wants(tmp_path, media):
    with serving(tmp_path / "source.sqlite", ROLES, env={"HASHDB_SHARE_KEYPOINTS": "1"}) as (server, keys):
        assert hashdb("submit", str(media / "chelsea.jpg"), "--label", "glorification",
                      "--server", server.url, "--api-key", keys["alpha"]).exit_code == 0

        def sync(name: str, *extra: str):
            result = hashdb("sync", "--from", server.url, "--api-key", keys["partner"], "--db",
                            str(tmp_path / name), *extra)
            assert result.exit_code == 0, result.output
            return result

        # A fresh mirror, and then one that took keypoints before: nothing to warn of.
        assert warnings(sync("kp.sqlite", "--keypoints")) == []
        assert warnings(sync("kp.sqlite", "--keypoints")) == []
        assert warnings(sync("plain.sqlite")) == []
        assert warnings(sync("plain.sqlite")) == []
        [warning] = warnings(sync("plain.sqlite", "--keypoints"))
        # Then the flag left out where keypoints were taken before (a scheduled line without it).
        [dropped] = warnings(sync("kp.sqlite"))
    assert "no keypoints" in warning and "import into a new --db" in warning, warning
    assert "took keypoints" in dropped and "sync with --keypoints" in dropped, dropped
    # What it says: the record mirrored before is not sent again, so it has none still.
    for name, held in (("plain.sqlite", 0), ("kp.sqlite", 1)):
        service = open_database(tmp_path / name)
        try:
            assert len(service.store.keypoint_rows(0, 10)) == held
        finally:
            service.store.close()
