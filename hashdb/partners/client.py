"""A small client for the hashdb HTTP API (stdlib only): what `hashdb ... --server` uses, and
what a platform can import. Answers are the JSON shapes of PRODUCT.md (hashdb.io.output); API
errors come back as the same typed HashDBError subclasses the service raises.

Media never leaves the machine: hash files locally (HashDB.hash_file) and send the hashes.
Inputs (file names) are not sent either; results come back in order and are named here.

    from hashdb.partners.client import Client
    client = Client("https://hashdb.example.org", api_key)
    [result] = client.lookup([{"signal": "pdq", "hash": "9a3f..."}])
"""

from __future__ import annotations

import dataclasses
import functools
import json
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hashdb import errors
from hashdb.hashing import keypoints_text, tmk
from hashdb.hashing.derived import CONTENT, ENLARGED, MAX_DERIVED, VIAS, WINDOW, derived_from_json, derived_json
from hashdb.types import FeedEntry, FrameHash, HashValue, Principal, Query, Submission, Votes

# The server's default batch limit (HASHDB_MAX_BATCH); longer lists are sent in several requests,
# of fewer items where the server's /openapi.json says it takes fewer (Client.batch_limit).
BATCH = 1000
# ...and bodies over this many bytes of items too: the server's default body limit is 4 MiB, and a
# video's tmk alone is 351 KB of base64.
BATCH_BYTES = 3 * 1024 * 1024
USER_AGENT = "hashdb-client/1"


# What a server from before a lookup's windows (hashing/crops.py) takes in a lookup item's
# "derived": these kinds, at most 17 (it refuses the whole request otherwise). A server says
# what it takes in its /openapi.json; one that does not say is taken to be such a server.
OLDER_DERIVED_VIAS = frozenset(VIAS) - {WINDOW, ENLARGED}
OLDER_MAX_DERIVED = 17


@dataclass(frozen=True, slots=True)
class DerivedAccepted:
    """The derived hashes a server takes in a lookup or submit item: their kinds, how many, and
    whether it reads their colour layout (servers before it refuse a derived hash carrying one)."""

    vias: frozenset[str]
    most: int
    colours: bool = True

    def fit(self, query: Query) -> Query:
        """`query` with only the derived hashes the server takes: the kinds it knows, and of
        those `most`, in their order. Past `most`, windows go first, then the last `content`
        boxes: a lookup makes many of those (regions, row spans, reduced copies) and few of
        each other kind, and each corner-masked or deskewed hash is the only evidence of its
        edit (a logo, a turn), which an older server took before row spans lengthened the list.
        To a server that does not read colour layouts they go unsent (its matches are then
        those of the time before the colour gate)."""
        known = [d for d in query.derived if d.via in self.vias]
        if len(known) > self.most:
            rank = sorted(range(len(known)), key=lambda i: (_FIT_ORDER.get(known[i].via, 0), i))
            known = [known[i] for i in sorted(rank[:self.most])]
        if not self.colours:
            known = [d if d.colours is None else dataclasses.replace(d, colours=None) for d in known]
        kept = tuple(known)
        return query if kept == query.derived else dataclasses.replace(query, derived=kept)

    def fit_submission(self, submission: Submission) -> Submission:
        fitted = self.fit(Query(submission.input, submission.hashes, derived=submission.derived))
        return submission if fitted.derived == submission.derived else dataclasses.replace(
            submission, derived=fitted.derived)


# Which derived hashes fit() leaves out first when a server takes fewer: higher goes first.
_FIT_ORDER = {WINDOW: 2, CONTENT: 1}


OLDER_SERVER = DerivedAccepted(OLDER_DERIVED_VIAS, OLDER_MAX_DERIVED, colours=False)


class ServerError(errors.HashDBError):
    """The server could not be reached, or answered with something that is not our API."""

    code = "server_error"


def _error_classes() -> dict[str, type[errors.HashDBError]]:
    out: dict[str, type[errors.HashDBError]] = {}
    pending: list[type[errors.HashDBError]] = [errors.HashDBError]
    while pending:
        cls = pending.pop()
        out.setdefault(cls.code, cls)
        pending.extend(cls.__subclasses__())
    return out


ERRORS = _error_classes()


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # Following a redirect would send the bearer key to wherever the answer points (and turn a
    # POST lookup into a GET): a redirect is an error the user fixes by naming the final URL.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def _shape(doc: Any, key: str, kind: type, what: str) -> Any:
    """doc[key] if doc is an object holding a `kind` there; else a one-line ServerError."""
    value = doc.get(key) if isinstance(doc, dict) else None
    if not isinstance(value, kind):
        raise ServerError(f"{what}: the server's answer is not a hashdb API answer (no {key!r})")
    return value


