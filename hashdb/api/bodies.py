"""Request documents -> domain values (Query, Submission, ...). Shapes only: every rule about
what may be shared or seen stays in the service. hashdb/api/spec.py describes the same shapes."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from flask import request as flask_request
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import RequestEntityTooLarge, UnsupportedMediaType
from werkzeug.wrappers import Request

from hashdb.api import jsonbody
from hashdb.errors import HashDBError, InvalidHash, InvalidInput, UnknownSignal
from hashdb.hashing import tmk
from hashdb.hashing.derived import derived_from_json
from hashdb.hashing.registry import parse_hash
from hashdb.trust import policy
from hashdb.types import DerivedHash, FrameHash, HashValue, PdqBatch, Query, Submission

MAX_INPUT = 1024
MAX_HASHES_PER_ITEM = 64
MAX_FRAMES_PER_ITEM = 20_000
MAX_IDEMPOTENCY_KEY = 200

HASH_FIELDS = {"signal", "hash", "quality"}
HASH_REQUIRED = frozenset({"signal", "hash"})
HASH_ITEM_FIELDS = {"input"} | HASH_FIELDS
MEDIA_FIELDS = {"hashes", "frames", "derived", "tmk"}
# "keypoints": an image's stored keypoints, submitted only. A lookup's need the file's pixels,
# which never leave the platform that hashes it, so a lookup item has no such field.
SHARING_FIELDS = {"labels", "incident", "reference", "media_type", "keypoints"}
MEDIA_TYPES = ("image", "video")
LOOKUP_FIELDS = {"items", "thresholds"}
PDQ_HEX = 64
HEX_DIGITS = "0123456789abcdef"


def _broken_body_errors() -> tuple[type[Exception], ...]:
    try:
        from gunicorn.http.errors import ParseException
    except ImportError:  # served by another WSGI server
        return (OSError,)
    return (OSError, ParseException)


_BROKEN_BODY = _broken_body_errors()


def json_body(optional: bool = False, req: Request | None = None) -> dict[str, Any]:
    """The request's (`req`, else Flask's current one) JSON object; an empty body is `{}` when `optional`."""
    request = flask_request if req is None else req
    try:
        data = request.get_data(cache=False)
        limit = request.max_content_length
        if request.content_length is None and limit is not None and len(data) >= limit:
            # Werkzeug cuts a chunked body at the limit without a word. Whether more follows is
            # asked of the server's stream: Werkzeug's own refuses any read at the limit, which
            # made a chunked body of exactly the limit a 413 (one with a length passes).
            if request.environ["wsgi.input"].read(1):
                raise RequestEntityTooLarge()
    except _BROKEN_BODY:
        # The server's reader refusing a chunked body's framing (a size line of "zz" or "-2", a
        # chunk without its CRLF), or the client gone mid-body: answered 500 before.
        raise InvalidInput("the request body is malformed or incomplete (a chunked body's framing?)") from None
    if optional and not data:
        return {}
    if request.mimetype != "application/json":
        raise UnsupportedMediaType("send the body as Content-Type: application/json")
    encoding = request.headers.get("Content-Encoding")
    if encoding is not None and encoding.strip().lower() not in ("", "identity"):
        # Not decoded here (a small gzip body can inflate past any size limit): a compressed
        # body read as JSON was answered 400 "not UTF-8", as if the client's JSON were broken.
        raise UnsupportedMediaType(f"Content-Encoding {encoding.strip()[:32]!r} is not accepted: send the JSON "
                                   "body uncompressed")
    doc = jsonbody.loads(data)
    if not isinstance(doc, dict):
        raise InvalidInput("request body must be a JSON object")
    return doc


def fields(doc: Mapping[str, Any], where: str, allowed: set[str], required: Collection[str] = ()) -> None:
    keys = doc.keys()
    if keys <= allowed and None not in doc.values() and all(name in keys for name in required):
        return  # the usual case, checked without building the lists the messages need
    unknown = sorted(set(doc) - allowed)
    if unknown:
        raise InvalidInput(f"{where}: unknown field {unknown[0][:64]!r}")
    missing = sorted(set(required) - set(doc))
    if missing:
        raise InvalidInput(f"{where}: missing field {missing[0]!r}")
    empty = sorted(k for k, v in doc.items() if v is None)
    if empty:
        # Leave a field out instead: null is not a value any field takes.
        raise InvalidInput(f"{where}.{empty[0]} is null")


def items(doc: Mapping[str, Any], max_batch: int) -> list[dict[str, Any]]:
    raw = doc.get("items")
    if not isinstance(raw, list):
        raise InvalidInput("items must be an array")
    if not raw:
        raise InvalidInput("items is empty")
    if len(raw) > max_batch:
        raise InvalidInput(f"items has {len(raw)} entries; the limit is {max_batch} per request")
    for n, item in enumerate(raw):
        if not isinstance(item, dict):
            raise InvalidInput(f"items[{n}] must be an object")
    return raw


def text(value: object, where: str, limit: int = policy.MAX_TEXT) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{where} must be a string")
    policy.check_text(where, value, limit)
    return value


def quality(value: object, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{where}.quality must be an integer from 0 to 100")
    return value


def hash_value(item: Mapping[str, Any], where: str) -> HashValue:
    return _located(where, item.get("signal"), item.get("hash"), quality(item.get("quality"), where))


def _located(where: str, signal: object, value: object, score: int | None) -> HashValue:
    """parse_hash, its error naming the item: in a batch of 1,000 "pdq hash must be 64 hex
    characters" alone does not say which."""
    try:
        return parse_hash(signal, value, score)
    except (InvalidHash, UnknownSignal) as exc:
        raise type(exc)(f"{where}: {exc.message}") from exc


