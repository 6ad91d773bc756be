"""The OpenAPI 3.1 document the server publishes at /openapi.json. Hand-written next to the
views and checked against the app by tests/api/test_spec.py (same routes; responses validate)."""

from __future__ import annotations

from typing import Any

from hashdb.api.bodies import MAX_FRAMES_PER_ITEM, MAX_HASHES_PER_ITEM, MAX_IDEMPOTENCY_KEY, MAX_INPUT
from hashdb.config import Settings
from hashdb.hashing import tmk
from hashdb.hashing.derived import MAX_DERIVED, VIAS
from hashdb.hashing.registry import get_signal, signal_names
from hashdb.service import MAX_EXPORT_PAGE, MAX_KEYPOINT_EXPORT_PAGE
from hashdb.trust import policy
from hashdb.trust.incidents import MAX_DESCRIPTION
from hashdb.trust.taxonomy import MAX_LABELS
from hashdb.types import STATUSES, VERDICTS

Schema = dict[str, Any]


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(properties: dict[str, Schema], required: tuple[str, ...] = (), **extra: Any) -> Schema:
    out: Schema = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        out["required"] = list(required)
    out.update(extra)
    return out


def string(max_length: int | None = None, **extra: Any) -> Schema:
    out: Schema = {"type": "string", **extra}
    if max_length is not None:
        out["maxLength"] = max_length
    return out


HEX = "^[0-9A-Fa-f]+$"
QUALITY: Schema = {"type": "integer", "minimum": 0, "maximum": 100}
COUNTS: Schema = {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}}


def hex_of(length: int) -> str:
    return f"^[0-9A-Fa-f]{{{length}}}$"


def hash_lengths() -> dict[str, int]:
    """Hex characters per signal: 16 for phash and dhash, 32 md5, 64 pdq and sha256."""
    return {name: get_signal(name).hex_length() for name in signal_names()}


def per_signal(submit: bool = False) -> list[Schema]:
    """`hash` must have its signal's length (and, in a submission, a PDQ its quality)."""
    rules: list[Schema] = [{"if": {"properties": {"signal": {"const": name}}, "required": ["signal"]},
                            "then": {"properties": {"hash": {"pattern": hex_of(length)}}}}
                           for name, length in hash_lengths().items()]
    if submit:
        rules.append({"if": {"properties": {"signal": {"const": "pdq"}}, "required": ["signal"]},
                      "then": {"required": ["quality"]}})
    return rules


def any_length() -> str:
    return "^(" + "|".join(hex_of(n)[1:-1] for n in sorted(set(hash_lengths().values()))) + ")$"


