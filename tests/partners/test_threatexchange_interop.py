"""Interoperability with python-threatexchange (pytx), the client ThreatExchange members and HMA
run: the same PDQ for the same file, our TE export read and matched by pytx's own exchange
and index, and pytx's hash lines imported by us."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image
from threatexchange.exchanges.impl.file_api import FileCollaborationConfig, LocalFileSignalExchangeAPI
from threatexchange.extensions.vpdq.vpdq import VPDQSignal
from threatexchange.extensions.vpdq.vpdq_util import json_to_vpdq
from threatexchange.signal_type.md5 import VideoMD5Signal
from threatexchange.signal_type.pdq.pdq_hasher import pdq_from_bytes
from threatexchange.signal_type.pdq.signal import PdqSignal
from threatexchange.signal_type.sha256 import VideoSHA256Signal

from hashdb.cli import cli, hashing_service
from hashdb.hashing.pdq import PdqSignal as OurPdq

MEDIA = Path(__file__).resolve().parents[2] / "fixtures" / "media"
IMAGES = sorted(p.name for p in MEDIA.iterdir()
                if p.suffix in (".jpg", ".png", ".gif") and "_corrupt" not in p.name)


def our_pdq(path: Path) -> tuple[str, int | None]:
    hashes = hashing_service().hash_file(path)
    value = next(v for v in hashes.hashes if v.signal == "pdq")
    return value.hex, value.quality


def pytx_pdq(data: bytes) -> tuple[str, int]:
    # From bytes, not pdq_from_file: that one leaves the file open (a ResourceWarning here).
    return pdq_from_bytes(data)


def as_rgb_png(path: Path) -> bytes:
    with Image.open(path) as image:
        out = io.BytesIO()
        image.convert("RGB").save(out, "PNG")
    return out.getvalue()


def mode_of(path: Path) -> str:
    with Image.open(path) as image:
        return image.mode


def test_the_fixtures_cover_each_case():
    modes = {mode_of(MEDIA / name) for name in IMAGES}
    assert {"RGB", "L", "P", "CMYK", "RGBA"} <= modes


@pytest.mark.parametrize("name", IMAGES)
def test_pdq_equals_python_threatexchange(name):
    path = MEDIA / name
    ours = our_pdq(path)
    theirs = pytx_pdq(path.read_bytes())
    mode = mode_of(path)
    if mode == "P":
        # Known divergence: pytx hands np.asarray(image) to pdqhash without converting, and a
        # palette image's array holds palette indices, not colours; pdqhash then hashes the
        # indices as grey levels. We hash the colours, so the hashes are far apart (no match
        # even at 31 bits). Shown to be that alone: pytx on the same pixels as RGB gives ours.
        assert OurPdq.distance(ours[0], theirs[0]) > 31
        assert pytx_pdq(as_rgb_png(path)) == ours
    elif mode == "CMYK":
        # Known divergence: pytx passes CMYK's 4 channels and pdqhash reads C, M, Y as R, G, B,
        # i.e. an inverted image, whose PDQ is the exact complement of the upright one.
        assert OurPdq.distance(ours[0], theirs[0]) == 256
        assert pytx_pdq(as_rgb_png(path)) == ours
    else:
        assert ours == theirs  # hash and quality
    if mode in ("P", "CMYK"):
        # So HMA members' hashes of such files still match: we keep pytx's hash as a variant.
        variants = hashing_service().hash_file(path).variants
        assert theirs[0] in {v.hex for v in variants}


def test_pdq_signal_refuses_low_quality_as_we_flag_it():
    data = (MEDIA / "camera_16bit.png").read_bytes()
    assert our_pdq(MEDIA / "camera_16bit.png")[1] == pytx_pdq(data)[1] < PdqSignal.QUALITY_THRESHOLD
    assert PdqSignal.hash_from_bytes(data) == ""
    good = (MEDIA / "chelsea.jpg").read_bytes()
    assert PdqSignal.hash_from_bytes(good) == our_pdq(MEDIA / "chelsea.jpg")[0]


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), env={"HASHDB_DB": None, "HASHDB_SERVER": None})
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def te_export(tmp_path):
    """A database sharing chelsea (live) and coffee (retracted), exported in TE format."""
    db = str(tmp_path / "db.sqlite")
    code, out, err = run("submit", "--json", "--db", db, str(MEDIA / "chelsea.jpg"), str(MEDIA / "coffee.jpg"),
                         "--label", "glorification")
    assert code == 0, err
    coffee_ids = json.loads(out.splitlines()[1])["ids"]
    assert run("retract", "--db", db, *map(str, coffee_ids))[0] == 0
    code, te, err = run("export", "--format", "te", "--db", db)
    assert code == 0, err
    path = tmp_path / "hashdb-te.txt"
    path.write_text(te)
    return path


def pytx_fetch(path: Path) -> dict[str, object]:
    """Everything pytx's local-file exchange reads from `path`: PDQ hash -> its metadata."""
    collab = FileCollaborationConfig(name="hashdb-export", filename=str(path))
    api = LocalFileSignalExchangeAPI.for_collab(collab)
    fetched: dict = {}
    for delta in api.fetch_iter([PdqSignal], None):
        api.naive_fetch_merge(fetched, delta.updates)
    return api.naive_convert_to_signal_type([PdqSignal], collab, fetched).get(PdqSignal, {})


