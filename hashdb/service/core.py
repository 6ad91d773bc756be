"""HashDB assembled: one mixin per concern, each in its own module (see the package's docstring).
Callers import it from `hashdb.service`."""

from __future__ import annotations

from hashdb.config import Settings
from hashdb.index.indexset import IndexSet
from hashdb.service.accounts import AccountsMixin, KeyCache
from hashdb.service.console import ConsoleMixin
from hashdb.service.crisis import CrisisMixin
from hashdb.service.keypoint_matching import KeypointMatcher
from hashdb.service.matching import MatchingMixin
from hashdb.service.media import MediaMixin
from hashdb.service.operations import OperationsMixin
from hashdb.service.partners import PartnersMixin
from hashdb.service.sharing import SharingMixin
from hashdb.service.tmk_matching import TmkMatcher
from hashdb.service.trust import TrustMixin
from hashdb.store.base import HashStore
from hashdb.trust import spike
from hashdb.trust.safelist import SafelistMatcher
from hashdb.trust.taxonomy import Taxonomy


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
        # Its snapshot beside the hash indexes'; none kept where keypoints are off (HASHDB_KEYPOINTS=0).
        self.keypoints = KeypointMatcher(store, self.indexes.directory if settings.keypoints else None)
        self.key_cache = KeyCache()