def schemas(max_batch: int) -> dict[str, Schema]:
    from hashdb.hashing.keypoints_text import max_text  # loads OpenCV: only when the document is built

    ceilings = Settings().threshold_ceilings
    single_hash = {
        "input": string(MAX_INPUT, description="Echoed back; default `signal:hash`."),
        "signal": string(enum=list(signal_names())),
        "hash": string(minLength=16, maxLength=64, pattern=any_length(),
                       description="Hex of the signal's length: " + ", ".join(
                           f"{name} {length}" for name, length in hash_lengths().items()) + "."),
        "quality": QUALITY,
    }
    media = {
        "input": string(MAX_INPUT, description="Echoed back; default `items[N]`."),
        "hashes": {"type": "array", "items": ref("Hash"), "minItems": 1, "maxItems": MAX_HASHES_PER_ITEM},
        "frames": {"type": "array", "items": ref("Frame"), "minItems": 1, "maxItems": MAX_FRAMES_PER_ITEM},
        "derived": {"type": "array", "items": ref("Derived"), "maxItems": MAX_DERIVED,
                    "description": "PDQs of parts of the image, as `hashdb hash --json` prints them: its "
                                   "content region (trimmed, content), turned upright (deskewed), centred crops "
                                   "(cropped, stored side only), copies with one corner covered (masked) and "
                                   "windows for an off-centre crop (window, lookup side only: never stored). "
                                   "Servers before windows took 17 and no window; a client reads this limit and "
                                   "the kinds from this document."},
        # The exact length is in the description, not a minLength: a 351,128-character string is
        # past what schema-driven generators (Hypothesis, under the fuzz test) can produce.
        "tmk": string(pattern="^[A-Za-z0-9+/]+={0,2}$",
                      description=f"A video's TMK+PDQF hash: its .tmk file ({tmk.SIZE} bytes, as Meta's "
                                  f"tmk-hash-video and tmkpy write it) in standard base64, exactly "
                                  f"{tmk.TEXT_LENGTH} characters; anything else is a 400."),
    }
    sharing = {
        "labels": {"type": "array", "items": string(64), "minItems": 1, "maxItems": MAX_LABELS,
                   "description": "Label ids from the taxonomy."},
        "incident": string(policy.MAX_TEXT),
        "reference": string(policy.MAX_TEXT, description="Your own reference id for this content."),
        "media_type": string(enum=["image", "video"],
                             description="What file the hashes are of: by default video when the item has "
                                         "frames or a tmk, else image. Say video for a video file's bare md5 "
                                         "or sha256 (pytx's video_md5, video_sha256), so partners' feeds carry "
                                         "it as one; image with frames or a tmk is a 400."),
        "keypoints": string(max_text(), pattern="^[A-Za-z0-9+/]+={0,2}$",
                            description="An image's stored keypoints, as `hashdb hash --keypoints --json` prints them "
                                        "(standard base64): stored with the item's PDQ record, to find crops "
                                        "of it; never served back, and exported only where the operator shares "
                                        "them (GET /v1/export `keypoints`). Malformed is a 400. "
                                        "Submit only: a lookup's keypoints need the file itself."),
    }
    media_forms = [{"required": ["hashes"]}, {"required": ["frames"]}, {"required": ["tmk"]}]
    return {
        "Error": obj({"error": obj({"code": string(), "message": string()}, ("code", "message"))}, ("error",)),
        "Hash": obj({k: single_hash[k] for k in ("signal", "hash", "quality")}, ("signal", "hash"),
                    allOf=per_signal()),
        "Frame": obj({"pdq": string(minLength=64, maxLength=64, pattern=HEX), "quality": QUALITY,
                      "t": {"type": "number", "minimum": 0, "description": "Seconds from the start."}},
                     ("pdq",)),
        "Derived": obj({"via": string(enum=list(VIAS)), "pdq": string(minLength=64, maxLength=64, pattern=HEX),
                        "quality": QUALITY,
                        "share": {"type": "number", "exclusiveMinimum": 0, "maximum": 1,
                                  "description": "The region's area over the image's."},
                        "colours": string(pattern="^([0-9a-f]{6}){9}$",
                                          description="The region's colour layout: the mean colour of each "
                                                      "cell of a 3 x 3 split, rrggbb each, row by row.")}, ("via", "pdq")),
        "LookupItem": {"oneOf": [
            obj(single_hash, ("signal", "hash"), title="one hash", allOf=per_signal()),
            obj(media, title="one file's hashes and/or a video's frames", anyOf=media_forms),
        ]},
        "LookupRequest": obj({
            "items": {"type": "array", "items": ref("LookupItem"), "minItems": 1, "maxItems": max_batch,
                      "description": "An item carrying a pdq (whole or derived) is matched by PDQ and gets no "
                                     "phash/dhash matches; an item of 64-bit hashes alone is matched by them."},
            "thresholds": obj({s: {"type": "integer", "minimum": 0, "maximum": ceilings[s]} for s in ceilings},
                              description="Tighter per-signal thresholds (never looser than the default)."),
        }, ("items",)),
        "Match": obj({
            "id": {"type": "integer"}, "signal": string(),
            "distance": {"type": "integer", "minimum": 0,
                         "description": "Bits apart (Hamming signals): of the hashes that matched, so for "
                                        "via masked the corner-covered copies', not the whole images'."},
            "score": {"type": "number", "maximum": 1,
                      "description": "tmk only, instead of distance: the level-2 similarity, higher is closer."},
            "labels": {"type": "array", "items": string()},
            "agree": {"type": "integer"}, "disagree": {"type": "integer"}, "support": {"type": "integer"},
            "false_positive": {"type": "integer", "description": "Members' reports that the record is not TVEC."},
            "status": string(enum=list(STATUSES)),
            "video": obj({"query_pct": {"type": "number"}, "stored_pct": {"type": "number"},
                          "rule": string(enum=["vpdq", "contained"],
                                         description="vpdq: query_pct of this video's samples are known; "
                                                     "contained: the stored video is inside this longer one.")},
                         ("query_pct", "stored_pct")),
            "source": obj({"name": string(description="The source's URL or name."),
                           "id": {"type": "integer", "description": "The record's id at the source."}},
                          ("name", "id"), description="A mirror's record: where it came from; send "
                                                      "feedback there, by this id."),
            "via": string(enum=list(VIAS), description="The derived hash the match needed, if any."),
        }, ("id", "signal", "labels", "agree", "disagree", "false_positive", "support", "status"),
            oneOf=[{"required": ["distance"]}, {"required": ["score"]}]),
        "LookupResult": obj({
            "input": string(), "matched": {"type": "boolean"},
            "matches": {"type": "array", "items": ref("Match")},
            "flags": {"type": "array", "items": string(enum=["low_quality"]),
                      "description": "low_quality: no PDQ of the query reaches the quality a shared PDQ needs "
                                     "(a match through PDQ is weak evidence)."},
        }, ("input", "matched", "matches")),
        "LookupResponse": obj({"results": {"type": "array", "items": ref("LookupResult")}}, ("results",)),
        "SubmitItem": {"oneOf": [
            obj({**single_hash, **sharing}, ("signal", "hash", "labels"), title="one hash",
                allOf=per_signal(submit=True)),
            obj({**media, **sharing}, ("labels",), title="one file's hashes and/or a video's frames",
                anyOf=media_forms),
        ]},
        "SubmitRequest": obj({
            "items": {"type": "array", "items": ref("SubmitItem"), "minItems": 1, "maxItems": max_batch},
        }, ("items",)),
        "SubmitResult": obj({
            "input": string(), "ids": {"type": "array", "items": {"type": "integer"}},
            "status": string(enum=list(STATUSES)), "duplicate": {"type": "boolean"},
            "skipped": {"type": "array", "items": string()},
            "duplicate_ids": {"type": "array", "items": {"type": "integer"},
                              "description": "This input's hashes that were already shared, kept as they were."},
            "notes": {"type": "array", "items": string(),
                      "description": "What a duplicate did not change (its labels, incident)."},
        }, ("input", "ids", "status", "duplicate")),
        "SubmitResponse": obj({"results": {"type": "array", "items": ref("SubmitResult")}}, ("results",)),
        "Record": obj({
            "id": {"type": "integer"}, "signal": string(), "status": string(enum=list(STATUSES)),
            "labels": {"type": "array", "items": string()}, "agree": {"type": "integer"},
            "disagree": {"type": "integer"}, "false_positive": {"type": "integer"}, "support": {"type": "integer"},
            "precision": {"type": "number", "minimum": 0, "maximum": 1,
                          "description": "(agree + 1) / (votes + 2): how often members find it right"},
        }, ("id", "signal", "status", "labels", "agree", "disagree", "false_positive", "support", "precision")),
        "RelabelRequest": obj({"labels": {"type": "array", "items": string(), "minItems": 1}}, ("labels",)),
        "RetractRequest": obj({"reason": string(policy.MAX_TEXT)}),
        "FeedbackRequest": obj({"verdict": string(enum=list(VERDICTS)), "note": string(policy.MAX_NOTE)},
                               ("verdict",)),
        "Change": obj({
            "seq": {"type": "integer"},
            "kind": string(enum=["add", "labels", "status", "retract"],
                           description="A vote is a `status` change whose status may be unchanged: "
                                       "it carries the new counts."),
            "id": {"type": "integer"}, "signal": string(), "hash": string(),
            "quality": {"type": ["integer", "null"]}, "media_type": string(enum=["image", "video"]),
            "labels": {"type": "array", "items": string()}, "status": string(enum=list(STATUSES)),
            "incident": {"type": ["string", "null"],
                         "description": "As this change left the record, as are its labels, status, quality "
                                        "and media type: a hash its member shares again after retracting it "
                                        "may come back under another incident."},
            "created_at": string(), "at": string(),
            "frames": {"type": "array", "items": obj({"pdq": string(), "quality": {"type": ["integer", "null"]},
                                                      "t": {"type": "number", "minimum": 0}},
                                                     ("pdq", "quality", "t"))},
            # `via` any string: a newer hashdb may derive kinds this one does not know.
            "derived": {"type": "array", "items": obj({"via": string(), "pdq": string(),
                                                       "quality": {"type": ["integer", "null"]},
                                                       "share": {"type": "number"}, "colours": string()},
                                                      ("via", "pdq", "quality"))},
            "tmk": string(description="A tmk record's .tmk file in base64; `hash` is its sha256."),
            "keypoints": string(description="An image PDQ record's stored keypoints (standard base64, as a "
                                            "submit item's), only when asked for with `keypoints=true`: what "
                                            "lets a mirror find crops of the picture."),
            **{name: {"type": "integer", "minimum": 0,
                      "description": "The record's votes when the feed was read (absent from older servers' "
                                     "feeds); a mirror answers with them."} for name in VERDICTS},
        }, ("seq", "kind", "id", "signal", "hash", "quality", "media_type", "labels", "status", "incident",
            "created_at", "at")),
        "ExportResponse": obj({"changes": {"type": "array", "items": ref("Change")},
                               "cursor": string(description="Pass as `since` for the next page."),
                               "feed": string(description="This database's feed, the same under any URL it is "
                                                          "reached by and new with a new database: a mirror "
                                                          "syncing it under a second URL, or a replaced "
                                                          "database behind the same URL, is told so, instead of "
                                                          "holding records twice or mixing two databases.")},
                              ("changes", "cursor", "feed")),
        "Stats": obj({k: COUNTS for k in ("signal", "status", "month", "label")},
                     ("signal", "status", "month", "label")),
        "Status": obj({"status": string()}, ("status",)),
        "IncidentRequest": obj({"name": string(policy.MAX_TEXT, minLength=1),
                                "description": string(MAX_DESCRIPTION)}, ("name",)),
        "Incident": obj({
            "id": {"type": "integer"}, "name": string(), "description": string(),
            "status": string(enum=["open", "closed"]), "opened_at": string(),
            "closed_at": {"type": ["string", "null"]},
        }, ("id", "name", "description", "status", "opened_at", "closed_at")),
    }


