"""Reading form fields: one place for length limits, so a field too long is a clear error."""

from __future__ import annotations

from flask import request

from hashdb.errors import InvalidInput
from hashdb.trust.policy import MAX_NOTE


def text(name: str, required: bool = False, limit: int = MAX_NOTE) -> str:
    """A text field; InvalidInput names the field when it is missing or too long. Required
    fields are checked by the service when it has a rule (a reason, a name); this checks presence
    for the forms whose service call would accept an empty value but the page asks for one."""
    # Browsers send a text area's line breaks as CRLF; the service takes LF, never CR.
    value = request.form.get(name, "").replace("\r\n", "\n")
    if len(value) > limit:
        raise InvalidInput(f"{name} is {len(value)} characters; the limit is {limit}")
    if required and not value.strip():
        raise InvalidInput(f"say why ({name} is required)")
    return value.strip()


def optional_int(name: str) -> int | None:
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19:
        raise InvalidInput(f"{name} must be a record id")
    return int(raw)
