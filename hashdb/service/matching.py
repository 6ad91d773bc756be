"""Matching: look queries up by exact value or within a Hamming radius, and videos by the vPDQ rule."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

from hashdb.hashing import vpdq_rule
from hashdb.hashing.colour import colour_gap
from hashdb.hashing.derived import CONTENT, CROPPED, DESKEWED, ENLARGED, MASKED, PART_SPLIT, TRIMMED, WINDOW
from hashdb.hashing.registry import get_signal
from hashdb.index.indexset import DERIVED
from hashdb.service.base import ServiceBase
from hashdb.trust import policy
from hashdb.types import (
    DerivedHash, FrameHash, LookupResult, Match, PdqBatch, Principal, Query, VideoMatch,
)

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
        video: dict[tuple[int, int], VideoMatch] = {}
        for n, query in enumerate(queries):
            if query.frames:
                for record_id, (distance, match) in self._video_candidates(query.frames, limits["vpdq"]).items():
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

    def _gate_64_bit(self, queries: Sequence[Query], best: Best) -> None:
        """Drop (or tighten) pHash/dHash matches of queries that carry a PDQ (see
        Settings.imagehash_threshold_with_pdq): there PDQ decides."""
        gate = self.settings.imagehash_threshold_with_pdq
        radius = -1 if gate is None else min(gate, self.settings.imagehash_threshold)
        for key in [k for k, (distance, signal, _) in best.items() if signal in _BITS_64 and distance > radius]:
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
        A derived hash matching another must agree with it in colour (see COLOUR_GAP)."""
        usable = [(n, d) for n, q in enumerate(queries) for d in policy.usable_derived(q.derived, self.settings)]
        # A query's own crops are no evidence (queries do not compute them), nor is a region
        # that is all but the query's whole image (see NEAR_WHOLE).
        wholes = _ints_by_query(pdqs) if usable else {}  # a batch of plain PDQs has no regions
        mine = [(n, d) for n, d in usable if d.via not in (CROPPED, MASKED, WINDOW, ENLARGED) and not _deskewed_crop(d)
                and not (d.via in (TRIMMED, CONTENT) and _near(d.hash.hex, wholes.get(n, ()), NEAR_WHOLE))]
        if mine:
            # A part of a composite (DerivedHash.part) is never matched to a whole image: see PART_SHARE.
            whole_probes = [(n, d) for n, d in mine if not d.part]
            hits = self.indexes.search("pdq", [d.hash.hex for _, d in whole_probes], radius) if whole_probes else []
            for (n, d), found in zip(whole_probes, hits):
                for record_id, distance in found:
                    _keep(best, (n, record_id), distance, "pdq", d.via)
        turned = [(n, d) for n, d in usable if _deskewed_crop(d)]
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
                elif _colours_differ(query_derived.colours, stored_colours):
                    continue
                elif _deskewed_crop(query_derived):
                    if stored_via == CROPPED and _same_share(query_derived.share, stored_share):
                        _keep(best, (n, record_id), distance, "pdq", query_derived.via)
                elif stored_via == CROPPED:
                    continue
                elif _same_share(query_derived.share, stored_share):
                    if distance < unproven.get((n, record_id), (radius + 1, ""))[0]:
                        unproven[(n, record_id)] = (distance, query_derived.via)
                elif not query_derived.part or _could_be_part(stored_via, stored_share):
                    _keep(best, (n, record_id), distance, "pdq", query_derived.via)
        if unproven:
            self._corroborate(unproven, pdqs, best, WHOLE_CORROBORATION)
        self._masked_matches([(n, d) for n, d in usable if d.via == MASKED], pdqs, radius, best)
        self._window_matches([(n, d) for n, d in usable if d.via == WINDOW], radius, best)
        self._enlarged_matches([(n, d) for n, d in usable if d.via == ENLARGED], pdqs, radius, best)

    def _enlarged_matches(self, enlarged: Sequence[tuple[int, DerivedHash]], pdqs: Sequence[tuple[int, str]],
                          pdq_radius: int, best: Best) -> None:
        """A small query's enlarged copy (hashing/enlarged.py) against stored enlarged copies,
        their colours agreeing (COLOUR_GAP), within ENLARGED_RADIUS, or within
        ENLARGED_CORROBORATED with the whole images within WHOLE_CORROBORATION; and against
        the whole-image PDQs of stored images that are not small (no enlarged copy), within
        the PDQ radius. A stored small image meets a query's whole image in _derived_matches."""
        if not enlarged:
            return
        radius = min(ENLARGED_CORROBORATED, pdq_radius)
        hits = self.indexes.search(DERIVED, [d.hash.hex for _, d in enlarged], radius)
        owners = self.store.derived_records([key for found in hits for key, _ in found])
        unproven: dict[tuple[int, int], tuple[int, str]] = {}
        for (n, query_derived), found in zip(enlarged, hits):
            for key, distance in found:
                if key not in owners or owners[key][1] != ENLARGED:
                    continue
                record_id, _, _, stored_colours = owners[key]
                if _colours_differ(query_derived.colours, stored_colours):
                    continue
                if distance <= min(ENLARGED_RADIUS, pdq_radius):
                    _keep(best, (n, record_id), distance, "pdq", ENLARGED)
                elif distance < unproven.get((n, record_id), (radius + 1, ""))[0]:
                    unproven[(n, record_id)] = (distance, ENLARGED)
        if unproven:
            self._corroborate(unproven, pdqs, best, WHOLE_CORROBORATION)
        hits = self.indexes.search("pdq", [d.hash.hex for _, d in enlarged], pdq_radius)
        candidates = {(n, record_id): distance for (n, _), found in zip(enlarged, hits) for record_id, distance in found}
        if not candidates:
            return
        stored = self.store.derived_hashes(sorted({record_id for _, record_id in candidates}))
        for (n, record_id), distance in candidates.items():
            if not any(d.via == ENLARGED for _, d in stored.get(record_id, ())):
                _keep(best, (n, record_id), distance, "pdq", ENLARGED)

    def _window_matches(self, windows: Sequence[tuple[int, DerivedHash]], radius: int, best: Best) -> None:
        """A query's windows (hashing/crops.py) against stored centred crops only, each smaller
        than the window (_fits_window), within WINDOW_RADIUS (or the caller's PDQ threshold,
        when tighter), their colours agreeing (COLOUR_GAP)."""
        if not windows:
            return
        radius = min(WINDOW_RADIUS, radius)
        hits = self.indexes.search(DERIVED, [d.hash.hex for _, d in windows], radius)
        owners = self.store.derived_records([key for found in hits for key, _ in found])
        for (n, window), found in zip(windows, hits):
            for key, distance in found:
                if key not in owners:
                    continue
                record_id, stored_via, stored_share, stored_colours = owners[key]
                if stored_via != CROPPED or not _fits_window(window.share, stored_share):
                    continue
                if _colours_differ(window.colours, stored_colours):
                    continue
                _keep(best, (n, record_id), distance, "pdq", WINDOW)

    def _masked_matches(self, masked: Sequence[tuple[int, DerivedHash]], pdqs: Sequence[tuple[int, str]],
                        pdq_radius: int, best: Best) -> None:
        """A query's corner-masked PDQs against stored ones only, within MASKED_RADIUS (or the
        caller's PDQ threshold, when tighter), with the whole images (any orientation) within
        MASKED_CORROBORATION, and their colours agreeing (COLOUR_GAP); for records no other
        PDQ matched (the masked distance is no measure of the whole pictures' closeness)."""
        radius = min(MASKED_RADIUS, pdq_radius)
        if not masked:
            return
        hits = self.indexes.search(DERIVED, [d.hash.hex for _, d in masked], radius)
        owners = self.store.derived_records([key for found in hits for key, _ in found])
        unproven: dict[tuple[int, int], tuple[int, str]] = {}
        for (n, query_derived), found in zip(masked, hits):
            for key, distance in found:
                if key in owners and owners[key][1] == MASKED:
                    record_id = owners[key][0]
                    if _colours_differ(query_derived.colours, owners[key][3]):
                        continue
                    if best.get((n, record_id), (0, ""))[1] == "pdq":
                        continue
                    if distance < unproven.get((n, record_id), (radius + 1, ""))[0]:
                        unproven[(n, record_id)] = (distance, MASKED)
        if unproven:
            self._corroborate(unproven, pdqs, best, MASKED_CORROBORATION)

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
            if _near(record.value, wholes.get(n, ()), bound):
                _keep(best, (n, record_id), distance, "pdq", via)

    def _video_candidates(self, frames: Sequence[FrameHash], radius: int) -> dict[int, tuple[int, VideoMatch]]:
        """Stored videos passing the vPDQ rule: candidates from the frame index, then exact percentages."""
        rule = dataclasses.replace(vpdq_rule.VpdqRule.from_settings(self.settings), distance=radius)
        query = policy.good_frames(frames, self.settings)
        if not query:
            return {}
        hits = self.indexes.search("vpdq", [f.hash.hex for f in query], radius)
        owners = self.store.frame_records([fid for found in hits for fid, _ in found])
        nearest: dict[int, int] = {}
        for found in hits:
            for fid, distance in found:
                record_id = owners.get(fid)
                if record_id is not None and distance < nearest.get(record_id, radius + 1):
                    nearest[record_id] = distance
        stored = self.store.timed_frames(sorted(nearest))
        out: dict[int, tuple[int, VideoMatch]] = {}
        for record_id, distance in nearest.items():
            stored_frames = stored[record_id]
            # Stored videos are sampled denser than queries (video_stored_fps, or less for a long
            # one), queries at video_fps: the stored share is counted in query samples, and the
            # stored video's length in them is what the rule's "contained in a longer copy"
            # needs; both by the stored frames' timestamps, whatever rate they were taken at.
            interval = 1.0 / self.settings.video_fps
            match = vpdq_rule.compare_videos(query, stored_frames, rule, interval)
            if len({f.timestamp for f in stored_frames}) > 1:
                length: float = vpdq_rule.samples_in(stored_frames, interval, rule.min_quality)
            else:  # a feed from before frames carried times (all at 0) came from a hashdb that
                # stored every video at video_stored_fps (long ones could not be stored)
                length = len(vpdq_rule.unique_good_hashes(stored_frames, rule.min_quality)) * (
                    self.settings.video_fps / self.settings.video_stored_fps)
            which = rule.which(match, vpdq_rule.sampled_frames(query, rule.min_quality), length)
            if which is not None:
                out[record_id] = (distance, dataclasses.replace(match, rule=which))
        return out


