"""md5 and sha256 of the file bytes: exact-match signals."""

from __future__ import annotations

import hashlib
from typing import ClassVar

from hashdb.hashing.base import BytesSignal
from hashdb.types import HashValue


class Md5Signal(BytesSignal):
    name = "md5"
    bits = 128
    examples: ClassVar[tuple[str, ...]] = ("d41d8cd98f00b204e9800998ecf8427e",)

    def compute_bytes(self, data: bytes) -> HashValue:
        # Not for security: md5 is what members already exchange for exact copies.
        return HashValue(self.name, hashlib.md5(data, usedforsecurity=False).hexdigest())


class Sha256Signal(BytesSignal):
    name = "sha256"
    bits = 256
    examples: ClassVar[tuple[str, ...]] = (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    )

    def compute_bytes(self, data: bytes) -> HashValue:
        return HashValue(self.name, hashlib.sha256(data).hexdigest())
