"""Helpers shared by the test folders (importable because pytest puts tests/ on sys.path)."""

from __future__ import annotations

import functools
import os
import random
import struct
import zlib
from pathlib import Path

import pytest

from hashdb.service import HashDB
from hashdb.types import Principal

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def run_cli(*args: str, **env: str | None):
    """`hashdb ARGS` through click's runner, the server and database settings of the
    environment cleared (keyword arguments set them); one-line errors only: click's own
    exits, never an exception of ours."""
    from click.testing import CliRunner

    from hashdb.cli import cli

    base = {"HASHDB_DB": None, "HASHDB_SERVER": None, "HASHDB_API_KEY": None}
    result = CliRunner().invoke(cli, list(args), env={**base, **env})
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def database_sharing(path: Path, photo: str = "chelsea.jpg") -> Path:
    """A new SQLite database at `path` holding one fixture photo's hashes, shared by the CLI."""
    db = empty_database(path)
    media = Path(__file__).resolve().parents[1] / "fixtures" / "media"
    assert run_cli("submit", "--db", str(db), str(media / photo), "--label", "glorification").exit_code == 0
    return db


def require_or_skip(available: bool, what: str) -> None:
    """External parts (the vectors, PostgreSQL, Chromium, promtool) skip with a reason on a
    developer's fresh clone, and fail when CI=true, so CI can never pass by skipping them."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"{what} is required in CI but is not available")
    pytest.skip(f"{what} not available")


def INDEX_FACTORY(bits: int, size: int):  # noqa: N802 - used like a class
    # Always FAISS in the service tests (make_index would pick brute force at these sizes),
    # so the production index is the one exercised end to end.
    from hashdb.index.faiss_index import FaissIndex

    return FaissIndex(bits)


def principal(service: HashDB, org: str, role: str) -> Principal:
    o = service.store.ensure_org(org)
    return Principal(o.id, o.name, role)


def subscriber(service: HashDB, org: str) -> Principal:
    """An organisation holding a partner key, as a webhook's subscriber must (a webhook carries
    hash values, which only roles that may read the change feed receive)."""
    operator = service.store.ensure_org("operator")
    service.create_key(org, "partner", Principal(operator.id, operator.name, "admin"))
    return principal(service, org, "partner")


def random_pdq(rng: random.Random) -> str:
    # 128 ones out of 256, like a real PDQ (median threshold), so it is never "degenerate".
    bits = [1] * 128 + [0] * 128
    rng.shuffle(bits)
    return "".join(f"{int(''.join(map(str, bits[i:i + 4])), 2):x}" for i in range(0, 256, 4))


def flip(hex_value: str, k: int, rng: random.Random) -> str:
    value = int(hex_value, 16)
    for bit in rng.sample(range(256), k):
        value ^= 1 << bit
    return f"{value:064x}"


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def flat_png(width: int, height: int) -> bytes:
    """A complete RGB PNG of zeros, compressed as zlib does at level 9: big canvas, few bytes."""
    row = b"\0" * (1 + 3 * width)
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", body) + png_chunk(b"IEND", b"")


def empty_database(path: Path) -> Path:
    """A hashdb SQLite file with the schema and nothing in it: what a first `submit` leaves.
    Read-only commands (lookup, export, ...) refuse a --db that does not exist."""
    from hashdb.store.sqlite_store import SQLiteStore

    SQLiteStore(path).close()
    return path


@functools.lru_cache(maxsize=None)
def tmk_of(path: Path) -> bytes:
    """A fixture video's TMK (tmkpy through hashdb.hashing.tmk_video), computed once a session."""
    from hashdb.hashing.tmk_video import hash_tmk

    return hash_tmk(path)


def json_lines(result: object) -> list[dict[str, object]]:
    """The JSON objects a `--json` command printed, one a line (a click Result)."""
    import json

    stdout: str = getattr(result, "stdout")
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def write_video(path: Path, frames: list, fps: float, codec: str = "mp4v") -> Path:
    """`frames` (BGR uint8 arrays of one size) written with OpenCV at `fps`. "MJPG" (in an .avi)
    codes each frame alone, so identical inputs decode identically; "mp4v" is a re-encode."""
    import cv2

    height, width = frames[0].shape[:2] if frames else (48, 64)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, (width, height))
    assert writer.isOpened()
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path