def error(description: str, **headers: str) -> Schema:
    out: Schema = {"description": description,
                   "content": {"application/json": {"schema": ref("Error")}}}
    if headers:
        out["headers"] = {name: {"description": text, "schema": {"type": "string"}} for name, text in headers.items()}
    return out


def ok(schema: str, description: str = "OK") -> Schema:
    return {"description": description, "content": {"application/json": {"schema": ref(schema)}}}


def body(schema: str, required: bool = True) -> Schema:
    return {"required": required, "content": {"application/json": {"schema": ref(schema)}}}


def authed(summary: str, responses: dict[str, Schema], **extra: Any) -> Schema:
    """An operation under /v1: bearer auth, and the errors every /v1 operation can give."""
    common = {
        "400": error("Malformed request: bad JSON, wrong type, invalid hash."),
        "401": error("Missing, unknown or revoked API key.", **{"WWW-Authenticate": "Bearer"}),
        "403": error("The key's role may not do this."),
        "414": error("Request line (a path with its query) over the server's limit (4,094 bytes): no cursor "
                     "or hash this server issues is that long."),
        "429": error("Rate limit for this key exceeded, or too many failed key checks from this address.",
                     **{"Retry-After": "Seconds to wait."}),
    }
    return {"summary": summary, "security": [{"bearer": []}], "responses": {**common, **responses}, **extra}