def test_our_te_export_is_read_and_matched_by_python_threatexchange(te_export):
    signals = pytx_fetch(te_export)
    assert sorted(signals) == [our_pdq(MEDIA / "chelsea.jpg")[0]]  # live PDQs only: coffee was retracted
    index = PdqSignal.get_index_cls().build((h, f"hashdb:{h[:8]}") for h in signals)

    def pytx_matches(name: str) -> list:
        query = PdqSignal.hash_from_bytes((MEDIA / name).read_bytes())
        assert query  # pytx hashed it (quality >= 50)
        return list(index.query(query))

    [hit] = pytx_matches("chelsea_jpeg30.jpg")
    assert hit.metadata == f"hashdb:{sorted(signals)[0][:8]}" and hit.similarity_info.distance <= 31
    assert pytx_matches("rocket.jpg") == []
    assert pytx_matches("coffee_jpeg30.jpg") == []  # retracted with us, so not in pytx's index either


def test_hashdb_imports_what_python_threatexchange_writes(tmp_path):
    # pytx's `threatexchange hash photo` prints its local-file format, `<signal type> <hash>` a
    # line. (Its LocalFileSignalExchangeAPI.report_opinion would append the same line, but in
    # pytx 1.2 it opens the file with mode "wta", which Python refuses.)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("HASHDB_")}, "HOME": str(tmp_path)}
    written = subprocess.run([sys.executable, "-m", "threatexchange.cli.main", "hash", "photo",
                              str(MEDIA / "chelsea.jpg"), str(MEDIA / "rocket.jpg")],
                             env=env, capture_output=True, text=True, timeout=60)
    assert written.returncode == 0, written.stderr
    te = tmp_path / "pytx.txt"
    te.write_text(written.stdout)
    assert [line.split()[0] for line in written.stdout.splitlines()] == ["pdq", "pdq"]
    # The file as pytx's own exchange reads it: the same two hashes.
    assert sorted(pytx_fetch(te)) == sorted(line.split()[1] for line in written.stdout.splitlines())

    db = str(tmp_path / "db.sqlite")
    # pytx's lines carry no quality; its hasher refuses images below 50, so that is what they meet.
    code, out, err = run("import", "--json", "--db", db, "--label", "branded_publication", "--pdq-quality", "50",
                         str(te))
    assert code == 0, err
    assert json.loads(out) == {"added": 2, "duplicates": 0}
    code, out, err = run("lookup", "--json", "--db", db, str(MEDIA / "rocket_jpeg30.jpg"), str(MEDIA / "coffee.jpg"))
    near, unrelated = (json.loads(line) for line in out.splitlines())
    assert near["matched"] and near["matches"][0]["labels"] == ["branded_publication"]
    assert not unrelated["matched"]
    # Without labels a TE file is refused with the reason, not stored unlabelled.
    code, _, err = run("import", "--db", str(tmp_path / "other.sqlite"), str(te))
    assert code == 1 and "--label" in err and err.count("\n") == 1