def _objects(raw: object, where: str, limit: int) -> list[tuple[str, dict[str, Any]]]:
    """A non-empty array of at most `limit` objects at `where`, each with its own location."""
    if not isinstance(raw, list) or not raw:
        raise InvalidInput(f"{where} must be a non-empty array")
    if len(raw) > limit:
        raise InvalidInput(f"{where} has more than {limit} entries")
    out = []
    for n, entry in enumerate(raw):
        here = f"{where}[{n}]"
        if not isinstance(entry, dict):
            raise InvalidInput(f"{here} must be an object")
        out.append((here, entry))
    return out


def hash_list(raw: object, where: str) -> tuple[HashValue, ...]:
    out = []
    for here, entry in _objects(raw, f"{where}.hashes", MAX_HASHES_PER_ITEM):
        fields(entry, here, HASH_FIELDS, {"signal", "hash"})
        out.append(hash_value(entry, here))
    return tuple(out)


def frame_list(raw: object, where: str) -> tuple[FrameHash, ...]:
    out = []
    for n, (here, frame) in enumerate(_objects(raw, f"{where}.frames", MAX_FRAMES_PER_ITEM)):
        fields(frame, here, {"pdq", "quality", "t"}, {"pdq"})
        t = frame.get("t", 0.0)
        if isinstance(t, bool) or not isinstance(t, (int, float)) or t < 0:
            raise InvalidInput(f"{here}.t must be a number of seconds >= 0")
        out.append(FrameHash(n, float(t), _located(here, "pdq", frame["pdq"], quality(frame.get("quality"), here))))
    return tuple(out)


Media = tuple[str, tuple[HashValue, ...], tuple[FrameHash, ...], tuple[DerivedHash, ...], bytes | None]


def _media(item: Mapping[str, Any], where: str, extra: set[str]) -> Media:
    """An item is one hash ({signal, hash}) or one file's hashes ({hashes} and/or {frames}
    and/or a video's {tmk})."""
    if "signal" in item or "hash" in item:
        fields(item, where, HASH_ITEM_FIELDS | extra if extra else HASH_ITEM_FIELDS, HASH_REQUIRED)
        value = hash_value(item, where)
        default = f"{item['signal']}:{item['hash']}"
        return default, (value,), (), (), None
    fields(item, where, {"input"} | MEDIA_FIELDS | extra)
    if "hashes" not in item and "frames" not in item and "tmk" not in item:
        raise InvalidInput(f"{where}: give signal and hash, or hashes and/or frames and/or tmk")
    hashes = hash_list(item["hashes"], where) if "hashes" in item else ()
    frames = frame_list(item["frames"], where) if "frames" in item else ()
    features = _tmk(item["tmk"], f"{where}.tmk") if "tmk" in item else None
    return where, hashes, frames, derived_from_json(item.get("derived"), f"{where}.derived"), features


