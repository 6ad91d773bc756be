"""HashDB: the one place behaviour lives. The CLI and the HTTP API are thin adapters over it.

HashDB is assembled from one mixin per concern (media, sharing, matching, partners, accounts,
trust, crisis, operations), each in its own module; callers import HashDB and the helpers below
from here only, and `local.open_database` to build one over a SQLite file or a PostgreSQL DSN.
A concern reaches another only through what the constructor sets (store, indexes, taxonomy,
safelist, spike rule; see base.ServiceBase). Modules here may import `trust`, `io`, `hashing`,
`store`, `index` and the core; never `partners`, `cli` or `api`."""

from __future__ import annotations

from hashdb.config import Settings
from hashdb.index.indexset import IndexSet
from hashdb.service.accounts import AccountsMixin, KeyCache
from hashdb.service.base import MAX_EXPORT_PAGE
from hashdb.service.console import ConsoleMixin
from hashdb.service.crisis import CrisisMixin
from hashdb.service.matching import MatchingMixin
from hashdb.service.media import HashingService, MediaMixin
from hashdb.service.operations import OperationsMixin
from hashdb.service.partners import PartnersMixin, decode_cursor, encode_cursor
from hashdb.service.sharing import SharingMixin, request_digest
from hashdb.service.tmk_matching import TmkMatcher
from hashdb.service.trust import TrustMixin
from hashdb.store.base import HashStore
from hashdb.trust import spike
from hashdb.trust.safelist import SafelistMatcher
from hashdb.trust.taxonomy import Taxonomy

__all__ = ["MAX_EXPORT_PAGE", "HashDB", "HashingService", "decode_cursor", "encode_cursor", "request_digest"]


class HashDB(MediaMixin, SharingMixin, MatchingMixin, PartnersMixin, AccountsMixin, TrustMixin, CrisisMixin,
             OperationsMixin, ConsoleMixin):
    def __init__(self, settings: Settings, store: HashStore, indexes: IndexSet | None = None,
                 taxonomy: Taxonomy | None = None, server_secret: bytes | None = None) -> None:
        self.settings = settings
        self.server_secret = server_secret
        self.store = store
        self.indexes = indexes if indexes is not None else IndexSet(store)
        self.taxonomy = taxonomy if taxonomy is not None else Taxonomy.load()
        self.safelist = SafelistMatcher(store, settings)
        self.spike_rule = spike.SpikeRule(store, settings)
        self.tmk = TmkMatcher(store, settings)
        self.key_cache = KeyCache()
