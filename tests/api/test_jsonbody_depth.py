"""The strict JSON reader's depth check takes a quick path for bodies without escapes; its
answer must be the one the character-by-character count gives (written out here as the oracle)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hashdb.api import jsonbody
from hashdb.errors import InvalidInput


def deeper_than(text: str, limit: int) -> bool:
    depth, in_string, escaped = 0, False, False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                return True
        elif ch in "]}":
            depth -= 1
    return False


def refused(text: str, limit: int) -> bool:
    try:
        jsonbody.check_depth(text, limit)
    except InvalidInput:
        return True
    return False


@settings(max_examples=3000)
@given(st.text(alphabet='[]{}"\\a, ', max_size=60), st.integers(0, 6))
def test_depth_check_agrees_with_counting_every_character(text, limit):
    assert refused(text, limit) == deeper_than(text, limit)


@pytest.mark.parametrize(("text", "limit", "deep"), [
    ('{"items": [' + ",".join(['{"signal": "pdq", "hash": "ab"}'] * 100) + "]}", 16, False),
    ("[" * 17 + "]" * 17, 16, True),
    ("[" * 16 + "]" * 16, 16, False),
    ('["[[[[", ' + "[" * 15 + "]" * 15 + "]", 16, False),
    ("[{" * 9 + "}]" * 9, 16, True),
])
def test_depth_check_on_shapes_a_client_sends(text, limit, deep):
    assert refused(text, limit) == deep == deeper_than(text, limit)
