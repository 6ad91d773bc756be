"""Helpers for the partner tests (a uniquely named module: test folders share one sys.path)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from hashdb.service import HashDB
from hashdb.types import Principal

State = tuple[str, str, str, tuple[str, ...]]  # signal, hash, status, labels


def fold(docs: Iterable[Mapping[str, Any]], upto_seq: int | None = None) -> Counter[State]:
    """A feed's live records, folded here from its JSON lines (independently of hashdb.partners.mirror):
    each record's last entry decides; retracted records are not live."""
    latest: dict[int, State] = {}
    for doc in sorted(docs, key=lambda d: d["seq"]):
        if upto_seq is not None and doc["seq"] > upto_seq:
            break
        latest[doc["id"]] = (doc["signal"], doc["hash"], doc["status"], tuple(doc["labels"]))
    return Counter(state for state in latest.values() if state[2] != "retracted")


def feed_docs(service: HashDB) -> list[dict[str, Any]]:
    """The whole change feed of a local database, as the JSON an export writes."""
    from hashdb.io.output import feed_json

    admin = admin_of(service)
    docs: list[dict[str, Any]] = []
    cursor = None
    while True:
        entries, cursor = service.export(admin, cursor, 1000)
        docs += [feed_json(e) for e in entries]
        if len(entries) < 1000:
            return docs


def live_set(db: Path | str) -> Counter[State]:
    """The live records of a database file, read through a fresh service."""
    from hashdb.service.local import open_database

    service = open_database(db)
    try:
        return fold(feed_docs(service))
    finally:
        service.store.close()


def admin_of(service: HashDB, org: str = "operator") -> Principal:
    o = service.store.ensure_org(org)
    return Principal(o.id, o.name, "admin")


def jsonl(docs: Iterable[Mapping[str, Any]]) -> str:
    return "".join(json.dumps(d) + "\n" for d in docs)


def share_pdq(url: str, key: str, pdq: str, label: str = "glorification", quality: int = 90) -> list[int]:
    """One PDQ submitted to a live server through the HTTP client: its record ids."""
    from hashdb.partners.client import Client

    [result] = Client(url, key).submit([{"signal": "pdq", "hash": pdq, "quality": quality, "labels": [label]}])
    return list(result["ids"])
