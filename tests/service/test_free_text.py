"""Notes, reasons and descriptions refuse control characters as references and names do: a
trial stored CR, backspace, BEL and U+009B (a one-character ESC [) in them, and `quarantine list`
printed them raw. Line breaks and tabs stay allowed in this multi-line text (the console's text
areas send them); text output prints any such value escaped."""

from __future__ import annotations

import pytest

from hashdb.errors import InvalidInput
from hashdb.types import HashValue, Submission
from support import principal, run_cli

BAD = ["a\rb", "a\x08b", "a\x07b", "a\x1b[2Jb", "a\u009b2Jb", "a\u202eb"]


def _record(service) -> int:
    alice = principal(service, "alice", "contributor")
    return service.submit([Submission("x", ("glorification",), (HashValue("md5", "ab" * 16),))], alice)[0].ids[0]


def _calls(service):
    record = _record(service)
    admin = principal(service, "ops", "admin")
    bob = principal(service, "bob", "consumer")
    alice = principal(service, "alice", "contributor")
    return {
        "note": lambda text: service.feedback(record, bob, "agree", text),
        "reason (retract)": lambda text: service.retract(record, alice, text),
        "reason (quarantine)": lambda text: service.quarantine(record, admin, text),
        "description": lambda text: service.open_incident("attack-1", admin, text),
        "note (safelist)": lambda text: service.add_safelist([HashValue("md5", "cd" * 16)], admin, text),
    }


@pytest.mark.parametrize("text", BAD)
@pytest.mark.parametrize("field", ["note", "reason (retract)", "reason (quarantine)", "description",
                                   "note (safelist)"])
def test_free_text_refuses_control_and_format_characters(service, field, text):
    with pytest.raises(InvalidInput, match=r"contains a control or unprintable character \(U\+"):
        _calls(service)[field](text)


@pytest.mark.parametrize("field", ["note", "reason (retract)", "reason (quarantine)", "description",
                                   "note (safelist)"])
def test_line_breaks_and_tabs_are_kept(service, field):
    _calls(service)[field]("first line\n\tsecond, é")


def test_quarantine_list_prints_a_reason_escaped(tmp_path):
    from hashdb.service.local import open_database

    db = tmp_path / "db.sqlite"
    service = open_database(db)
    record = _record(service)
    other = service.submit([Submission("y", ("glorification",), (HashValue("md5", "ef" * 16),))],
                           principal(service, "alice", "contributor"))[0].ids[0]
    service.quarantine(record, principal(service, "ops", "admin"), "two\nlines")
    # A reason stored before the rule existed (or by an older version) is escaped all the same.
    service.store.quarantine(other, "manual", "x\rFAKE\x08\u009b", None)
    service.store.close()
    result = run_cli("quarantine", "list", "--db", str(db))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and all(line.isprintable() for line in lines), lines
    assert any(line.endswith('manual: "two\\nlines"') for line in lines), lines
    assert any(line.endswith('manual: "x\\rFAKE\\b\\u009b"') for line in lines), lines
