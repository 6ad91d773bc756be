"""Schemathesis generates requests from /openapi.json and sends them to the app (WSGI, with an
admin key): no answer may be a 5xx, and every answer must match the spec (status, content
type, schema). Bounded so the whole run stays well under a minute on 2 cores; raise
HASHDB_FUZZ_EXAMPLES for a longer run."""

from __future__ import annotations

import os
import random

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from hashdb.api import create_app, spec
from serverproc import make_keys
from support import random_pdq

EXAMPLES = int(os.environ.get("HASHDB_FUZZ_EXAMPLES", "25"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory):
    db = tmp_path_factory.mktemp("fuzz") / "db.sqlite"
    keys = make_keys(db, {"admin": ("operator", "admin")})
    app = create_app({"DB": str(db), "LOAD_INDEX_IN_BACKGROUND": False, "RATE_LIMIT": 0})
    client = app.test_client()
    headers = {"Authorization": f"Bearer {keys['admin'][0]}"}
    rng = random.Random(3)
    # Some records, so ids 1..20 in generated paths often exist.
    client.post("/v1/hashes", headers=headers, json={"items": [
        {"signal": "pdq", "hash": random_pdq(rng), "labels": ["glorification"]} for _ in range(20)]})
    yield app, headers
    app.extensions["hashdb"].close()


@pytest.fixture(scope="module")
def api_schema(fuzz_app):
    return schemathesis.openapi.from_wsgi("/openapi.json", fuzz_app[0])


def has_inputs(operation: dict) -> bool:
    return bool(operation.get("parameters") or operation.get("requestBody"))


# The spec's operations, known at collection time without building an app; negative cases only
# for operations with an input to make invalid (a bare GET /healthz has none).
CASES = [(method, path, mode) for path, ops in spec.paths(1000).items() for method, operation in ops.items()
         for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
         if mode is GenerationMode.POSITIVE or has_inputs(operation)]


@pytest.mark.parametrize("method,path,mode", CASES, ids=[f"{m.upper()} {p}-{g.value}" for m, p, g in CASES])
def test_api_matches_its_spec(api_schema, fuzz_app, method, path, mode):
    # Schemathesis's own pytest plugin does not run under pytest 9 yet; Hypothesis drives it here.
    strategy = api_schema[path][method].as_strategy(mode)

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
              database=None)
    @given(case=strategy)
    def run(case):
        case.call_and_validate(headers=fuzz_app[1], checks=CHECKS)

    run()
