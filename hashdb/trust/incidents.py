"""Crisis incidents: what makes a valid incident name, and which incident a submission names.

Incident tags are separate from labels (PRODUCT.md): a submission may carry one, and it must
name an incident an admin has opened and not yet closed, so members can trust that a tag
means a crisis the consortium declared.
"""

from __future__ import annotations

from hashdb.errors import InvalidInput, UnknownIncident
from hashdb.store.base import HashStore
from hashdb.trust import policy
from hashdb.types import Incident

MAX_DESCRIPTION = 2_000


def check_name(name: str) -> str:
    name = policy.check_name("incident name", name)
    # Submissions name an incident by name or by id: an all-digit name would be ambiguous.
    if name.isdigit():
        raise InvalidInput(f"incident name {name!r} is all digits; ids are numbers, names need a letter")
    return name


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
        # Not the list of open incidents: a contributor learns only whether the one they named exists.
        raise UnknownIncident(f"no incident {given!r}: a submission's incident must be one an admin opened "
                           "(use its exact name or id)")
    if incident.status != "open":
        raise UnknownIncident(f"incident {incident.name!r} was closed at {incident.closed_at}; "
                           "share without an incident, or ask an admin to open a new one")
    cache[given] = incident
    return incident
