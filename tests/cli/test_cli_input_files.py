"""Files a user hands the CLI that are not plain media or plain UTF-8 hash files: a FIFO, a
hash file saved with a byte-order mark, a file name that is not UTF-8, a line in another
encoding. Each gets an answer, and no one of them costs the others theirs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support import database_sharing, run_cli

ROOT = Path(__file__).resolve().parents[2]
MEDIA = ROOT / "fixtures" / "media"
# The installed program, as a user runs it: its stdout is a real pipe, not click's test buffer.
HASHDB = [sys.executable, "-c", "from hashdb.cli import main; main()"]


invoke = run_cli


@pytest.fixture
def shared_db(tmp_path) -> Path:
    return database_sharing(tmp_path / "db.sqlite")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_a_fifo_is_refused_at_once_not_read(tmp_path):
    fifo = tmp_path / "upload.jpg"
    os.mkfifo(fifo)
    # Nothing ever writes to it: reading it would block for ever.
    done = subprocess.run([*HASHDB, "hash", "--json", str(fifo)], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert json.loads(done.stdout) == {"path": str(fifo), "error": "not a regular file"}


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_a_fifo_in_a_folder_is_skipped_with_a_note(tmp_path):
    folder = tmp_path / "uploads"
    folder.mkdir()
    shutil.copyfile(MEDIA / "rocket_jpeg30.jpg", folder / "rocket.jpg")
    os.mkfifo(folder / "pipe.jpg")
    done = subprocess.run([*HASHDB, "hash", "--json", str(folder)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["path"] for line in done.stdout.splitlines()] == [str(folder / "rocket.jpg")]
    assert "pipe.jpg" in done.stderr and "not a regular file" in done.stderr


def test_a_hash_file_with_a_byte_order_mark_is_read(tmp_path, shared_db):
    line = invoke("hash", "--json", str(MEDIA / "chelsea_jpeg30.jpg")).stdout.splitlines()[0]
    pdq = json.loads(line)["pdq"]["hash"]
    for name, text in (("te.txt", f"pdq {pdq}\r\n"), ("hashes.jsonl", line + "\n")):
        path = tmp_path / name
        path.write_bytes(b"\xef\xbb\xbf" + text.encode())
        result = invoke("lookup", "--db", str(shared_db), "--json", str(path))
        assert result.exit_code == 0, result.output
        answer = json.loads(result.stdout.splitlines()[0])
        assert answer["matched"] is True, (name, answer)


def test_a_line_that_is_not_utf8_costs_that_line_only(tmp_path, shared_db):
    line = invoke("hash", "--json", str(MEDIA / "chelsea_jpeg30.jpg")).stdout.splitlines()[0]
    path = tmp_path / "hashes.jsonl"
    path.write_bytes(b'{"path": "r\xe9sum\xe9.jpg", "md5": "' + b"0" * 31 + b'1"}\n' + line.encode() + b"\n")
    result = invoke("lookup", "--db", str(shared_db), "--json", str(path))
    answers = [json.loads(x) for x in result.stdout.splitlines()]
    assert answers[0]["input"] == f"{path}:1" and "not UTF-8 text" in answers[0]["error"], answers[0]
    assert [a.get("matched") for a in answers[1:]] == [True]


@pytest.mark.skipif(sys.platform == "darwin", reason="macOS file systems refuse names that are not UTF-8")
def test_a_file_name_that_is_not_utf8_stays_valid_json_and_reads_back(tmp_path, shared_db):
    folder = tmp_path / "uploads"
    folder.mkdir()
    odd = os.fsencode(folder) + b"/r\xe9sum\xe9.jpg"
    shutil.copyfile(MEDIA / "chelsea_jpeg30.jpg", odd)
    shutil.copyfile(MEDIA / "rocket_jpeg30.jpg", folder / "rocket.jpg")
    hashed = subprocess.run([*HASHDB, "hash", "--for-lookup", "--json", str(folder)], capture_output=True,
                            timeout=300)
    assert hashed.returncode == 0, hashed.stderr
    lines = hashed.stdout.decode("utf-8").splitlines()  # strict: every byte is UTF-8
    docs = [json.loads(line) for line in lines]
    assert sorted(os.fsencode(d["path"]) for d in docs) == sorted([odd, os.fsencode(folder / "rocket.jpg")])
    hash_file = tmp_path / "q.jsonl"
    hash_file.write_bytes(hashed.stdout)
    looked = subprocess.run([*HASHDB, "lookup", "--db", str(shared_db), "--json", str(hash_file)],
                            capture_output=True, timeout=300)
    assert looked.returncode == 0, looked.stderr
    answers = {os.fsencode(a["input"]): a["matched"] for a in map(json.loads, looked.stdout.decode("utf-8").splitlines())}
    assert answers == {odd: True, os.fsencode(folder / "rocket.jpg"): False}