_BITS_64 = ("phash", "dhash")

# Two derived hashes of regions covering the same share of their images (within 5 %) say the
# two images have the same layout; if they were the same picture, their whole-image PDQs
# would then be close too. Without that, such a match is a part two different pictures share:
# icons of one theme (the same glyph above different captions), card faces, pictograms.
# Measured on the full evaluation (BENCHMARKS.md, "Matching quality"): of the
# derived-to-derived matches of same-share regions, 702 of 704 that named the right image had
# whole-image PDQs within 63 bits, and 7 of the 9 false positives 64 bits or more apart.
SAME_SHARE = 0.05
WHOLE_CORROBORATION = 64

# Corner-masked hashes (hashing/masked.py) leave 80 % of the picture; that part must be all but
# unchanged. Measured on the full evaluation (BENCHMARKS.md, "Matching quality"): at 5 bits
# corner logos went 0.68/0.39 -> 0.94/0.79 (small/large) with one false positive added (two
# repeating warning patterns whose whole images are 32 bits apart); at 8 bits logos reached
# 0.95/0.85 but two moon phases matched a new moon (the covered corner held the lit part).
# The whole images must also be within 96 bits (a logo moved them by 50 at the median;
# unrelated pictures sit at 110 and more): at 8 bits that bound took out one false positive
# at no cost in recall.
MASKED_RADIUS = 5
MASKED_CORROBORATION = 96