def query_item(query: Query) -> dict[str, Any]:
    """A Query as a lookup item, without its input (a local name)."""
    if len(query.hashes) == 1 and not query.frames and not query.derived and query.tmk is None:
        return hash_doc(query.hashes[0])
    item: dict[str, Any] = {}
    if query.hashes:
        item["hashes"] = [hash_doc(v) for v in query.hashes]
    if query.frames:
        item["frames"] = [frame_doc(f) for f in query.frames]
    if query.derived:
        item["derived"] = derived_json(query.derived)
    if query.tmk is not None:
        item["tmk"] = tmk.encode_text(query.tmk)
    return item


def submission_item(sub: Submission) -> dict[str, Any]:
    """A Submission as a submit item, without its input (a local name)."""
    item = query_item(Query("", sub.hashes, sub.frames, sub.derived, sub.tmk))
    item["labels"] = list(sub.labels)
    if sub.media_type != ("video" if sub.frames or sub.tmk is not None else "image"):
        # Only when the server cannot tell (a video's bare md5/sha256): servers from before
        # the field refuse it, and every other item means the same without it.
        item["media_type"] = sub.media_type
    if sub.incident is not None:
        item["incident"] = sub.incident
    if sub.reference is not None:
        item["reference"] = sub.reference
    if sub.keypoints is not None:
        item["keypoints"] = keypoints_text.encode_text(sub.keypoints)
    return item