def _tmk(raw: object, where: str) -> bytes:
    try:
        return tmk.parse_text(raw).data
    except InvalidHash as exc:
        raise InvalidHash(f"{where}: {exc.message}") from exc


def _keypoints(raw: object, where: str) -> bytes:
    # Imported only for an item that has some: keypoints.py loads OpenCV.
    from hashdb.hashing import keypoints_text

    return keypoints_text.decode_text(raw, where)


def _input(item: Mapping[str, Any], default: str, where: str) -> str:
    given = text(item.get("input"), f"{where}.input", MAX_INPUT)
    return given if given is not None else default


def lookup_request(doc: Mapping[str, Any], max_batch: int) -> tuple[list[Query], dict[str, int]]:
    fields(doc, "request", {"items", "thresholds"}, {"items"})
    queries = []
    for n, item in enumerate(items(doc, max_batch)):
        where = f"items[{n}]"
        default, hashes, frames, derived, features = _media(item, where, set())
        queries.append(Query(_input(item, default, where), hashes, frames, derived, features))
    thresholds = doc.get("thresholds", {})
    if not isinstance(thresholds, dict):
        raise InvalidInput("thresholds must be an object of signal -> integer")
    return queries, thresholds


def pdq_batch(doc: Mapping[str, Any], max_batch: int) -> tuple[PdqBatch, dict[str, Any]] | None:
    """The request as (PdqBatch, thresholds) when it is the common batch: every item a plain PDQ
    ({"signal": "pdq", "hash": ...}, with input and quality or without) that lookup_request
    accepts. Anything else, including every malformed request, is None: lookup_request then
    parses it and raises its error, so this path never chooses an error and never accepts what
    lookup_request refuses (tests/api/test_pdq_batch.py compares the two)."""
    raw = doc.get("items")
    thresholds = doc.get("thresholds", {})
    if (type(raw) is not list or not raw or len(raw) > max_batch or type(thresholds) is not dict
            or not doc.keys() <= LOOKUP_FIELDS):
        return None
    inputs: list[str] = []
    hexes: list[str] = []
    qualities: list[int | None] = []
    for item in raw:
        # Exact types: what the JSON reader builds, and no bool passes for an int.
        if type(item) is not dict or item.get("signal") != "pdq" or not item.keys() <= HASH_ITEM_FIELDS:
            return None
        value = item.get("hash")
        if type(value) is not str or len(value) != PDQ_HEX:
            return None
        given = item.get("input")
        if given is None:
            if "input" in item:
                return None
            given = "pdq:" + value
        # ASCII without NUL passes policy.check_text; other text takes the full check.
        elif type(given) is not str or len(given) > MAX_INPUT or not given.isascii() or "\x00" in given:
            return None
        score = item.get("quality")
        if score is None:
            if "quality" in item:
                return None
        elif type(score) is not int or not 0 <= score <= 100:
            return None
        inputs.append(given)
        hexes.append(value)
        qualities.append(score)
    # Every hash's digits checked in one pass over them all (each is PDQ_HEX long).
    joined = "".join(hexes)
    if not joined.isascii():
        return None
    lowered = joined.lower()
    if lowered.strip(HEX_DIGITS):  # what is left once hex digits are stripped from both ends
        return None
    if lowered != joined:
        hexes = [lowered[i:i + PDQ_HEX] for i in range(0, len(lowered), PDQ_HEX)]
    return PdqBatch(tuple(inputs), tuple(hexes), tuple(qualities)), thresholds


