"""A stored image's keypoints as JSON carries them (`hashdb hash --json`, a submit item's
"keypoints"): written here (base64), read by keypoints.from_text, without loading OpenCV for
what carries none.

keypoints.py imports OpenCV; a request, a hash line or an answer without keypoints should not
pay for that import, so it is made here only when some are read.
"""

from __future__ import annotations

import base64

from hashdb.errors import InvalidInput


def max_text() -> int:
    """The longest text a stored blob takes: base64 of keypoints.MAX_BYTES, padded."""
    from hashdb.hashing.keypoints import MAX_TEXT

    return MAX_TEXT


def encode_text(data: bytes) -> str:
    """Standard base64 of a stored blob, as keypoints.from_text reads it back."""
    return base64.b64encode(data).decode("ascii")


def decode_text(text: object, where: str | None = None) -> bytes:
    """keypoints.from_text (bounded base64, then parse); a refusal says `where` (an API item,
    an input) first. Its messages name the keypoints themselves."""
    from hashdb.hashing import keypoints

    try:
        return keypoints.from_text(text)
    except InvalidInput as exc:
        raise InvalidInput(f"{where}: {exc.message}" if where else exc.message) from None


def check(data: bytes, where: str | None = None) -> None:
    """keypoints.parse's verdict on a blob, its refusal saying `where` first."""
    from hashdb.hashing import keypoints

    try:
        keypoints.parse(data)
    except InvalidInput as exc:
        raise InvalidInput(f"{where}: {exc.message}" if where else exc.message) from None
