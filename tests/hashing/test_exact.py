"""md5 and sha256 are what members exchange for exact copies: they must be the standard digests,
checked against published test vectors and against hashlib on real files, end to end."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from hashdb.config import Settings
from hashdb.hashing.registry import get_signal
from hashdb.service import HashDB
from hashdb.store.sqlite_store import SQLiteStore

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "media"

# RFC 1321 appendix A.5 (md5) and FIPS 180-2 appendix B.1 / NIST CSRC examples (sha256).
PUBLISHED = [
    ("md5", b"", "d41d8cd98f00b204e9800998ecf8427e"),
    ("md5", b"abc", "900150983cd24fb0d6963f7d28e17f72"),
    ("md5", b"message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
    ("md5", b"12345678901234567890123456789012345678901234567890123456789012345678901234567890",
     "57edf4a22be3c955ac49da2e2107b67a"),
    ("sha256", b"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    ("sha256", b"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    ("sha256", b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
]


@pytest.mark.parametrize("signal, data, expected", PUBLISHED)
def test_exact_signals_give_the_published_digests(signal, data, expected):
    value = get_signal(signal).compute_bytes(data)  # type: ignore[attr-defined]
    assert (value.signal, value.hex) == (signal, expected)


@pytest.mark.parametrize("path", [FIXTURES / "astronaut.jpg", FIXTURES / "camera.png"], ids=lambda p: p.name)
def test_hashing_a_file_gives_hashlibs_digests_of_its_bytes(tmp_path, path):
    store = SQLiteStore(tmp_path / "db.sqlite")
    try:
        hashes = HashDB(Settings(), store).hash_file(path, signals=["md5", "sha256"])
    finally:
        store.close()
    data = path.read_bytes()
    got = {v.signal: v.hex for v in hashes.hashes}
    assert got == {"md5": hashlib.md5(data).hexdigest(), "sha256": hashlib.sha256(data).hexdigest()}
