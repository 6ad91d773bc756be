"""What the client sends of a lookup's derived hashes: what the server's OpenAPI document says it
takes (partners/client.py); tests/cli/test_window_servers.py runs it against real servers."""

from __future__ import annotations

import copy

from hashdb.api import spec
from hashdb.hashing.derived import MAX_DERIVED, VIAS
from hashdb.partners.client import OLDER_SERVER, DerivedAccepted, _derived_accepted
from hashdb.types import DerivedHash, HashValue, Query


def derived(via: str, n: int) -> DerivedHash:
    return DerivedHash(via, HashValue("pdq", f"{n:064x}", 100), 0.5)


def test_the_servers_document_says_what_it_takes():
    doc = spec.document(1000)
    assert _derived_accepted(doc) == DerivedAccepted(frozenset(VIAS), MAX_DERIVED)
    # A document with a lower limit and fewer kinds (a server before windows) is read as such.
    older = copy.deepcopy(doc)
    older["components"]["schemas"]["Derived"]["properties"]["via"]["enum"] = sorted(OLDER_SERVER.vias)
    del older["components"]["schemas"]["Derived"]["properties"]["colours"]
    [media] = [form for form in older["components"]["schemas"]["LookupItem"]["oneOf"] if "derived" in form["properties"]]
    media["properties"]["derived"]["maxItems"] = 17
    assert _derived_accepted(older) == OLDER_SERVER
    # Never more than this version takes itself, nor a kind it does not know.
    media["properties"]["derived"]["maxItems"] = 1000
    older["components"]["schemas"]["Derived"]["properties"]["via"]["enum"] = ["trimmed", "newer"]
    assert _derived_accepted(older) == DerivedAccepted(frozenset({"trimmed"}), MAX_DERIVED, colours=False)


def test_a_document_that_does_not_say_is_read_as_nothing():
    assert _derived_accepted(None) is None
    assert _derived_accepted({"openapi": "3.1.0"}) is None
    doc = spec.document(1000)
    [media] = [form for form in doc["components"]["schemas"]["LookupItem"]["oneOf"] if "derived" in form["properties"]]
    media["properties"]["derived"]["maxItems"] = True
    assert _derived_accepted(doc) is None


def test_fit_drops_the_kinds_a_server_does_not_take_then_keeps_the_first():
    regions = tuple(derived("trimmed", n) for n in range(1, 16))
    windows = tuple(derived("window", n) for n in range(100, 118))
    query = Query("q", (HashValue("pdq", f"{7:064x}", 100),), derived=regions + windows)
    assert OLDER_SERVER.fit(query).derived == regions
    assert DerivedAccepted(frozenset(VIAS), 20).fit(query).derived == regions + windows[:5]
    assert DerivedAccepted(frozenset(VIAS), MAX_DERIVED).fit(query) is query


def test_fit_leaves_out_content_boxes_before_the_single_evidence_of_a_logo_or_a_turn():
    # A lookup lists its content boxes (regions, row spans, reduced copies) before its corner
    # masks; cut to an older server's 17 in order, the masks were the ones lost.
    boxes = tuple(derived("content", n) for n in range(1, 15))
    masks = tuple(derived("masked", n) for n in range(50, 54))
    turned = (derived("deskewed", 60),)
    windows = tuple(derived("window", n) for n in range(100, 103))
    query = Query("q", (HashValue("pdq", f"{7:064x}", 100),), derived=boxes + turned + masks + windows)
    assert OLDER_SERVER.fit(query).derived == boxes[:12] + turned + masks
    assert DerivedAccepted(frozenset(VIAS), 19).fit(query).derived == boxes[:14] + turned + masks


def test_colour_layouts_go_only_to_a_server_that_reads_them():
    # A server from before colour layouts refused every derived hash carrying one (400), so
    # every image lookup and submit of this client failed there.
    coloured = tuple(DerivedHash("trimmed", HashValue("pdq", f"{n:064x}", 100), 0.5, "ab12cd" * 9)
                     for n in range(1, 4))
    query = Query("q", (HashValue("pdq", f"{7:064x}", 100),), derived=coloured)
    assert DerivedAccepted(frozenset(VIAS), MAX_DERIVED).fit(query) is query
    plain = DerivedAccepted(frozenset(VIAS), MAX_DERIVED, colours=False).fit(query).derived
    assert [(d.via, d.hash, d.share, d.colours) for d in plain] == [(d.via, d.hash, d.share, None) for d in coloured]
    assert OLDER_SERVER.fit(query).derived == plain


def test_enlarged_copies_go_only_to_a_server_that_takes_them():
    # A server from before enlarged copies refuses a lookup item carrying a kind it does not
    # know (400): its document's list of kinds leaves them out, and so does the client.
    windows_era = copy.deepcopy(spec.document(1000))
    kinds = windows_era["components"]["schemas"]["Derived"]["properties"]["via"]["enum"]
    kinds.remove("enlarged")
    small = (derived("enlarged", 1), derived("trimmed", 2), derived("window", 3))
    query = Query("q", (HashValue("pdq", f"{7:064x}", 100),), derived=small)
    accepted = _derived_accepted(windows_era)
    assert accepted is not None and "enlarged" not in accepted.vias
    assert accepted.fit(query).derived == small[1:]
    assert OLDER_SERVER.fit(query).derived == small[1:2]
    assert DerivedAccepted(frozenset(VIAS), MAX_DERIVED).fit(query) is query
