"""Organisation names of the form `mirror:...` belong to mirror sources. A trial made
`hashdb keys create --org mirror:127.0.0.1:47391`; that key's organisation then owned the
mirrored records, retracted one over the API, and later syncs never restored it."""

from __future__ import annotations

import pytest

from hashdb.errors import InvalidInput
from hashdb.service.local import open_database
from support import empty_database, principal, run_cli

RESERVED = ["mirror:127.0.0.1:47391", "mirror:feed-a", "Mirror:hashdb.example.org", " mirror:x"]


@pytest.mark.parametrize("org", RESERVED)
def test_keys_create_refuses_a_mirror_organisation_in_one_line(tmp_path, org):
    db = empty_database(tmp_path / "db.sqlite")
    result = run_cli("keys", "create", "--org", org, "--role", "contributor", "--db", str(db))
    assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
    assert "reserved" in result.output and "'mirror:'" in result.output
    service = open_database(db)
    assert service.store.get_org(org) is None


@pytest.mark.parametrize("org", RESERVED)
def test_the_service_refuses_it_for_the_console_too(tmp_path, org):
    service = open_database(empty_database(tmp_path / "db.sqlite"))
    with pytest.raises(InvalidInput, match="reserved"):
        service.create_key(org, "contributor", principal(service, "operator", "admin"))
    assert service.store.get_org(org) is None


def test_a_local_org_option_is_refused_the_same_way(tmp_path):
    db = empty_database(tmp_path / "db.sqlite")
    result = run_cli("submit", "md5:" + "ab" * 16, "--label", "glorification", "--org", "mirror:feed-a",
                     "--db", str(db))
    assert result.exit_code == 1 and "reserved" in result.output


def test_names_that_merely_mention_mirror_are_fine(tmp_path):
    db = empty_database(tmp_path / "db.sqlite")
    for org in ("mirror-team", "mirrors:inc", "our mirror:x"):
        result = run_cli("keys", "create", "--org", org, "--role", "consumer", "--db", str(db))
        assert result.exit_code == 0, result.output
