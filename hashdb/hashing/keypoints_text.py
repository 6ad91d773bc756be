"""A stored image's keypoints as JSON carries them (`hashdb hash --json`, a submit item's
"keypoints"): standard base64 of the stored format (hashing/keypoints.py), read back strictly.

Apart from keypoints.py, which loads OpenCV: reading a request or a hash line that carries no
keypoints should not pay for that import, so it is made only when some are given.
"""

from __future__ import annotations

import base64
import binascii

from hashdb.errors import InvalidInput


def max_text() -> int:
    """The longest text a stored blob takes: base64 of keypoints.MAX_BYTES, padded."""
    from hashdb.hashing.keypoints import MAX_BYTES

    return 4 * -(-MAX_BYTES // 3)


def encode_text(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def decode_text(text: object, where: str = "keypoints") -> bytes:
    """The stored blob a text gives, checked by keypoints.parse; anything else raises
    InvalidInput naming `where`. The length is bounded before any byte is decoded."""
    from hashdb.hashing import keypoints

    if not isinstance(text, str):
        raise InvalidInput(f"{where} must be a base64 string, got {type(text).__name__}")
    limit = max_text()
    if not text or len(text) > limit:
        raise InvalidInput(f"{where} must be 1 to {limit} base64 characters (at most {keypoints.MAX_BYTES} "
                           f"bytes of stored keypoints), got {len(text)}")
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        raise InvalidInput(f"{where} is not standard base64") from None
    check(data, where)
    return data


def check(data: bytes, where: str = "keypoints") -> None:
    """keypoints.parse's verdict on a blob, its message named by `where`."""
    from hashdb.hashing import keypoints

    try:
        keypoints.parse(data)
    except InvalidInput as exc:
        raise InvalidInput(f"{where}: {exc.message}") from None