# Two derived hashes that match must agree in colour too (hashing/colour.py): PDQ reads
# brightness only, and the derived hashes' false positives in the evaluation were mostly
# pictures that differ in colour alone: the flags of Ireland and Guinea through their trimmed
# regions (a colour gap of 55), a blue and a green folder icon (33), warning stripes on orange
# and on grey through the corner-masked hashes (61). A copy, and a copy greyed, brightened or
# saturated (colour.colour_gap scales the stored colours to fit), sits under 10; a hue turned
# by up to 28 degrees under 21. Measured on the evaluation (BENCHMARKS.md, "Matching quality"):
# any gap from 15 to 30 gives the same counts (false positives 6 -> 3 of 5,000, recall
# unchanged); the right matches' largest gap was 19.1 (full run) and 20.7 (medium).
# A whole-image PDQ carries no colours: a match through it, on either side, is not gated.
COLOUR_GAP = 25.0


# A lookup's windows (hashing/crops.py) are 18 tries at a stored picture's centred crops: each
# more try lets a look-alike whose whole image is just past PDQ's 31 bits (two clocks by one
# author, two flags of one layout, an emoji and its neighbour: whole images 32 to 48 bits
# apart) match through some window. Measured on the full evaluation (BENCHMARKS.md, "Matching
# quality"): windows against any stored crop no larger, within 31 bits, colours agreeing,
# took false positives 3 -> 11 of 5,000; against crops smaller than the window only (the
# same-size pairs were 5 of the 8 and no crop query's match), 5; within 28 bits too, 3 (main's,
# no window among them), with crop_95_90 0.769 -> 0.819 and crop_85 0.550 -> 0.613, two
# queries fewer each than at 31 bits (replayed on the first run's logged matches).
WINDOW_RADIUS = 28

