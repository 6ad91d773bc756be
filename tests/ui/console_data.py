"""The data the browser tests sign in to: organisations with each role, records of two
contributors, one quarantined, one disputed, and one holding a fixture file's exact hashes."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from pathlib import Path

from hashdb.service.local import open_database
from hashdb.types import HashValue, Principal, Submission
from support import random_pdq

CHECK_FILE = Path(__file__).resolve().parents[2] / "fixtures" / "media" / "camera.png"


@dataclass
class Seeded:
    keys: dict[str, str]  # name -> API key
    key_ids: dict[str, int]
    alpha: list[int] = field(default_factory=list)  # alpha's live records
    beta: list[int] = field(default_factory=list)
    quarantined: int = 0  # alpha's, held by hand
    quarantined_pdq: str = ""
    disputed: int = 0  # beta's
    file_record: int = 0  # alpha's, the exact hashes of CHECK_FILE


def seed(db: Path) -> Seeded:
    rng = random.Random(12)
    service = open_database(db)
    try:
        operator = service.store.ensure_org("operator")
        root = Principal(operator.id, operator.name, "admin")
        roles = {"admin": ("operator", "admin"), "alpha": ("alpha", "contributor"),
                 "beta": ("beta", "contributor"), "gamma": ("gamma", "consumer")}
        keys, ids, who = {}, {}, {}
        for name, (org, role) in roles.items():
            key, record = service.create_key(org, role, root)
            keys[name], ids[name] = key, record.id
            who[name] = service.principal_for_key_id(record.id)
        out = Seeded(keys, ids)

        def share(name: str, count: int, label: str) -> list[int]:
            subs = [Submission(f"h{n}", (label,), (HashValue("pdq", random_pdq(rng), 100),)) for n in range(count)]
            return [i for r in service.submit(subs, who[name]) for i in r.ids]

        out.alpha = share("alpha", 4, "glorification")
        out.beta = share("beta", 3, "branded_publication")
        data = CHECK_FILE.read_bytes()
        exact = (HashValue("md5", hashlib.md5(data).hexdigest()), HashValue("sha256", hashlib.sha256(data).hexdigest()))
        [result] = service.submit([Submission("file", ("attacker_manifesto",), exact)], who["alpha"])
        out.file_record = result.ids[0]
        out.alpha += list(result.ids)
        out.quarantined = out.alpha[0]
        out.quarantined_pdq = service.store.get_records([out.quarantined])[out.quarantined].value
        service.quarantine(out.quarantined, root, "reported by a member as a news photo")
        out.alpha.remove(out.quarantined)
        out.disputed = out.beta[0]
        service.feedback(out.disputed, who["alpha"], "disagree", "this is a news broadcast still")
        service.feedback(out.disputed, who["gamma"], "false_positive", "matched our logo")
        service.rebuild_index()
        return out
    finally:
        service.store.close()
