"""HashDB: the one place behaviour lives. The CLI and the HTTP API are thin adapters over it.

HashDB is assembled from one mixin per concern (media, sharing, matching, partners, accounts,
trust, crisis, operations), each in its own module; callers import HashDB and the helpers below
from here only, and `local.open_database` to build one over a SQLite file or a PostgreSQL DSN.
A concern reaches another only through what the constructor sets (store, indexes, taxonomy,
safelist, spike rule; see base.ServiceBase). Modules here may import `trust`, `io`, `hashing`,
`store`, `index` and the core; never `partners`, `cli` or `api`.

The names below are imported on first use: importing any module of this package runs this
file first, and `hashdb hash` (HashingService and the process pool alone) would otherwise load
every concern, the store and the webhooks' HTTP client before its workers start."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hashdb.service.base import MAX_EXPORT_PAGE, MAX_KEYPOINT_EXPORT_PAGE
    from hashdb.service.core import HashDB
    from hashdb.service.media import HashingService
    from hashdb.service.partners import decode_cursor, encode_cursor
    from hashdb.service.sharing import request_digest

__all__ = ["MAX_EXPORT_PAGE", "MAX_KEYPOINT_EXPORT_PAGE", "HashDB", "HashingService", "decode_cursor",
           "encode_cursor", "request_digest"]

# Each name and the module of this package that defines it.
_HOMES = {"MAX_EXPORT_PAGE": "base", "MAX_KEYPOINT_EXPORT_PAGE": "base", "HashDB": "core",
          "HashingService": "media", "decode_cursor": "partners", "encode_cursor": "partners",
          "request_digest": "sharing"}


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