def submit_request(doc: Mapping[str, Any], max_batch: int,
                   check_labels: Callable[[Sequence[object]], tuple[str, ...]] | None = None) -> list[Submission]:
    """`check_labels`: the taxonomy's check, so that a refused label names its item, as a
    refused hash does (the service checks them again)."""
    fields(doc, "request", {"items"}, {"items"})
    out = []
    for n, item in enumerate(items(doc, max_batch)):
        where = f"items[{n}]"
        default, hashes, frames, derived, features = _media(item, where, SHARING_FIELDS)
        labels = item.get("labels")
        if not isinstance(labels, list):
            raise InvalidInput(f"{where}.labels must be an array of label ids")
        if check_labels is not None:
            try:
                check_labels(labels)
            except HashDBError as exc:
                raise type(exc)(f"{where}: {exc.message}") from None
        kind = media_type(item, where, bool(frames or features))
        stored = _keypoints(item["keypoints"], where) if "keypoints" in item else None
        if stored is not None and kind != "image":
            raise InvalidInput(f"{where}.keypoints are an image's, but the item is a video's")
        out.append(Submission(
            input=_input(item, default, where), labels=tuple(labels), hashes=hashes, frames=frames,
            media_type=kind, derived=derived, tmk=features, keypoints=stored,
            incident=text(item.get("incident"), f"{where}.incident"),
            reference=text(item.get("reference"), f"{where}.reference"),
        ))
    return out


def media_type(item: Mapping[str, Any], where: str, has_video_parts: bool) -> str:
    """What kind of file a submitted item's hashes are of. Frames or a tmk say video; a bare md5
    or sha256 says nothing, so the item may (pytx's video_md5 and video_sha256 lines)."""
    given = item.get("media_type")
    if given is None:
        return "video" if has_video_parts else "image"
    if given not in MEDIA_TYPES:
        raise InvalidInput(f"{where}.media_type must be image or video, got {str(given)[:64]!r}")
    if given == "image" and has_video_parts:
        raise InvalidInput(f"{where}.media_type is image, but frames and tmk are a video's")
    return str(given)


def idempotency_key() -> str | None:
    key = flask_request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY or not key.isascii() or not key.isprintable():
        raise InvalidInput(f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters")
    return key


def query_int(name: str, default: int, low: int = 0, high: int = 999_999_999,
              args: MultiDict[str, str] | None = None) -> int:
    """An integer query parameter from low to high; the message says the range it takes."""
    raw = (flask_request.args if args is None else args).get(name)
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or len(raw) > 9 or not low <= int(raw) <= high:
        raise InvalidInput(f"{name} must be an integer from {low} to {high}")
    return int(raw)


def query_bool(name: str, args: MultiDict[str, str] | None = None) -> bool:
    """A true/false query parameter (absent: false); any other spelling is a 400, not a guess."""
    raw = (flask_request.args if args is None else args).get(name)
    if raw is None or raw == "false":
        return False
    if raw == "true":
        return True
    raise InvalidInput(f"{name} must be true or false")


def query_args(allowed: set[str], args: MultiDict[str, str] | None = None) -> None:
    args = flask_request.args if args is None else args
    unknown = sorted(set(args) - allowed)
    if unknown:
        raise InvalidInput(f"unknown query parameter {unknown[0][:64]!r}")
    for name in args:
        if len(args.getlist(name)) > 1:
            raise InvalidInput(f"query parameter {name!r} given twice")


def lookup_query(args: MultiDict[str, str] | None = None) -> Query:
    """GET /v1/lookup?signal=pdq&hash=...[&quality=N]: the input echoed is `signal:hash`."""
    args = flask_request.args if args is None else args
    query_args({"signal", "hash", "quality"}, args)
    signal, value = args.get("signal"), args.get("hash")
    if signal is None or value is None:
        raise InvalidInput("give the query parameters signal and hash")
    given = query_int("quality", -1, 0, 100, args)
    parsed = parse_hash(signal, value, None if given < 0 else given)
    return Query(f"{signal}:{value}", (parsed,))


def retract_reason(doc: Mapping[str, Any]) -> str:
    fields(doc, "request", {"reason"})
    return text(doc.get("reason"), "reason") or ""


def relabel_request(doc: Mapping[str, Any]) -> tuple[str, ...]:
    fields(doc, "request", {"labels"}, {"labels"})
    labels = doc["labels"]
    if not isinstance(labels, list):
        raise InvalidInput("labels must be an array of label ids")
    return tuple(labels)


def feedback_request(doc: Mapping[str, Any]) -> tuple[str, str]:
    fields(doc, "request", {"verdict", "note"}, {"verdict"})
    return policy.check_verdict(doc["verdict"]), text(doc.get("note"), "note", policy.MAX_NOTE) or ""
