"""Every error leaves the API in one JSON shape, `{"error": {"code": ..., "message": ...}}`,
built by `error_document` alone: `error_response` answers with it in the app, `error_answer` on
the worker's loop, below the app. Domain errors map to a status through STATUS; Werkzeug's
HTTP errors keep theirs; anything else is a logged, bare 500 (a 5xx is a bug).

400 or 422: a request the server cannot read as meant (malformed JSON, a wrong type, a hash
that is not hex of the signal's length, an unknown signal) is 400; a well-formed request whose
content the sharing policy refuses (a label outside the taxonomy, an incident that is not open, a
PDQ below the quality cut-off) is 422, so a client can tell "fix your code" from "fix your data".
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException, NotFound, RequestEntityTooLarge

from hashdb import errors

log = logging.getLogger("hashdb.api")

# Most specific first is not needed: the lookup walks the error's MRO, so a subclass listed
# here (MediaTooLarge, UnknownLabel) wins over its base (UnsupportedMedia, InvalidInput).
STATUS: dict[type[errors.HashDBError], int] = {
    errors.InvalidInput: 400,
    errors.InvalidHash: 400,
    errors.UnknownSignal: 400,
    errors.UnknownLabel: 422,
    errors.LowQuality: 422,
    errors.UnknownIncident: 422,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.MediaTooLarge: 413,
    errors.UnsupportedMedia: 415,
    errors.RateLimited: 429,
    # The API hashes no media, so it never needs tmkpy; should a request ever reach that code,
    # it is well-formed content this server cannot process, not a server fault.
    errors.ToolMissing: 422,
    # The index is loading (start-up): come back shortly; /readyz says when.
    errors.IndexStale: 503,
    # Another process held the write lock past the wait: nothing was written, retry.
    errors.Busy: 503,
}

# HTTP errors not raised by our code (Werkzeug's, and those gunicorn's parser answers, see
# worker.py), named like ours; others get their reason phrase in snake case.
HTTP_CODES = {
    400: "invalid_input",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    431: "headers_too_large",
    500: "internal_error",
}


def code_for(status: int, reason: str) -> str:
    return HTTP_CODES.get(status) or reason.lower().replace(" ", "_")

# After a 413 the rest of the body is read and dropped (up to this much), so the client gets
# the answer instead of a reset connection; a larger body is cut off.
DRAIN_BYTES = 8 * 1024 * 1024
# A 404 names the path it could not find, cut to this many characters.
MAX_PATH_SHOWN = 200


def status_for(exc: errors.HashDBError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


def error_document(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    """The one place the error body is built (lean.py serialises the same document)."""
    response = jsonify(error_document(code, message))
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def error_answer(status: int, reason: str, code: str, message: str) -> bytes:
    """A whole HTTP answer in the API's error shape, closing the connection: for what the
    worker's loop answers itself, below the app."""
    body = json.dumps(error_document(code, message)).encode() + b"\n"
    return (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nConnection: close\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def domain_error(exc: errors.HashDBError) -> tuple[int, str, str, dict[str, str]]:
    """A domain error's status, code, message and extra headers."""
    headers: dict[str, str] = {}
    if isinstance(exc, (errors.RateLimited, errors.Busy)):
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    elif isinstance(exc, errors.IndexStale):
        headers["Retry-After"] = "1"
    elif isinstance(exc, errors.Unauthorized):
        headers["WWW-Authenticate"] = 'Bearer realm="hashdb"'
    return status_for(exc), exc.code, exc.message, headers


def body_too_large(limit: int | None) -> str:
    """The one wording of a 413 for a body over the size limit, whoever refuses it: the worker
    from Content-Length before reading, or Werkzeug on reading a chunked body past the limit."""
    return f"request body larger than {limit} bytes" if limit is not None else "request body too large"


def http_error(exc: HTTPException, environ: Mapping[str, Any],
               body_limit: int | None = None) -> tuple[int, str, str, dict[str, str]]:
    """A Werkzeug HTTP error's status, code, message and extra headers; after a 413 the rest of
    the body is read and dropped first. `body_limit`: the request's max_content_length."""
    status = exc.code or 500
    if status == 413:
        _drain(environ)
    code = code_for(status, exc.name or "error")
    headers = {k: v for k, v in exc.get_headers() if k.lower() not in ("content-type", "content-length")}
    message = exc.description or exc.name or "error"
    if isinstance(exc, RequestEntityTooLarge) and message == RequestEntityTooLarge.description:
        # Werkzeug's "The data value transmitted exceeds the capacity limit.": say it as the
        # worker says it of a Content-Length over the limit.
        message = body_too_large(body_limit)
    if isinstance(exc, NotFound) and message == NotFound.description:
        # Werkzeug's text ("If you entered the URL manually...") is for browsers; say which path,
        # and where the real ones are: an id that is not a whole number lands here too.
        path = str(environ.get("PATH_INFO", ""))
        shown = path if len(path) <= MAX_PATH_SHOWN else path[:MAX_PATH_SHOWN] + "..."
        message = f"no such path {shown!r}; the API's paths, with the form of their ids, are in /openapi.json"
    return status, code, message, headers


def _domain_error(exc: errors.HashDBError) -> Response:
    return error_response(*domain_error(exc))


def _http_error(exc: HTTPException) -> Response:
    return error_response(*http_error(exc, request.environ, request.max_content_length))


def _drain(environ: Mapping[str, Any]) -> None:
    stream = environ.get("wsgi.input")
    if stream is None or not environ.get("wsgi.input_terminated"):
        return
    left = DRAIN_BYTES
    try:
        while left > 0:
            chunk = stream.read(min(65536, left))
            if not chunk:
                return
            left -= len(chunk)
    except Exception:  # a client that went away needs no answer; the 413 is still logged
        return


def _unexpected(exc: Exception) -> Response:
    # Method and path only: headers (the API key) and bodies never reach the log.
    log.exception("unhandled error in %s %s", request.method, request.path)
    return error_response(500, "internal_error", "internal server error")


def register(app: Flask) -> None:
    app.register_error_handler(errors.HashDBError, _domain_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