# Enlarged copies of small images (hashing/enlarged.py). A small query's enlarged copy against
# a stored image's whole-image PDQ (or a query's whole image against a stored enlarged copy)
# compares two readings through a filter of a few pixels only when the whole-image side is not
# small itself (has no enlarged copy): a small whole image's PDQ reads its pixels unsmoothed,
# 20 to 40 bits from its own enlarged copy; such pairs gave a false positive (two person icons
# of one theme at 30 bits) and no right match another pair did not give too. Two enlarged
# copies are the same picture read the same way: most right matches sit at 0 to 12 bits, but
# small look-alikes meet too (two checker patterns at 14 bits, tiles of one series at 28 and
# 30, two muffin drawings at 24), whose whole images are 90 to 104 bits apart (the muffins 32).
# From 12 to 22 bits the whole images must be within WHOLE_CORROBORATION, as for regions of the
# same share. Measured on the full evaluation (BENCHMARKS.md, "Matching quality"): every pair
# within 31 bits (colours agreeing) took resize 0.850 -> 0.956 and false positives 4 -> 9 of
# 5,000; these rules resize 0.944, false positives 4 (main's), mean recall 0.863 -> 0.869;
# 12 bits alone 0.931; the corroborated band to 24 bits lets the muffins in.
ENLARGED_RADIUS = 12
ENLARGED_CORROBORATED = 22

# A query's trimmed or content region whose PDQ is within this many bits of the query's own
# whole-image PDQ (a trim of a pixel or two) says what the whole image says: matched at up to
# 31 bits, it would let the whole image match at up to 31 + this. Measured on the full
# evaluation (BENCHMARKS.md, "Matching quality"): at 20, 24, 28 or 32 bits it took out one
# false positive (a card whose 2-pixel trim matched another card at 26 bits, the whole
# images 36 apart) and no query's match.
NEAR_WHOLE = 24

# A part of a composite picture (DerivedHash.part: one of two pictograms side by side, one
# glyph of an icon) can be the same picture as the stored image only if the stored side cut
# out the same part (records stored before stored images kept no parts, see
# derived.PART_SPLIT, or a picture under bands that is no larger): a stored content region
# small enough to be such a part (a block with
# a runner-up of PART_SPLIT its length holds at most 1 / (1 + PART_SPLIT) of the picture),
# or a region of the same share whose whole image corroborates it (see SAME_SHARE). Against
# a whole image, a trimmed region or a large content region, the part is one picture found
# inside another: a barber's pictogram naming the sign that pairs it with a beauty salon's,
# an icon's question mark naming another icon's cross. Measured on the full evaluation (BENCHMARKS.md,
# "Matching quality"): 3 false positives went (4 with NEAR_WHOLE's), no query's match; with
# no bound on the stored share, only 1.
PART_SHARE = 1 / (1 + PART_SPLIT)


def _colours_differ(query: str | None, stored: str | None) -> bool:
    # Unknown on either side (a row stored before layouts were kept, an older client): no gate.
    return query is not None and stored is not None and colour_gap(query, stored) > COLOUR_GAP


def _could_be_part(stored_via: str, stored_share: float | None) -> bool:
    return stored_via == CONTENT and (stored_share is None or stored_share <= PART_SHARE)


def _ints_by_query(pdqs: Sequence[tuple[int, str]]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for n, hexv in pdqs:
        out.setdefault(n, []).append(int(hexv, 16))
    return out


def _near(hexv: str, others: Sequence[int], bits: int) -> bool:
    value = int(hexv, 16)
    return any((value ^ other).bit_count() <= bits for other in others)


def _same_share(query: float | None, stored: float | None) -> bool:
    if not query or not stored:
        return False  # unknown (a row stored before shares were kept, a partner's older client)
    return abs(math.log(query / stored)) <= SAME_SHARE


def _fits_window(window: float | None, stored: float | None) -> bool:
    # A window of the query is a crop of what the query kept of the picture, so it holds less
    # of the picture than its own share: a stored crop as large (within SAME_SHARE) says the
    # query is the whole picture, which its whole-image PDQ answers, and a larger one is
    # another part of the picture. See WINDOW_RADIUS for what the same-size pairs cost.
    if not window or not stored:
        return False
    return math.log(stored / window) < -SAME_SHARE


def _deskewed_crop(derived: DerivedHash) -> bool:
    return derived.via == DESKEWED and derived.share is not None


def _has_pdq(query: Query) -> bool:
    # Any PDQ: an image too flat for a good PDQ (a gradient, a two-stripe flag) is exactly
    # where a 64-bit hash collides with unrelated images.
    return any(v.signal == "pdq" for v in query.hashes) or bool(query.derived)


def _keep(best: Best, key: tuple[int, int], distance: int,
          signal: str, via: str | None = None) -> None:
    if key not in best or distance < best[key][0]:
        best[key] = (distance, signal, via)
