"""The README's API table and the OpenAPI document say what the server does."""

from __future__ import annotations

import re
from pathlib import Path

import jsonschema
import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_the_readme_table_lists_every_api_operation(client):
    # Issue item 21: PATCH /v1/hashes/{id} was missing from the README's table.
    readme = (ROOT / "README.md").read_text()
    spec = client.get("/openapi.json").get_json()
    for path, operations in spec["paths"].items():
        if not path.startswith("/v1/"):
            continue
        for method in operations:
            shown = f"`{method.upper()} {path.replace('{incident_id}', '{id}')}"
            assert re.search(re.escape(shown) + "[`?]", readme), f"{shown}` is not in the README"


@pytest.mark.parametrize("signal, length", [("pdq", 64), ("phash", 16), ("dhash", 16), ("md5", 32), ("sha256", 64)])
def test_the_spec_gives_each_signal_its_hash_length(client, signal, length):
    # Issue item 21: the OpenAPI schema accepted any hash length 16..64 for every signal.
    spec = client.get("/openapi.json").get_json()

    def valid(name: str, doc: dict) -> bool:
        schema = {**spec["components"]["schemas"][name], "components": spec["components"]}
        return jsonschema.Draft202012Validator(schema).is_valid(doc)

    for wrong in {16, 32, 64} - {length}:
        assert not valid("Hash", {"signal": signal, "hash": "a" * wrong, "quality": 90})
        assert not valid("LookupItem", {"signal": signal, "hash": "a" * wrong})
    assert valid("Hash", {"signal": signal, "hash": "a" * length, "quality": 90})
    assert valid("LookupItem", {"signal": signal, "hash": "a" * length})
    submit = {"signal": signal, "hash": "a" * length, "labels": ["glorification"]}
    assert valid("SubmitItem", submit) == (signal != "pdq")  # a PDQ must say its quality
    assert valid("SubmitItem", {**submit, "quality": 90})