RECORD_ID: Schema = {"name": "id", "in": "path", "required": True,
                     "schema": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}}
BODY_ERRORS = {"413": error("Request body (or a chunked body's framing) over the size limit."),
               "415": error("Body is not Content-Type: application/json, or is encoded (Content-Encoding, "
                            "or a Transfer-Encoding other than plain chunked): send it uncompressed.")}
# Every write: another process held the write lock past HASHDB_WRITE_TIMEOUT; nothing was written.
WRITE_ERRORS = {**BODY_ERRORS, "503": error("The database was busy with another writer; retry.",
                                            **{"Retry-After": "Seconds to wait."})}


def paths(max_batch: int) -> dict[str, Schema]:
    not_ready = error("The index is still loading (start-up); see /readyz.", **{"Retry-After": "Seconds to wait."})
    return {
        "/v1/lookup": {
            "post": authed("Look up a batch of hashes, files' hashes or videos' frames", {
                "200": ok("LookupResponse", "One result per item, in order; `input` echoed."),
                "503": not_ready, **BODY_ERRORS}, requestBody=body("LookupRequest"), operationId="lookupBatch"),
            "get": authed("Look up one hash", {"200": ok("LookupResult"), "503": not_ready},
                          operationId="lookupOne", parameters=[
                {"name": "signal", "in": "query", "required": True, "schema": string(enum=list(signal_names()))},
                {"name": "hash", "in": "query", "required": True,
                 "schema": string(minLength=16, maxLength=64, pattern=any_length(),
                                  description="Hex of the signal's length (16 phash, dhash; 32 md5; 64 pdq, sha256).")},
                {"name": "quality", "in": "query", "required": False, "schema": QUALITY},
            ]),
        },
        "/v1/hashes": {
            "post": authed("Share a batch of hashes (contributor, admin)", {
                "200": ok("SubmitResponse", "Everything was already shared (or an idempotent repeat)."),
                "201": ok("SubmitResponse", "Stored."),
                "409": error("Idempotency-Key reused for a different request."),
                "422": error("A label outside the taxonomy, an incident that is not open, or a PDQ below "
                             "the quality cut-off or without its quality."),
                **WRITE_ERRORS}, requestBody=body("SubmitRequest"), operationId="submit", parameters=[
                {"name": "Idempotency-Key", "in": "header", "required": False,
                 "schema": string(MAX_IDEMPOTENCY_KEY, minLength=1, pattern="^[\\x20-\\x7e]+$")},
            ]),
        },
        "/v1/hashes/{id}": {
            "delete": authed("Retract a record (its organisation's contributor keys, or an admin)", {
                "200": ok("Record"), "403": error("Not this key's record, or a consumer or partner key."),
                "404": error("No such record, or not visible to this key."), **WRITE_ERRORS},
                requestBody=body("RetractRequest", required=False), parameters=[RECORD_ID], operationId="retract"),
            "patch": authed("Replace a record's labels (its organisation's contributor keys, or an admin)", {
                "200": ok("Record"), "403": error("Not this key's record, or a consumer or partner key."),
                "404": error("No such record, or not visible to this key."),
                "409": error("The record is retracted (said to its organisation and admins)."),
                "422": error("A label outside the taxonomy."), **WRITE_ERRORS},
                requestBody=body("RelabelRequest"), parameters=[RECORD_ID], operationId="relabel"),
        },
        "/v1/hashes/{id}/feedback": {
            "post": authed("Agree, disagree or report a false positive (another organisation's record, of a "
                           "hash this key's organisation did not share too)", {
                "200": ok("Record"), "403": error("The record is this key's organisation's own, or its organisation "
                                                  "holds a live record of the same hash: it retracts or relabels "
                                                  "its own instead."),
                "404": error("No such record, or not visible to this key."),
                "409": error("The record is out of members' lookups (retracted or held): it takes no votes "
                             "(said to those who see it; to others it is 404)."),
                **WRITE_ERRORS},
                requestBody=body("FeedbackRequest"), parameters=[RECORD_ID], operationId="feedback"),
        },
        "/v1/export": {
            "get": authed("Change feed after a cursor (partner, admin)", {
                "200": ok("ExportResponse"),
                "400": error("A cursor this database did not issue, or a limit over "
                             f"{MAX_KEYPOINT_EXPORT_PAGE:,} with keypoints."),
                "403": error("The key's role may not read the feed (`forbidden`), or keypoints were asked for "
                             "and this database does not share them (`not_shared`)."),
            }, operationId="export", parameters=[
                {"name": "since", "in": "query", "required": False, "schema": string(256)},
                {"name": "limit", "in": "query", "required": False,
                 "schema": {"type": "integer", "minimum": 1, "maximum": MAX_EXPORT_PAGE, "default": 1000},
                 "description": f"Changes in the page; at most {MAX_KEYPOINT_EXPORT_PAGE:,} with keypoints."},
                {"name": "keypoints", "in": "query", "required": False,
                 "schema": {"type": "boolean", "default": False},
                 "description": "true: entries of image PDQ records that have stored keypoints carry them "
                                "(`keypoints`), so a mirror finds crops of those pictures too. Off unless "
                                "the operator sets HASHDB_SHARE_KEYPOINTS=1 (keypoints with their positions "
                                "give away a rough sketch of the picture): asked for otherwise, a 403 "
                                "`not_shared`. Without it the feed is as before."},
            ]),
        },
        "/v1/stats": {
            "get": authed("Counts by signal, status, month and label", {"200": ok("Stats")}, operationId="stats"),
        },
        "/v1/incidents": {
            "post": authed("Open a crisis incident (admin); submissions may then name it", {
                "201": ok("Incident", "Opened."), "409": error("An incident with this name exists."),
                **WRITE_ERRORS}, requestBody=body("IncidentRequest"), operationId="openIncident"),
        },
        "/v1/incidents/{incident_id}": {
            "get": authed("One incident (admin)", {"200": ok("Incident"), "404": error("No such incident.")},
                          parameters=[{**RECORD_ID, "name": "incident_id"}], operationId="getIncident"),
        },
        "/healthz": {"get": {"summary": "Liveness", "security": [], "operationId": "healthz",
                             "responses": {"200": ok("Status")}}},
        "/readyz": {"get": {"summary": "Readiness: 200 once every worker has loaded the index", "security": [],
                            "operationId": "readyz",
                            "responses": {"200": ok("Status"), "503": error("Not ready yet.")}}},
        "/metrics": {"get": {"summary": "Prometheus metrics (a bearer token only when HASHDB_METRICS_TOKEN is set)",
                             "security": [], "operationId": "metrics",
                             "responses": {"200": {"description": "Prometheus text format",
                                                   "content": {"text/plain": {"schema": string()}}},
                                           "401": error("HASHDB_METRICS_TOKEN is set and was not sent.")}}},
        "/openapi.json": {"get": {"summary": "This document", "security": [], "operationId": "openapi",
                                  "responses": {"200": {"description": "OpenAPI 3.1",
                                                        "content": {"application/json": {
                                                            "schema": {"type": "object"}}}}}}},
    }


def document(max_batch: int) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "hashdb", "version": "1",
                 "description": "Share and match perceptual hashes of known terrorist and violent extremist "
                                "content. Errors are always `{\"error\": {\"code\", \"message\"}}`."},
        "paths": paths(max_batch),
        "components": {"schemas": schemas(max_batch),
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
    }