def _batches(items: Sequence[Mapping[str, Any]], most: int = BATCH) -> Iterator[list[Mapping[str, Any]]]:
    batch: list[Mapping[str, Any]] = []
    size = 0
    for item in items:
        item_size = len(json.dumps(item))
        if batch and (len(batch) == most or size + item_size > BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += item_size
    if batch:
        yield batch


def frame_doc(frame: FrameHash) -> dict[str, Any]:
    doc: dict[str, Any] = {"pdq": frame.hash.hex, "t": frame.timestamp}
    if frame.hash.quality is not None:
        doc["quality"] = frame.hash.quality
    return doc


def hash_doc(value: HashValue) -> dict[str, Any]:
    doc: dict[str, Any] = {"signal": value.signal, "hash": value.hex}
    if value.quality is not None:
        doc["quality"] = value.quality
    return doc


class Client:
    def __init__(self, base_url: str, api_key: str | None = None, timeout: float = 60.0) -> None:
        parsed = urllib.parse.urlsplit(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise errors.InvalidInput(f"server URL must be http(s)://host[:port], got {base_url!r}")
        if parsed.path.rstrip("/").endswith("/v1"):
            # Every call adds /v1/...: with it in the base URL too, each answer is a bare 404.
            raise errors.InvalidInput(f"give the server's base URL, without /v1: got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self._derived: DerivedAccepted | None = None
        self._spec: Any = _UNASKED

    # the API, one method per operation ------------------------------------------------------

    def lookup(self, items: Sequence[Mapping[str, Any]], thresholds: Mapping[str, int] | None = None
               ) -> list[dict[str, Any]]:
        """POST /v1/lookup, in batches; one result per item, in order."""
        results: list[dict[str, Any]] = []
        for batch in _batches(items, self.batch_limit() if len(items) > 1 else BATCH):
            body: dict[str, Any] = {"items": batch}
            if thresholds:
                body["thresholds"] = dict(thresholds)
            chunk = _shape(self._call("POST", "/v1/lookup", body), "results", list, "POST /v1/lookup")
            if len(chunk) != len(body["items"]) or not all(isinstance(r, dict) for r in chunk):
                raise ServerError("POST /v1/lookup: the server answered another number of results than items sent")
            results.extend(chunk)
        return results

    def derived_accepted(self) -> DerivedAccepted:
        """The derived hashes the server takes in a lookup item, from its /openapi.json (asked
        once); OLDER_SERVER when the document does not say (or cannot be read: a proxy that
        serves only /v1), so that a lookup is never refused for hashes the server may not take."""
        if self._derived is None:
            self._derived = _derived_accepted(self._openapi()) or OLDER_SERVER
        return self._derived

    def takes_keypoints(self) -> bool:
        """Whether the server's submit items take an image's keypoints, as its /openapi.json
        says: servers from before them refuse the field, and the whole request with it."""
        return _takes_keypoints(self._openapi())

    def batch_limit(self) -> int:
        """Items a request may carry: the server's HASHDB_MAX_BATCH as its /openapi.json says,
        at most BATCH; BATCH when the document does not say. A server run with a lower limit
        refused every part of BATCH items, so a long `submit --server` or lookup failed whole."""
        return _batch_limit(self._openapi())

    def _openapi(self) -> Any:
        """The server's /openapi.json, asked once; None when it cannot be read."""
        if self._spec is _UNASKED:
            try:
                self._spec = self._call("GET", "/openapi.json")
            except errors.HashDBError:
                self._spec = None
        return self._spec

    def lookup_one(self, signal: str, hash_hex: str) -> dict[str, Any]:
        query = urllib.parse.urlencode({"signal": signal, "hash": hash_hex})
        doc = self._call("GET", f"/v1/lookup?{query}")
        _shape(doc, "matches", list, "GET /v1/lookup")
        return dict(doc)

    def submit(self, items: Sequence[Mapping[str, Any]], idempotency_key: str | None = None) -> list[dict[str, Any]]:
        """POST /v1/hashes. One request: the server refuses the whole batch if any item is bad."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        results = _shape(self._call("POST", "/v1/hashes", {"items": list(items)}, headers), "results", list,
                         "POST /v1/hashes")
        if len(results) != len(items) or not all(isinstance(r, dict) for r in results):
            raise ServerError("POST /v1/hashes: the server answered another number of results than items sent")
        return list(results)

    def retract(self, record_id: int, reason: str = "") -> dict[str, Any]:
        doc = self._call("DELETE", f"/v1/hashes/{int(record_id)}", {"reason": reason} if reason else None)
        return _record(doc, "DELETE /v1/hashes/{id}")

    def relabel(self, record_id: int, labels: Sequence[str]) -> dict[str, Any]:
        doc = self._call("PATCH", f"/v1/hashes/{int(record_id)}", {"labels": list(labels)})
        return _record(doc, "PATCH /v1/hashes/{id}")

    def feedback(self, record_id: int, verdict: str, note: str = "") -> dict[str, Any]:
        body: dict[str, Any] = {"verdict": verdict}
        if note:
            body["note"] = note
        doc = self._call("POST", f"/v1/hashes/{int(record_id)}/feedback", body)
        return _record(doc, "POST /v1/hashes/{id}/feedback")

    def export(self, since: str | None = None, limit: int = 1000) -> tuple[list[dict[str, Any]], str]:
        changes, cursor, _ = self.export_page(since, limit)
        return changes, cursor

    def export_page(self, since: str | None = None, limit: int = 1000,
                    keypoints: bool = False) -> tuple[list[dict[str, Any]], str, str | None]:
        """export, and the identity the server gives its feed (None from a server before it).
        `keypoints`: ask for image entries' stored keypoints (errors.NotShared where the server
        does not share them)."""
        params = {"limit": str(limit), **({"since": since} if since else {}),
                  **({"keypoints": "true"} if keypoints else {})}
        doc = self._call("GET", f"/v1/export?{urllib.parse.urlencode(params)}")
        changes = _shape(doc, "changes", list, "GET /v1/export")
        cursor = _shape(doc, "cursor", str, "GET /v1/export")
        feed = doc.get("feed")
        return changes, cursor, feed if isinstance(feed, str) and feed else None

    def stats(self) -> dict[str, Any]:
        doc = self._call("GET", "/v1/stats")
        if not isinstance(doc, dict):
            raise ServerError("GET /v1/stats: the server's answer is not a hashdb API answer")
        return doc

    def ready(self) -> bool:
        try:
            self._call("GET", "/readyz")
        except errors.HashDBError:
            return False
        return True

    # transport --------------------------------------------------------------------------------

    def _call(self, method: str, path: str, body: Any = None, headers: Mapping[str, str] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base_url + path, data=data, method=method)
        request.add_header("Accept", "application/json")
        request.add_header("User-Agent", USER_AGENT)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.api_key:
            request.add_header("Authorization", f"Bearer {self.api_key}")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with _OPENER.open(request, timeout=self.timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            with exc:
                if 300 <= exc.code < 400:
                    where = exc.headers.get("Location") or "another URL"
                    raise ServerError(f"{method} {path}: {self.base_url} redirected (HTTP {exc.code}) to {where!r}; "
                                      "not followed, so the API key goes nowhere else: use the final URL as the "
                                      "server") from None
                raise _api_error(exc.code, exc.read(), exc.headers.get("Retry-After")) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            hint = ""
            if isinstance(reason, ssl.SSLError) and self.base_url.startswith("https://"):
                hint = f" (does the server speak plain http? then use http://{self.base_url[len('https://'):]})"
            raise ServerError(f"cannot reach {self.base_url}: {reason}{hint}") from None
        try:
            return json.loads(payload)
        except ValueError:
            raise ServerError(f"{method} {path}: the server's answer is not JSON") from None


_UNASKED = object()


def _batch_limit(doc: Any) -> int:
    """The smaller of the items a lookup and a submit request may carry, as an OpenAPI document
    (spec.py's) says, at most BATCH; BATCH when it does not say."""
    try:
        schemas = doc["components"]["schemas"]
        most = [schemas[name]["properties"]["items"]["maxItems"] for name in ("LookupRequest", "SubmitRequest")]
    except (KeyError, TypeError):
        return BATCH
    if not all(type(n) is int and n >= 1 for n in most):
        return BATCH
    return min(BATCH, *(int(n) for n in most))


def _takes_keypoints(doc: Any) -> bool:
    try:
        forms = doc["components"]["schemas"]["SubmitItem"]["oneOf"]
        return any("keypoints" in form["properties"] for form in forms)
    except (KeyError, TypeError):
        return False


def _derived_accepted(doc: Any) -> DerivedAccepted | None:
    """What an OpenAPI document (spec.py's) says a lookup item's "derived" takes, or None."""
    try:
        schemas = doc["components"]["schemas"]
        fields = schemas["Derived"]["properties"]
        vias = fields["via"]["enum"]
        most = [form["properties"]["derived"]["maxItems"] for form in schemas["LookupItem"]["oneOf"]
                if "derived" in form.get("properties", {})]
    except (KeyError, TypeError, IndexError):
        return None
    if (len(most) != 1 or isinstance(most[0], bool) or not isinstance(most[0], int) or not isinstance(vias, list)
            or not all(isinstance(via, str) for via in vias)):
        return None
    # Never more than this version computes and checks itself (a misconfigured proxy's document).
    return DerivedAccepted(frozenset(vias) & frozenset(VIAS), min(most[0], MAX_DERIVED), "colours" in fields)


def _record(doc: Any, what: str) -> dict[str, Any]:
    _shape(doc, "id", int, what)
    _shape(doc, "status", str, what)
    return dict(doc)


def _api_error(status: int, payload: bytes, retry_after: str | None) -> errors.HashDBError:
    try:
        doc = json.loads(payload)
        code, message = str(doc["error"]["code"]), str(doc["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return ServerError(f"the server answered HTTP {status} without an API error body")
    cls = ERRORS.get(code)
    if cls is not None and issubclass(cls, (errors.RateLimited, errors.Busy)):
        return cls(message, int(retry_after) if retry_after and retry_after.isdigit() else 1)
    if cls is None or cls is errors.HashDBError:
        return ServerError(f"HTTP {status} {code}: {message}")
    return cls(message)


# What the CLI's server mode needs: domain values in, output.* documents out ------------------


def lookup_queries(client: Client, queries: Sequence[Query],
                   thresholds: Mapping[str, int] | None = None) -> list[dict[str, Any]]:
    """Look up Queries; each result is named with its query's local input. Derived hashes the
    server does not take (a lookup's windows, to a server before them; colour layouts, to one
    before those) are left out, and the rest matched as before: the server is asked what it
    takes (once a client) when a query carries any derived hash."""
    if any(q.derived for q in queries):
        accepted = client.derived_accepted()
        queries = [accepted.fit(q) for q in queries]
    results = client.lookup([query_item(q) for q in queries], thresholds)
    for query, result in zip(queries, results):
        result["input"] = query.input
    return results


class PartlySubmitted(errors.HashDBError):
    """A submit sent in several requests was refused by one after the first: the inputs of
    the requests before it were stored; `results` are the server's answers for them."""

    def __init__(self, cause: errors.HashDBError, submitted: int, results: list[dict[str, Any]]) -> None:
        super().__init__(f"{cause.message}; the first {submitted} inputs were submitted, the rest were not")
        self.code = cause.code
        self.submitted = submitted
        self.results = results


# A part refused with "come back later" (429 rate_limited; 503 busy, database_unavailable or
# index_stale: nothing of it was stored, or, lost during COMMIT, stored and then answered as
# duplicates when sent again) is sent again after the server's Retry-After, at most this many
# times, and only while it asks for no more than MAX_WAIT_S: a longer wait is a refusal to say.
# So a part waits at most RETRIES * MAX_WAIT_S (3 minutes) before the error is reported.
RETRIES = 6
MAX_WAIT_S = 30
RETRYABLE = (errors.RateLimited, errors.Busy, errors.IndexStale)


def _waited_out(send: Callable[[], list[dict[str, Any]]], sleep: Callable[[float], None],
                on_wait: Callable[[errors.HashDBError, int], None] | None) -> list[dict[str, Any]]:
    for attempt in range(RETRIES + 1):
        try:
            return send()
        except RETRYABLE as exc:
            wait = max(1, int(getattr(exc, "retry_after", 1)))
            if attempt == RETRIES or wait > MAX_WAIT_S:
                raise
            if on_wait is not None:
                on_wait(exc, wait)
            sleep(wait)
    raise AssertionError("unreachable")


def submit_submissions(client: Client, submissions: Sequence[Submission], idempotency_key: str | None = None,
                       sleep: Callable[[float], None] = time.sleep,
                       on_wait: Callable[[errors.HashDBError, int], None] | None = None) -> list[dict[str, Any]]:
    """Submit in requests of at most BATCH items and BATCH_BYTES (each one all-or-nothing on the
    server, so a batch over the server's limit is not); a part the server asks to send later is
    waited out (RETRIES, MAX_WAIT_S; `on_wait` is told); PartlySubmitted, carrying the stored
    parts' results, when a part after the first is refused."""
    results: list[dict[str, Any]] = []
    if any(s.derived for s in submissions):
        accepted = client.derived_accepted()
        submissions = [accepted.fit_submission(s) for s in submissions]
    if any(s.keypoints is not None for s in submissions) and not client.takes_keypoints():
        # Left out, as derived hashes a server does not know are: the hashes are still shared.
        submissions = [dataclasses.replace(s, keypoints=None) for s in submissions]
    items = [submission_item(s) for s in submissions]
    batches = list(_batches(items, client.batch_limit() if len(items) > 1 else BATCH))
    done = 0
    for n, batch in enumerate(batches):
        key = idempotency_key if idempotency_key is None or len(batches) == 1 else f"{idempotency_key}.{n}"
        try:
            answers = _waited_out(functools.partial(client.submit, batch, key), sleep, on_wait)
        except errors.HashDBError as exc:
            if done:
                raise PartlySubmitted(exc, done, results) from exc
            raise
        for sub, result in zip(submissions[done:done + len(batch)], answers):
            result["input"] = sub.input
            results.append(result)
        done += len(batch)
    return results


def feed_entry(doc: Mapping[str, Any]) -> FeedEntry:
    """The inverse of output.feed_json."""
    try:
        frames = tuple(FrameHash(n, float(f.get("t") or 0.0), HashValue("pdq", f["pdq"], f.get("quality")))
                       for n, f in enumerate(doc.get("frames") or []))
        return FeedEntry(doc["seq"], doc["kind"], doc["id"], doc["signal"], doc["hash"], doc["quality"],
                         doc["media_type"], tuple(doc["labels"]), doc["status"], doc["incident"], doc["created_at"],
                         doc["at"], frames, derived_from_json(doc.get("derived"), feed=True),
                         tmk.stored(tmk.parse_text(doc["tmk"])) if doc.get("tmk") is not None else None,
                         Votes(int(doc["agree"]), int(doc["disagree"]), int(doc["false_positive"]))
                         if "agree" in doc else None,
                         keypoints_text.decode_text(doc["keypoints"]) if doc.get("keypoints") is not None else None)
    except (KeyError, TypeError, AttributeError, ValueError, errors.HashDBError):
        raise ServerError("GET /v1/export: a change in the server's answer is not a hashdb feed entry") from None


class RemoteFeed:
    """The server's change feed with HashDB.export's signature (formats.FeedSource). The
    server decides who is asking from the API key, so `actor` is not used."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._feed: str | None = None

    def export(self, actor: Principal | None, since: str | None = None, limit: int = 1000,
               keypoints: bool = False) -> tuple[list[FeedEntry], str]:
        docs, cursor, self._feed = self.client.export_page(since, limit, keypoints)
        return [feed_entry(d) for d in docs], cursor

    def feed_identity(self) -> str | None:
        return self._feed


# formats.write_export asks for an actor; against a server the API key decides who is asking.
KEY_DECIDES = Principal(0, "(the API key's organisation)", "consumer")
