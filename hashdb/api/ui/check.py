"""Check: paste hashes (one item a line: `signal:hex`, several on a line are one file's hashes)
and see the lookup answer the API gives. A file chosen here is hashed in the browser (MD5 and
SHA-256, static/check.js); only the hashes are sent, never the file or its name."""

from __future__ import annotations

from typing import Any

from flask import current_app, render_template, request

from hashdb.api.errors import status_for
from hashdb.api.runtime import get_service, runtime
from hashdb.api.ui.bp import bp
from hashdb.api.ui.session import me
from hashdb.errors import HashDBError, InvalidInput
from hashdb.hashing.registry import parse_hash_argument
from hashdb.types import LookupResult, Query

MAX_TEXT = 200_000


@bp.get("/check")
def check() -> str:
    return render_template("check.html", text="", results=None, errors={})


def parse(text: str, max_batch: int) -> list[Query]:
    queries = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        try:
            values = tuple(parse_hash_argument(word) for word in line.split())
        except HashDBError as exc:
            raise InvalidInput(f"line {n}: {exc.message}") from exc
        queries.append(Query(line, values))
    if not queries:
        raise InvalidInput("paste at least one hash as signal:hex, e.g. pdq:… or md5:…")
    if len(queries) > max_batch:
        raise InvalidInput(f"{len(queries)} lines; the limit is {max_batch} a check")
    return queries


@bp.post("/check")
def check_post() -> Any:
    text = request.form.get("hashes", "")
    try:
        if len(text) > MAX_TEXT:
            raise InvalidInput(f"the hashes are {len(text)} characters; the limit is {MAX_TEXT}")
        queries = parse(text, int(current_app.config["MAX_BATCH"]))
        runtime().require_ready()
        results = get_service().lookup(queries, me())
    except HashDBError as exc:
        return render_template("check.html", text=text, results=None, errors={"hashes": exc.message}), \
            status_for(exc)
    _count(results)
    return render_template("check.html", text=text, results=results, errors={})


def _count(results: list[LookupResult]) -> None:
    # The same counters the API's lookups feed: a check from the console is a lookup.
    metrics = current_app.extensions["hashdb_metrics"]
    metrics.lookups.inc(len(results))
    metrics.matches.inc(sum(1 for r in results if r.matched))
