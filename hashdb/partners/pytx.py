"""hashdb as an exchange for python-threatexchange (pytx) and HMA: a SignalExchangeAPI that reads a
hashdb server's change feed (`GET /v1/export`) a page at a time, with the feed's cursor as its
checkpoint. Load it with `threatexchange config extensions add hashdb.partners.pytx`.

Each feed entry is a whole snapshot of one record, so updates are keyed by record id and the
newest replaces the last; a retraction, or a record the server holds in quarantine, is a
removal. Several members' records of one hash become one signal with one opinion each.
Needs the `threatexchange` package (pip install 'hashdb[pytx]'); nothing else in hashdb imports
this module.
"""

# No `from __future__ import annotations`: pytx builds its CLI options from these dataclasses'
# field types, which must be classes, not strings.
import time
import typing as t
from dataclasses import dataclass, field
from datetime import datetime

from threatexchange.exchanges import auth, signal_exchange_api
from threatexchange.exchanges import fetch_state as state
from threatexchange.exchanges.collab_config import CollaborationConfigWithDefaults
from threatexchange.extensions.manifest import ThreatExchangeExtensionManifest
from threatexchange.signal_type.signal_base import SignalType

from hashdb import errors
from hashdb.hashing import derived
from hashdb.io import te_format
from hashdb.partners.client import Client, feed_entry
from hashdb.types import FeedEntry

API_NAME = "hashdb"
PAGE = 1000
# A 429 from the server says how long to wait; a fetch gives up after this many in a row.
MAX_RATE_LIMIT_WAITS = 10
# Statuses whose records match at the source. Quarantined records are held out of members'
# lookups there, so they are removed here too until the server releases them.
LIVE = ("active", "disputed")


@dataclass
class HashDBCredentials(auth.CredentialHelper):
    """A hashdb partner key (`hashdb keys create --role partner`)."""

    ENV_VARIABLE: t.ClassVar[str] = "TX_HASHDB_API_KEY"
    FILE_NAME: t.ClassVar[str] = "~/.tx_hashdb_api_key"

    api_key: str = field(metadata={"help": "a hashdb partner key (hashdb keys create --role partner)"})

    @classmethod
    def _from_str(cls, s: str) -> "HashDBCredentials":
        return cls(s.strip())

    def _are_valid(self) -> bool:
        return bool(self.api_key) and not any(c.isspace() for c in self.api_key)


@dataclass
class _HashDBCollabRequiredFields:
    server: str = field(metadata={"help": "the hashdb server's URL, e.g. https://hashdb.example.org"})


@dataclass
class HashDBCollabConfig(CollaborationConfigWithDefaults, _HashDBCollabRequiredFields):
    api: str = field(init=False, default=API_NAME)


@dataclass
class HashDBCheckpoint(state.FetchCheckpointBase):
    """The feed's opaque cursor: the next fetch starts after the last change applied. Cursors
    never expire, so a checkpoint is never stale."""

    cursor: str
    # When the last change applied was made at the server (seconds since the epoch).
    progress_ts: int | None = None

    def get_progress_timestamp(self) -> int | None:
        return self.progress_ts


@dataclass
class HashDBRecord:
    """One hashdb record as fetched: the update value, keyed by the record's id."""

    signal_type: str  # a pytx SignalType name
    signal: str  # the signal string that SignalType reads
    labels: tuple[str, ...]
    status: str
    incident: str | None = None
    # A PDQ record's derived hashes that a whole upload's PDQ may match (hex -> `via`), offered
    # to pytx as more PDQs of the same record; see derived_for_pytx.
    derived: dict[str, str] = field(default_factory=dict)


@dataclass
class HashDBOpinion(state.SignalOpinion):
    record_id: int = 0


@dataclass
class HashDBSignalMetadata(state.FetchedSignalMetadata):
    """Every live record that carries one signal: one opinion per record. Its labels are the
    opinion's tags; a disputed record adds a negative opinion, so pytx sees it DISPUTED."""

    records: dict[int, HashDBRecord]
    # Record id -> `via`, for records this signal is a derived hash of (a centred crop, the
    # picture inside its border): said in the match line, as hashdb's own answer says it.
    vias: dict[int, str] = field(default_factory=dict)

    def get_as_opinions(self) -> t.Sequence[HashDBOpinion]:
        out = []
        for record_id, record in sorted(self.records.items()):
            tags = set(record.labels) | ({f"incident:{record.incident}"} if record.incident else set())
            out.append(HashDBOpinion(False, state.SignalOpinionCategory.POSITIVE_CLASS, tags, record_id))
            if record.status == "disputed":
                out.append(HashDBOpinion(False, state.SignalOpinionCategory.NEGATIVE_CLASS, set(), record_id))
        return out

    def __str__(self) -> str:
        # The record ids let a member follow up at the source (`hashdb feedback ID`).
        ids = ",".join(str(i) for i in sorted(self.records))
        vias = ",".join(f"{i}:{via}" for i, via in sorted(self.vias.items()))
        return f"{super().__str__()} hashdb_ids={ids}" + (f" hashdb_via={vias}" if vias else "")


Delta = state.FetchDelta[str, HashDBRecord, HashDBCheckpoint]


