"""Typed domain errors. No HTTP status codes or click here: the edges map them."""

from __future__ import annotations


class HashDBError(Exception):
    """Base of every error hashdb raises on purpose; `code` is stable for clients."""

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidHash(HashDBError):
    code = "invalid_hash"


class FeaturelessVideo(InvalidHash):
    """A TMK whose frame features are all zero: a flat video (a still black or one-colour
    screen, often under an audio track) has no picture to match, so it has no TMK."""


class UnknownSignal(HashDBError):
    code = "unknown_signal"


class UnsupportedMedia(HashDBError):
    """The bytes are not an image or video we accept (format, size, corruption)."""

    code = "unsupported_media"


class MediaTooLarge(UnsupportedMedia):
    code = "media_too_large"


class InvalidInput(HashDBError):
    """A request or argument that is malformed in a way no narrower error covers."""

    code = "invalid_input"


class UnknownLabel(InvalidInput):
    code = "unknown_label"


class LowQuality(InvalidInput):
    code = "low_quality"


class ForkedCursor(InvalidInput):
    """A change-feed cursor issued by another history of this database: it was restored from
    an older backup after the cursor was issued. The changes at and before the cursor are not
    the ones its holder applied, so going on from it would skip changes and keep records the
    restore took out."""

    code = "forked_cursor"


class UnknownIncident(InvalidInput):
    """A submission names an incident that is not open: like an unknown label, the request is
    well formed and its content is what is refused."""

    code = "unknown_incident"


class NotFound(HashDBError):
    code = "not_found"


class Forbidden(HashDBError):
    code = "forbidden"


class NotShared(Forbidden):
    """Something this database's operator has not chosen to share (its stored keypoints in the
    export feed): a 403 whatever the key's role, which a client tells from its key's role
    falling short by the code."""

    code = "not_shared"


class Unauthorized(HashDBError):
    code = "unauthorized"


class Conflict(HashDBError):
    code = "conflict"


class AlreadySent(Conflict):
    """A create-form sent a second time (a reloaded answer): the first sending did the work."""

    code = "already_sent"


class RateLimited(HashDBError):
    code = "rate_limited"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class IndexStale(HashDBError):
    code = "index_stale"


class Busy(HashDBError):
    """Another writer held the database's write lock longer than this write may wait."""

    code = "busy"

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DatabaseUnavailable(Busy):
    """The database server could not be reached, or dropped the connection during the request (a
    restart, a failover, an administrator ending sessions): a 503 with Retry-After, as for a busy
    write lock, so a client's retry applies. The message says whether a write may have landed."""

    code = "database_unavailable"


class StoreUnavailable(InvalidInput):
    """The database named by the caller (`--db`, HASHDB_DB, a DSN) could not be opened: a missing
    folder, a file that is not a database, a server that refused the connection; or its index
    snapshots could not be saved, a file standing where their folder goes. Raised when a store
    is opened or its snapshots first saved (a server's at its start, which /readyz reports),
    never for what a request sent."""

    code = "store_unavailable"


class ToolMissing(HashDBError):
    """A hash was asked for whose optional tool is not installed here (tmk: the tmkpy package
    and the ffmpeg program). Only hashing on the caller's machine raises it."""

    code = "tool_missing"
