"""The client sends an image's stored keypoints with its submission to a server whose OpenAPI
document says its submit items take them, and leaves them out for one from before them (which
refuses the field, and the request with it)."""

from __future__ import annotations

import copy
from typing import Any

from hashdb.api import spec
from hashdb.hashing import keypoints, keypoints_text
from hashdb.partners.client import Client, _takes_keypoints, submit_submissions
from hashdb.types import HashValue, Submission

BLOB = b"HK-not-parsed-by-the-client"


class Recording(Client):
    """A client whose server is this process: its document given, its submits recorded."""

    def __init__(self, document: Any) -> None:
        super().__init__("http://127.0.0.1:9")
        self._spec = document
        self.sent: list[list[dict[str, Any]]] = []

    def submit(self, items, idempotency_key=None):  # type: ignore[no-untyped-def]
        self.sent.append(list(items))
        return [{"ids": [n], "status": "active", "duplicate": False} for n, _ in enumerate(items)]


def older_document() -> dict[str, Any]:
    doc = copy.deepcopy(spec.document(1000))
    for form in doc["components"]["schemas"]["SubmitItem"]["oneOf"]:
        del form["properties"]["keypoints"]
    return doc


def submission(blob: bytes | None) -> Submission:
    return Submission("a.jpg", ("glorification",), (HashValue("pdq", "ab" * 32, 90),), keypoints=blob)


def test_the_servers_document_says_whether_it_takes_keypoints():
    assert _takes_keypoints(spec.document(1000))
    assert not _takes_keypoints(older_document())
    assert not _takes_keypoints(None) and not _takes_keypoints({"openapi": "3.1.0"})


def test_keypoints_are_sent_to_a_server_that_takes_them_and_only_then():
    current = Recording(spec.document(1000))
    submit_submissions(current, [submission(BLOB), submission(None)])
    [[sent, plain]] = current.sent
    assert sent["keypoints"] == keypoints_text.encode_text(BLOB)
    assert "keypoints" not in plain
    older = Recording(older_document())
    submit_submissions(older, [submission(BLOB)])
    [[sent]] = older.sent
    assert "keypoints" not in sent and sent["labels"] == ["glorification"]