class HashDBSignalExchangeAPI(
    auth.SignalExchangeWithAuth[HashDBCollabConfig, HashDBCredentials],
    signal_exchange_api.SignalExchangeAPI[
        HashDBCollabConfig, HashDBCheckpoint, HashDBSignalMetadata, str, HashDBRecord
    ],
):
    """A hashdb server's change feed (`GET /v1/export`), read with a partner key."""

    def __init__(self, collab: HashDBCollabConfig, client: Client, page_size: int = PAGE) -> None:
        super().__init__()
        self.collab = collab
        self.client = client
        self.page_size = page_size

    @classmethod
    def get_name(cls) -> str:
        return API_NAME

    @staticmethod
    def get_config_cls() -> type[HashDBCollabConfig]:
        return HashDBCollabConfig

    @staticmethod
    def get_checkpoint_cls() -> type[HashDBCheckpoint]:
        return HashDBCheckpoint

    @staticmethod
    def get_record_cls() -> type[HashDBSignalMetadata]:
        return HashDBSignalMetadata

    @staticmethod
    def get_credential_cls() -> type[HashDBCredentials]:
        return HashDBCredentials

    @classmethod
    def for_collab(cls, collab: HashDBCollabConfig,
                   credentials: HashDBCredentials | None = None) -> "HashDBSignalExchangeAPI":
        credentials = credentials or HashDBCredentials.get(cls)
        try:
            client = Client(collab.server, credentials.api_key)
        except errors.HashDBError as exc:
            raise auth.SignalExchangeAPIInvalidAuthException(cls, f"collaboration {collab.name}: {exc}") from None
        return cls(collab, client)

    def fetch_iter(self, _supported_signal_types: t.Sequence[type[SignalType]],
                   checkpoint: HashDBCheckpoint | None) -> t.Iterator[Delta]:
        # Every mappable record is kept, whatever types are loaded now: naive_convert_to_signal_type
        # picks the types in use, so loading the vpdq extension later needs no re-fetch.
        cursor = checkpoint.cursor if checkpoint is not None else None
        progress = checkpoint.progress_ts if checkpoint is not None else None
        while True:
            docs, next_cursor = self._page(cursor)
            updates: dict[str, HashDBRecord | None] = {}
            for doc in docs:
                mapped = to_pytx(doc)
                if mapped is not None:
                    # Later changes of a record in one page replace earlier ones (dicts keep the last).
                    updates[str(doc["id"])] = mapped[1] if doc["status"] in LIVE else None
                progress = _epoch(doc.get("at")) or progress
            yield state.FetchDelta(updates, HashDBCheckpoint(next_cursor, progress))
            if len(docs) < self.page_size:
                return
            cursor = next_cursor

    def _page(self, cursor: str | None) -> tuple[list[dict[str, t.Any]], str]:
        for _ in range(MAX_RATE_LIMIT_WAITS):
            try:
                return self.client.export(cursor, self.page_size)
            except errors.RateLimited as exc:
                time.sleep(max(1, exc.retry_after))
            except (errors.Unauthorized, errors.Forbidden) as exc:
                raise auth.SignalExchangeAPIInvalidAuthException(
                    type(self), f"{self.collab.server} refused the key: {exc}") from None
        raise errors.RateLimited(f"{self.collab.server} kept answering 429 (rate limited)", 1)

    @classmethod
    def naive_convert_to_signal_type(
        cls, signal_types: t.Sequence[type[SignalType]], collab: HashDBCollabConfig,
        fetched: t.Mapping[str, HashDBRecord],
    ) -> dict[type[SignalType], dict[str, HashDBSignalMetadata]]:
        by_name = {s.get_name(): s for s in signal_types}
        out: dict[type[SignalType], dict[str, HashDBSignalMetadata]] = {}
        for key, record in fetched.items():
            s_type = by_name.get(record.signal_type)
            if s_type is None:
                continue
            signals = out.setdefault(s_type, {})
            meta = signals.setdefault(record.signal, HashDBSignalMetadata({}))
            meta.records[int(key)] = record
            for value, via in record.derived.items():
                meta = signals.setdefault(value, HashDBSignalMetadata({}))
                meta.records[int(key)] = record
                meta.vias[int(key)] = via
        return out


def to_pytx(doc: t.Mapping[str, t.Any]) -> tuple[str, HashDBRecord] | None:
    """A feed entry (output.feed_json) as (pytx signal type name, record), or None when pytx has
    no signal type for it (e.g. phash, or an image's MD5: pytx's md5 type is for video)."""
    entry = feed_entry(doc)
    name = te_format.pytx_name(entry.signal, entry.media_type)
    if name is None:
        return None
    value = te_format.vpdq_signal(entry.frames) if entry.signal == "vpdq" else entry.hash
    return name, HashDBRecord(name, value, entry.labels, entry.status, entry.incident, derived_for_pytx(entry))


def derived_for_pytx(entry: FeedEntry) -> dict[str, str]:
    """The derived PDQs pytx can match as hashdb does: `threatexchange match photo` hashes the
    whole upload, and hashdb matches an upload's whole PDQ against every stored derived hash at
    the PDQ threshold except a corner-masked one (masked hashes match only masked hashes,
    within 5 bits: service/matching.py). So a partner on pytx or HMA finds a centred crop of a
    shared image, or the picture shared with a border uploaded without it, as hashdb does."""
    return {d.hash.hex: d.via for d in entry.derived if d.via != derived.MASKED and d.hash.hex != entry.hash}


def _epoch(at: object) -> int | None:
    if not isinstance(at, str) or not at:
        return None
    try:
        return int(datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return None


TX_MANIFEST = ThreatExchangeExtensionManifest(apis=(HashDBSignalExchangeAPI,))