# Video both ways: pytx's video_md5, video_sha256 and vpdq lines ---------------------------


def pytx_cli(home: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HASHDB_", "TX_"))}
    env.update(HOME=str(home), TX_STATEDIR=str(home / ".threatexchange"))
    done = subprocess.run([sys.executable, "-m", "threatexchange.cli.main", *args], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_hashdb_imports_and_submits_the_video_lines_python_threatexchange_writes(tmp_path):
    # `threatexchange hash video`, with pytx's vPDQ extension loaded as its users load it.
    pytx_cli(tmp_path, "config", "extensions", "add", "threatexchange.extensions.vpdq.manifest")
    written = pytx_cli(tmp_path, "hash", "video", str(MEDIA / "clip.mp4"))
    assert [line.split()[0] for line in written.splitlines()] == ["video_md5", "video_sha256", "vpdq"]
    te = tmp_path / "pytx-video.txt"
    te.write_text(written)
    data = (MEDIA / "clip.mp4").read_bytes()

    db = str(tmp_path / "db.sqlite")
    code, out, err = run("import", "--json", "--db", db, "--label", "attacker_manifesto", str(te))
    assert code == 0, err
    assert json.loads(out) == {"added": 3, "duplicates": 0}
    # Stored as what we store for a video file: its md5 and sha256 (computed here with hashlib),
    # and its frames. Our own hash of the same file finds every one of pytx's frames (1 a
    # second), and every one of our samples matches: our scene-change frames count with their
    # second, as pytx takes none (counted apart they put this lookup at 87.5 %).
    code, out, err = run("lookup", "--json", "--db", db, str(MEDIA / "clip.mp4"), str(MEDIA / "other.mp4"))
    found, unrelated = (json.loads(line) for line in out.splitlines())
    assert not unrelated["matched"]
    by_signal = {m["signal"]: m for m in found["matches"]}
    assert sorted(by_signal) == ["md5", "sha256", "vpdq"]
    assert by_signal["vpdq"]["video"]["stored_pct"] == 100.0
    assert by_signal["vpdq"]["video"]["query_pct"] == 100.0
    code, out, err = run("lookup", "--json", "--db", db, f"md5:{hashlib.md5(data).hexdigest()}",
                         f"sha256:{hashlib.sha256(data).hexdigest()}")
    assert [json.loads(line)["matched"] for line in out.splitlines()] == [True, True]

    # The same lines through `submit` (one record per hash; a second time, duplicates).
    other = str(tmp_path / "other.sqlite")
    code, out, err = run("submit", "--json", "--db", other, "--label", "attacker_manifesto", str(te))
    assert code == 0, err
    results = [json.loads(line) for line in out.splitlines()]
    assert [r["duplicate"] for r in results] == [False, False, False]
    assert results[0]["input"] == written.splitlines()[0]
    assert results[2]["input"] == f"{te}:3"  # a vpdq line is named by where it is
    code, out, _ = run("submit", "--json", "--db", other, "--label", "attacker_manifesto", str(te))
    assert [json.loads(line)["duplicate"] for line in out.splitlines()] == [True, True, True]
    # What we export of them, pytx reads as what it wrote (frame timestamps aside).
    code, exported, err = run("export", "--format", "te", "--db", db)
    assert code == 0, err
    assert pytx_fetch_all(write(tmp_path / "ours.txt", exported)) == pytx_fetch_all(te)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def pytx_fetch_all(path: Path) -> dict[str, list]:
    """Signal type name -> the signals pytx's local-file exchange reads from `path`, with pytx's
    video types; vPDQ as (hex, quality) per frame."""
    collab = FileCollaborationConfig(name="hashdb-export", filename=str(path))
    api = LocalFileSignalExchangeAPI.for_collab(collab)
    fetched: dict = {}
    for delta in api.fetch_iter([], None):
        api.naive_fetch_merge(fetched, delta.updates)
    types = [PdqSignal, VideoMD5Signal, VideoSHA256Signal, VPDQSignal]
    out: dict[str, list] = {}
    for s_type, signals in api.naive_convert_to_signal_type(types, collab, fetched).items():
        if s_type is VPDQSignal:
            out["vpdq"] = sorted([(f.pdq_hex, f.quality) for f in json_to_vpdq(s)] for s in signals)
        else:
            out[s_type.get_name()] = sorted(signals)
    return out


def test_our_te_export_carries_every_signal_python_threatexchange_reads(tmp_path):
    db = str(tmp_path / "db.sqlite")
    code, out, err = run("submit", "--json", "--db", db, str(MEDIA / "clip.mp4"), str(MEDIA / "chelsea.jpg"),
                         "--label", "attacker_manifesto")
    assert code == 0, err
    code, te, err = run("export", "--format", "te", "--db", db)
    assert code == 0, err
    read = pytx_fetch_all(write(tmp_path / "te.txt", te))
    data = (MEDIA / "clip.mp4").read_bytes()
    # Exact hashes computed here with hashlib; the image's md5/sha256 and phash are not
    # written (pytx has no types for them), so nothing in the file is unreadable to pytx.
    assert read["video_md5"] == [hashlib.md5(data).hexdigest()]
    assert read["video_sha256"] == [hashlib.sha256(data).hexdigest()]
    assert read["pdq"] == [pytx_pdq((MEDIA / "chelsea.jpg").read_bytes())[0]]
    assert len(te.splitlines()) == 4
    # pytx matches its own vPDQ of a re-encoded copy against the video we exported.
    [vpdq_line] = [line for line in te.splitlines() if line.startswith("vpdq ")]
    stored = vpdq_line.partition(" ")[2]
    # Its frames, with their times, are those `hashdb hash --json` gives for the file.
    code, hashed, _ = run("hash", "--json", str(MEDIA / "clip.mp4"))
    assert [(f.pdq_hex, f.quality, f.timestamp) for f in json_to_vpdq(stored)] == \
        [(f["pdq"], f["quality"], f["t"]) for f in json.loads(hashed)["frames"]]
    assert VPDQSignal.compare_hash(VPDQSignal.hash_from_file(MEDIA / "clip.mp4"), stored).match
    assert not VPDQSignal.compare_hash(VPDQSignal.hash_from_file(MEDIA / "other.mp4"), stored).match

    # And back: what we exported imports into another database as the same records.
    again = str(tmp_path / "again.sqlite")
    # (ThreatExchange lines carry no PDQ quality: the importer vouches for one.)
    code, out, err = run("import", "--json", "--db", again, "--label", "attacker_manifesto", "--pdq-quality", "50",
                         str(tmp_path / "te.txt"))
    assert json.loads(out) == {"added": 4, "duplicates": 0}, err
    code, te_again, _ = run("export", "--format", "te", "--db", again)
    assert te_again == te


@pytest.mark.parametrize("line, reason", [
    ("vpdq not json", "vPDQ format"),
    ('vpdq ["203fe293ac3f5a93353aa3d1863e5c7354d729d18237f6e24482012ffb68f9c4,100"]', "hex,quality,seconds"),
    ('vpdq ["203fe293ac3f5a93353aa3d1863e5c7354d729d18237f6e24482012ffb68f9c4,100,-1"]', "seconds"),
    ("vpdq []", "non-empty"),
    ("video_md5 8a36bea7", "md5"),
    ("video_sha256", "SIGNAL HEX"),
])
def test_a_bad_pytx_line_refuses_the_file_with_a_one_line_reason(tmp_path, line, reason):
    te = tmp_path / "bad.txt"
    te.write_text(f"video_md5 8a36bea7babba2474dc20c20c971e7f2\n{line}\n")
    db = tmp_path / "db.sqlite"
    code, out, err = run("import", "--db", str(db), "--label", "glorification", str(te))
    assert code == 1 and reason in err and err.count("\n") == 1, err
    code, out, _ = run("export", "--db", str(db))
    assert out == ""  # nothing stored, not even the good first line
