"""Crisis incidents: what makes a valid incident name, and which incident a submission names.

Incident tags are separate from labels (PRODUCT.md): a submission may carry one, and it must
name an incident an admin has opened and not yet closed, so members can trust that a tag
means a crisis the consortium declared.
"""

from __future__ import annotations

import unicodedata

from hashdb.errors import InvalidInput, UnknownIncident
from hashdb.store.base import HashStore
from hashdb.trust import policy
from hashdb.types import Incident

MAX_DESCRIPTION = 2_000


# Scripts whose letters pass for each other's (Latin a, Cyrillic а, Greek α): a name may use one
# of them, beside any other script (a Latin name with Han characters is fine).
_LOOK_ALIKE_SCRIPTS = {"LATIN", "CYRILLIC", "GREEK"}
# Dashes that read as "-" (hyphen, non-breaking hyphen, figure dash, en and em dash, minus).
_DASHES = str.maketrans({c: "-" for c in "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe63\uff0d"})


def check_name(name: str) -> str:
    name = policy.check_name("incident name", name)
    # Submissions name an incident by name or by id: an all-digit name would be ambiguous.
    if name.isdigit():
        raise InvalidInput(f"incident name {name!r} is all digits; ids are numbers, names need a letter")
    scripts = sorted({unicodedata.name(c, "?").split(" ")[0] for c in unicodedata.normalize("NFKC", name)
                      if c.isalpha()} & _LOOK_ALIKE_SCRIPTS)
    if len(scripts) > 1:
        # A Cyrillic "а" in a Latin name reads the same in every list and webhook payload.
        raise InvalidInput(f"incident name {name!r} mixes {' and '.join(s.title() for s in scripts)} letters, which can "
                           "read alike: write it in one script")
    return name


def name_key(name: str) -> str:
    """What a reader sees of a name: case, width, compatibility forms and dash variants aside.
    Two incidents with the same key read alike in the console, lists and webhook payloads."""
    return unicodedata.normalize("NFKC", name).translate(_DASHES).casefold()


def same_reading(name: str, incidents: list[Incident]) -> Incident | None:
    key = name_key(name)
    return next((i for i in incidents if name_key(i.name) == key), None)


def check_description(description: str) -> str:
    policy.check_free_text("description", description, MAX_DESCRIPTION)
    return description


def resolve_open(store: HashStore, given: str, cache: dict[str, Incident]) -> Incident:
    """The open incident `given` names (by name, or by id when all digits), else UnknownIncident."""
    if given in cache:
        return cache[given]
    incident = store.find_incident(given)
    if incident is None and given.isascii() and given.isdigit():
        incident = store.get_incident(int(given))
    if incident is None:
        # ATTACK-2026-12 for attack-2026-12: one incident reads so (open_incident allows no two).
        incident = same_reading(given, store.incidents(False))
    if incident is None:
        # Not the list of open incidents: a contributor learns only whether the one they named exists.
        raise UnknownIncident(f"no incident {given!r}: a submission's incident must be one an admin opened "
                           "(use its exact name or id)")
    if incident.status != "open":
        raise UnknownIncident(f"incident {incident.name!r} was closed at {incident.closed_at}; "
                           "share without an incident, or ask an admin to open a new one")
    cache[given] = incident
    return incident
