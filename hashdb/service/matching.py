"""Matching: look queries up by exact value or within a Hamming radius, derived hashes by their
gates (derived_gates.py), and videos by the vPDQ rule (video_matching.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, cast

from hashdb.hashing.derived import CONTENT, CROPPED, ENLARGED, MASKED, TRIMMED, WINDOW
from hashdb.hashing.registry import get_signal
from hashdb.index.indexset import DERIVED
from hashdb.service import derived_gates as gates
from hashdb.service.base import ServiceBase
from hashdb.service.keypoint_matching import ALIGNED
from hashdb.service.video_matching import video_candidates
from hashdb.trust import policy
from hashdb.types import (
    DerivedHash, LookupResult, Match, PdqBatch, Principal, Query, VideoMatch,
)

if TYPE_CHECKING:  # the module imports OpenCV: loaded only when a lookup carries a probe
    from hashdb.hashing.keypoints import Probe

# best[(query n, record id)] = (distance, signal, via): each query's nearest hit of each record
Best = dict[tuple[int, int], tuple[int, str, str | None]]


class MatchingMixin(ServiceBase):
    def lookup(self, queries: Sequence[Query], actor: Principal,
               thresholds: Mapping[str, int] | None = None, count: bool = True) -> list[LookupResult]:
        """Matches `actor` may see. `count=False` keeps the lookup out of the spike rule's
        counts (a local lookup: nobody else's crowd)."""
        policy.require(actor, "lookup")
        limits = policy.thresholds(self.settings, thresholds or {})
        self.indexes.catch_up()
        best: Best = {}
        by_signal: dict[str, list[tuple[int, str]]] = {}
        for n, query in enumerate(queries):
            for value in query.hashes:
                by_signal.setdefault(value.signal, []).append((n, value.hex))
        for signal, items in by_signal.items():
            if get_signal(signal).exact:
                for record in self.store.find_values(signal, [h for _, h in items]):
                    for n, hexv in items:
                        if hexv == record.value:
                            _keep(best, (n, record.id), 0, signal)
                continue
            radius = limits[signal]
            hits = self.indexes.search(signal, [h for _, h in items], radius)
            for (n, _), found in zip(items, hits):
                for record_id, distance in found:
                    _keep(best, (n, record_id), distance, signal)
        if self.settings.derived_hashes:
            self._derived_matches(queries, by_signal.get("pdq", []), limits["pdq"], best)
        self._gate_64_bit(queries, best)
        if self.settings.keypoints:
            self._keypoint_matches(queries, best, limits["pdq"])
        video: dict[tuple[int, int], VideoMatch] = {}
        for n, query in enumerate(queries):
            if query.frames:
                videos = video_candidates(self.settings, self.indexes, self.store, query.frames, limits["vpdq"])
                for record_id, (distance, match) in videos.items():
                    _keep(best, (n, record_id), distance, "vpdq")
                    video[(n, record_id)] = match
        scores: dict[tuple[int, int], float] = {}
        for n, query in enumerate(queries):
            if query.tmk is not None:
                for hit in self.tmk.matches(query.tmk):
                    scores[(n, hit.record_id)] = hit.level2
        per_query = self._matches(len(queries), best, video, scores, actor, count)
        return [LookupResult(query.input, bool(matches), tuple(matches), policy.query_flags(query, self.settings))
                for query, matches in zip(queries, per_query)]

    def lookup_pdqs(self, batch: PdqBatch, actor: Principal, thresholds: Mapping[str, int] | None = None,
                    count: bool = True) -> list[LookupResult]:
        """lookup() of one whole-image PDQ per query, the common batch, with the same answers
        (tests/api/test_pdq_batch.py compares them): the hashes go to the index as one list,
        and only queries with a match cost more than their empty answer."""
        policy.require(actor, "lookup")
        radius = policy.thresholds(self.settings, thresholds or {})["pdq"]
        self.indexes.catch_up()
        best: Best = {}
        for n, found in enumerate(self.indexes.search("pdq", batch.hexes, radius)):
            for record_id, distance in found:
                _keep(best, (n, record_id), distance, "pdq")
        if self.settings.derived_hashes:
            # No query carries derived hashes: only stored derived PDQs against the whole images.
            self._derived_matches((), list(enumerate(batch.hexes)), radius, best)
        # No 64-bit gate (it only drops pHash/dHash matches), no video, no tmk.
        per_query = self._matches(len(batch), best, {}, {}, actor, count)
        flags = policy.LOW_QUALITY
        return [LookupResult(given, bool(matches), tuple(matches),
                             flags if policy.low_quality(quality, self.settings) else ())
                for given, quality, matches in zip(batch.inputs, batch.qualities, per_query)]

    def _matches(self, queries: int, best: Best, video: Mapping[tuple[int, int], VideoMatch],
                 scores: Mapping[tuple[int, int], float], actor: Principal, count: bool) -> list[list[Match]]:
        """Each query's matches the actor may see, closest first, counted for the spike rule."""
        per_query: list[list[Match]] = [[] for _ in range(queries)]
        records = self.store.get_records([*(rid for _, rid in best), *(rid for _, rid in scores)])
        # A mirror's records name their source and id there: feedback goes to the source.
        origins = self.store.mirror_origins(list(records)) if records else {}
        for (n, record_id), (distance, signal, via) in best.items():
            stored = records.get(record_id)
            if stored is None or not policy.visible(stored, actor):
                continue
            source, source_id = origins.get(record_id, (None, None))
            per_query[n].append(Match(stored.id, signal, distance, stored.labels, stored.status,
                                      stored.support, stored.agree, stored.disagree,
                                      video.get((n, record_id)), source, source_id, via,
                                      false_positive=stored.false_positive))
        for (n, record_id), score in scores.items():
            stored = records.get(record_id)
            if stored is None or not policy.visible(stored, actor):
                continue
            source, source_id = origins.get(record_id, (None, None))
            per_query[n].append(Match(stored.id, stored.signal, 0, stored.labels, stored.status, stored.support,
                                      stored.agree, stored.disagree, None, source, source_id, score=score,
                                      false_positive=stored.false_positive))
        if count and not actor.is_admin:  # operators investigating are not the crowd the spike rule watches
            self.spike_rule.count(per_query, actor.org_id)
        for matches in (m for m in per_query if len(m) > 1):
            # Distances first, closest first; then scored matches (tmk), highest score first.
            matches.sort(key=lambda m: (m.score is not None, m.distance, -(m.score or 0.0), m.id))
        return per_query

    def _keypoint_matches(self, queries: Sequence[Query], best: Best, radius: int) -> None:
        """A query that hashed its own file (it carries a probe) against stored keypoints: a
        crop the PDQs missed, found where its keypoints place a stored image and confirmed by the
        PDQ of that image's box, the query aligned on it (`via` "aligned", the distance that
        PDQ's). Records the query matched already are not verified again."""
        for n, query in enumerate(queries):
            if query.probe is None:  # no pixels of its own: sent as hashes
                continue
            matched = frozenset(record_id for (m, record_id) in best if m == n)
            for hit in self.keypoints.matches(cast("Probe", query.probe), matched):
                if hit.alignment.distance <= radius:  # a caller's tighter pdq threshold holds here too
                    _keep(best, (n, hit.record_id), hit.alignment.distance, "pdq", ALIGNED)

    def _gate_64_bit(self, queries: Sequence[Query], best: Best) -> None:
        """Drop (or tighten) pHash/dHash matches of queries that carry a PDQ (see
        Settings.imagehash_threshold_with_pdq): there PDQ decides."""
        gate = self.settings.imagehash_threshold_with_pdq
        radius = -1 if gate is None else min(gate, self.settings.imagehash_threshold)
        for key in [k for k, (distance, signal, _) in best.items() if signal in gates.BITS_64 and distance > radius]:
            if _has_pdq(queries[key[0]]):
                del best[key]

    def _derived_matches(self, queries: Sequence[Query], pdqs: Sequence[tuple[int, str]], radius: int,
                         best: Best) -> None:
        """Derived hashes on either side: the query's PDQs against stored derived ones, and the
        query's derived PDQs against stored whole-image and derived ones. A whole-image match
        at the same distance wins, so `via` is set only when a derived hash was needed.

        A stored centred crop (hashing/crops.py) counts only against the query's whole-image
        PDQs: the query is the cropped file itself. Matched by the query's detector regions
        too, crops added 0.001 of mean recall in the evaluation and one false positive (a
        trimmed clock face against an 85 % crop of another clock, BENCHMARKS.md).

        Corner-masked hashes (hashing/masked.py) match only each other: see _masked_matches.
        A lookup's windows match only stored centred crops: see _window_matches.
        A derived hash matching another must agree with it in colour (see gates.COLOUR_GAP)."""
        usable = [(n, d) for n, q in enumerate(queries) for d in policy.usable_derived(q.derived, self.settings)]
        # A query's own crops are no evidence (queries do not compute them), nor is a region
        # that is all but the query's whole image (see gates.NEAR_WHOLE).
        wholes = _ints_by_query(pdqs) if usable else {}  # a batch of plain PDQs has no regions
        mine = [(n, d) for n, d in usable if d.via not in (CROPPED, MASKED, WINDOW, ENLARGED) and not gates.deskewed_crop(d)
                and not (d.via in (TRIMMED, CONTENT) and gates.near(d.hash.hex, wholes.get(n, ()), gates.NEAR_WHOLE))]
        if mine:
            # A part of a composite (DerivedHash.part) is never matched to a whole image: see gates.PART_SHARE.
            whole_probes = [(n, d) for n, d in mine if not d.part]
            hits = self.indexes.search("pdq", [d.hash.hex for _, d in whole_probes], radius) if whole_probes else []
            for (n, d), found in zip(whole_probes, hits):
                for record_id, distance in found:
                    _keep(best, (n, record_id), distance, "pdq", d.via)
        turned = [(n, d) for n, d in usable if gates.deskewed_crop(d)]
        probes = [*pdqs, *((n, d.hash.hex) for n, d in mine), *((n, d.hash.hex) for n, d in turned)]
        mine_of: list[DerivedHash | None] = [*(None for _ in pdqs), *(d for _, d in mine), *(d for _, d in turned)]
        if not probes:
            return
        hits = self.indexes.search(DERIVED, [h for _, h in probes], radius)
        owners = self.store.derived_records([key for found in hits for key, _ in found])
        # (query n, record id) -> (distance, via) of derived-to-derived matches that need the
        # whole images' corroboration (see _same_share)
        unproven: dict[tuple[int, int], tuple[int, str]] = {}
        small = {n for n, d in usable if d.via == ENLARGED}  # queries with an enlarged copy of their own
        for (n, _), query_derived, found in zip(probes, mine_of, hits):
            for key, distance in found:
                if key not in owners:
                    continue
                record_id, stored_via, stored_share, stored_colours = owners[key]
                if stored_via == MASKED:
                    continue
                if stored_via == ENLARGED:
                    # A stored small image enlarged against a query's whole image that is not
                    # small: both read through a filter of a few pixels (see _enlarged_matches).
                    if query_derived is None and n not in small:
                        _keep(best, (n, record_id), distance, "pdq", ENLARGED)
                    continue
                if query_derived is None:
                    _keep(best, (n, record_id), distance, "pdq", stored_via)
                elif gates.colours_differ(query_derived.colours, stored_colours):
                    continue
                elif gates.deskewed_crop(query_derived):
                    if stored_via == CROPPED and gates.same_share(query_derived.share, stored_share):
                        _keep(best, (n, record_id), distance, "pdq", query_derived.via)
                elif stored_via == CROPPED:
                    continue
                elif gates.same_share(query_derived.share, stored_share):
                    if distance < unproven.get((n, record_id), (radius + 1, ""))[0]:
                        unproven[(n, record_id)] = (distance, query_derived.via)
                elif not query_derived.part or gates.could_be_part(stored_via, stored_share):
                    _keep(best, (n, record_id), distance, "pdq", query_derived.via)
        if unproven:
            self._corroborate(unproven, pdqs, best, gates.WHOLE_CORROBORATION)
        self._masked_matches([(n, d) for n, d in usable if d.via == MASKED], pdqs, radius, best)
        self._window_matches([(n, d) for n, d in usable if d.via == WINDOW], radius, best)
        self._enlarged_matches([(n, d) for n, d in usable if d.via == ENLARGED], pdqs, radius, best)

    def _enlarged_matches(self, enlarged: Sequence[tuple[int, DerivedHash]], pdqs: Sequence[tuple[int, str]],
                          pdq_radius: int, best: Best) -> None:
        """A small query's enlarged copy (hashing/enlarged.py) against stored enlarged copies,
        their colours agreeing (gates.COLOUR_GAP), within gates.ENLARGED_RADIUS, or within
        gates.ENLARGED_CORROBORATED with the whole images within gates.WHOLE_CORROBORATION; and against
        the whole-image PDQs of stored images that are not small (stored with derived hashes, no
        enlarged copy among them), within the PDQ radius; of one shared as a bare hash, within
        gates.ENLARGED_RADIUS or with the whole images corroborating. A stored small image meets
        a query's whole image in _derived_matches."""
        if not enlarged:
            return
        radius = min(gates.ENLARGED_CORROBORATED, pdq_radius)
        hits = self.indexes.search(DERIVED, [d.hash.hex for _, d in enlarged], radius)
        owners = self.store.derived_records([key for found in hits for key, _ in found])
        unproven: dict[tuple[int, int], tuple[int, str]] = {}
        for (n, query_derived), found in zip(enlarged, hits):
            for key, distance in found:
                if key not in owners or owners[key][1] != ENLARGED:
                    continue
                record_id, _, _, stored_colours = owners[key]
                if gates.colours_differ(query_derived.colours, stored_colours):
                    continue
                if distance <= min(gates.ENLARGED_RADIUS, pdq_radius):
                    _keep(best, (n, record_id), distance, "pdq", ENLARGED)
                elif distance < unproven.get((n, record_id), (radius + 1, ""))[0]:
                    unproven[(n, record_id)] = (distance, ENLARGED)
        if unproven:
            self._corroborate(unproven, pdqs, best, gates.WHOLE_CORROBORATION)
        hits = self.indexes.search("pdq", [d.hash.hex for _, d in enlarged], pdq_radius)
        candidates = {(n, record_id): distance for (n, _), found in zip(enlarged, hits) for record_id, distance in found}
        if not candidates:
            return
        stored = self.store.derived_hashes(sorted({record_id for _, record_id in candidates}))
        bare: dict[tuple[int, int], tuple[int, str]] = {}
        for (n, record_id), distance in candidates.items():
            kinds = {d.via for _, d in stored.get(record_id, ())}
            if ENLARGED in kinds:
                continue  # a small stored picture: its enlarged copy answered above
            if kinds or distance <= min(gates.ENLARGED_RADIUS, pdq_radius):
                _keep(best, (n, record_id), distance, "pdq", ENLARGED)
            else:
                # Shared as a bare hash (an HMA or ThreatExchange member's, an import): nothing
                # says the stored picture is not small, and a small one's whole PDQ reads its
                # pixels unsmoothed, so past ENLARGED_RADIUS the whole images must corroborate
                # it, as between two enlarged copies (found in trial: an 80-pixel grid shared
                # as a hash matched 112-pixel stripes at 28 bits, whole images 128 apart).
                bare[(n, record_id)] = (distance, ENLARGED)
        if bare:
            self._corroborate(bare, pdqs, best, gates.WHOLE_CORROBORATION)

    def _window_matches(self, windows: Sequence[tuple[int, DerivedHash]], radius: int, best: Best) -> None:
        """A query's windows (hashing/crops.py) against stored centred crops only, each smaller
        than the window (_fits_window), within gates.WINDOW_RADIUS (or the caller's PDQ threshold,
        when tighter), their colours agreeing (gates.COLOUR_GAP)."""
        if not windows:
            return
        radius = min(gates.WINDOW_RADIUS, radius)
        hits = self.indexes.search(DERIVED, [d.hash.hex for _, d in windows], radius)
        owners = self.store.derived_records([key for found in hits for key, _ in found])
        for (n, window), found in zip(windows, hits):
            for key, distance in found:
                if key not in owners:
                    continue
                record_id, stored_via, stored_share, stored_colours = owners[key]
                if stored_via != CROPPED or not gates.fits_window(window.share, stored_share):
                    continue
                if gates.colours_differ(window.colours, stored_colours):
                    continue
                _keep(best, (n, record_id), distance, "pdq", WINDOW)

    def _masked_matches(self, masked: Sequence[tuple[int, DerivedHash]], pdqs: Sequence[tuple[int, str]],
                        pdq_radius: int, best: Best) -> None:
        """A query's corner-masked PDQs against stored ones only, within gates.MASKED_RADIUS (or the
        caller's PDQ threshold, when tighter), with the whole images (any orientation) within
        gates.MASKED_CORROBORATION, and their colours agreeing (gates.COLOUR_GAP); for records no other
        PDQ matched (the masked distance is no measure of the whole pictures' closeness)."""
        radius = min(gates.MASKED_RADIUS, pdq_radius)
        if not masked:
            return
        hits = self.indexes.search(DERIVED, [d.hash.hex for _, d in masked], radius)
        owners = self.store.derived_records([key for found in hits for key, _ in found])
        unproven: dict[tuple[int, int], tuple[int, str]] = {}
        for (n, query_derived), found in zip(masked, hits):
            for key, distance in found:
                if key in owners and owners[key][1] == MASKED:
                    record_id = owners[key][0]
                    if gates.colours_differ(query_derived.colours, owners[key][3]):
                        continue
                    if best.get((n, record_id), (0, ""))[1] == "pdq":
                        continue
                    if distance < unproven.get((n, record_id), (radius + 1, ""))[0]:
                        unproven[(n, record_id)] = (distance, MASKED)
        if unproven:
            self._corroborate(unproven, pdqs, best, gates.MASKED_CORROBORATION)

    def _corroborate(self, unproven: dict[tuple[int, int], tuple[int, str]], pdqs: Sequence[tuple[int, str]],
                     best: Best, bound: int) -> None:
        """Keep a derived-to-derived match only if the query's whole-image PDQs (`pdqs`) are
        within `bound` bits of the record's."""
        wholes = _ints_by_query(pdqs)
        records = self.store.get_records(sorted({record_id for _, record_id in unproven}))
        for (n, record_id), (distance, via) in unproven.items():
            record = records.get(record_id)
            if record is None or record.signal != "pdq":
                continue
            if gates.near(record.value, wholes.get(n, ()), bound):
                _keep(best, (n, record_id), distance, "pdq", via)


def _ints_by_query(pdqs: Sequence[tuple[int, str]]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for n, hexv in pdqs:
        out.setdefault(n, []).append(int(hexv, 16))
    return out

def _has_pdq(query: Query) -> bool:
    # Any PDQ: an image too flat for a good PDQ (a gradient, a two-stripe flag) is exactly
    # where a 64-bit hash collides with unrelated images.
    return any(v.signal == "pdq" for v in query.hashes) or bool(query.derived)

def _keep(best: Best, key: tuple[int, int], distance: int,
          signal: str, via: str | None = None) -> None:
    if key not in best or distance < best[key][0]:
        best[key] = (distance, signal, via)
