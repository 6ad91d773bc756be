"""Helpers shared by the test folders (importable because pytest puts tests/ on sys.path)."""

from __future__ import annotations

import random

from hashdb.service import HashDB
from hashdb.types import Principal


def INDEX_FACTORY(bits: int, size: int):  # noqa: N802 - used like a class
    # Always FAISS in the service tests (make_index would pick brute force at these sizes),
    # so the production index is the one exercised end to end.
    from hashdb.index.faiss_index import FaissIndex

    return FaissIndex(bits)


def principal(service: HashDB, org: str, role: str) -> Principal:
    o = service.store.ensure_org(org)
    return Principal(o.id, o.name, role)


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
