"""GET and POST /v1/lookup, the API's hot path, answered without Flask's per-request machinery
(request and app contexts, URL matching, hooks, response objects): about a third of a single
lookup's CPU in the app. Everything that decides the answer is shared with the Flask views: the
key check (auth.check_key), request parsing (bodies), the service call (views.lookup), metrics
and the error shapes (errors). The bytes out are those the Flask views send
(tests/api/test_lean_lookup.py compares them); any other request goes on to Flask unchanged."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.wrappers import Request

from hashdb.api import errors
from hashdb.api.auth import check_key
from hashdb.api.bodies import json_body
from hashdb.api.views import lookup
from hashdb.errors import HashDBError

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from flask import Flask

log = logging.getLogger("hashdb.api")

PATH = "/v1/lookup"


class LeanLookup:
    """WSGI middleware in front of the Flask app (`app.wsgi_app`), taking the lookup routes."""

    def __init__(self, app: Flask, inner: WSGIApplication) -> None:
        self.inner = inner
        # Read on each request, as the Flask views do: tests replace the runtime or limits.
        self.extensions = app.extensions
        self.config = app.config
        self.json = app.json
        # The Flask views answer through jsonify, which adds these separators outside debug mode.
        self.debug = app.debug

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD")
        if environ.get("PATH_INFO") != PATH or (method != "GET" and method != "POST"):
            return self.inner(environ, start_response)
        started = time.perf_counter()
        headers: dict[str, str] = {}
        status = 200
        try:
            document = self._answer(environ, method)
        except HashDBError as exc:
            status, code, message, headers = errors.domain_error(exc)
            document = errors.error_document(code, message)
        except HTTPException as exc:
            status, code, message, headers = errors.http_error(exc, environ, self.config["MAX_CONTENT_LENGTH"])
            document = errors.error_document(code, message)
        except Exception:
            log.exception("unhandled error in %s %s", method, PATH)
            status, document = 500, errors.error_document("internal_error", "internal server error")
        dump: dict[str, Any] = {"indent": 2} if self.debug else {"separators": (",", ":")}
        body = f"{self.json.dumps(document, **dump)}\n".encode()
        self.extensions["hashdb_metrics"].count_request(PATH, method, status, time.perf_counter() - started)
        # Werkzeug's status line, as a Flask response would send it.
        start_response(f"{status} {HTTP_STATUS_CODES.get(status, 'UNKNOWN').upper()}",
                       [("Content-Type", "application/json"), ("Content-Length", str(len(body))), *headers.items()])
        return [body]

    def _answer(self, environ: WSGIEnvironment, method: str) -> dict[str, Any]:
        extensions, config = self.extensions, self.config
        runtime, metrics = extensions["hashdb"], extensions["hashdb_metrics"]
        # Checked in the order the Flask app checks them: the key before anything is read.
        actor = check_key(environ.get("HTTP_AUTHORIZATION", ""), environ.get("REMOTE_ADDR") or "",
                          runtime.service(), extensions["hashdb_auth_failures"], extensions["hashdb_ratelimit"])
        # Not stored in the environ (werkzeug's default): that reference back from the environ
        # made every lookup a reference cycle, left for the garbage collector, whose passes
        # then cost the worker's loop more than the parsing itself.
        request = Request(environ, populate_request=False)
        if method == "GET":
            return lookup.one(request.args, actor, runtime, metrics)
        request.max_content_length = config["MAX_CONTENT_LENGTH"]
        return lookup.batch(json_body(req=request), actor, runtime, metrics, int(config["MAX_BATCH"]))
