"""Matching: look queries up by exact value or within a Hamming radius, and videos by the vPDQ rule."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from hashdb.hashing.registry import get_signal
from hashdb.service.base import ServiceBase
from hashdb.trust import policy
from hashdb.types import FrameHash, HashValue, LookupResult, Match, Principal, Query, VideoMatch


class MatchingMixin(ServiceBase):
    def lookup(self, queries: Sequence[Query], actor: Principal,
               thresholds: Mapping[str, int] | None = None, count: bool = True) -> list[LookupResult]:
        """Matches `actor` may see. `count=False` keeps the lookup out of the spike rule's
        counts (a local lookup: nobody else's crowd)."""
        policy.require(actor, "lookup")
        limits = policy.thresholds(self.settings, thresholds or {})
        self.indexes.catch_up()
        # best[(query n, record id)] = (distance, signal)
        best: dict[tuple[int, int], tuple[int, str]] = {}
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
        video: dict[tuple[int, int], VideoMatch] = {}
        for n, query in enumerate(queries):
            if query.frames:
                for record_id, (distance, match) in self._video_candidates(query.frames, limits["vpdq"]).items():
                    _keep(best, (n, record_id), distance, "vpdq")
                    video[(n, record_id)] = match
        records = self.store.get_records([rid for _, rid in best])
        # A mirror's records name their source and id there: feedback goes to the source.
        origins = self.store.mirror_origins(list(records)) if records else {}
        per_query: list[list[Match]] = [[] for _ in queries]
        for (n, record_id), (distance, signal) in best.items():
            stored = records.get(record_id)
            if stored is None or not policy.visible(stored, actor):
                continue
            per_query[n].append(Match(stored.id, signal, distance, stored.labels, stored.status,
                                      stored.support, stored.agree, stored.disagree,
                                      video.get((n, record_id)), *origins.get(record_id, (None, None))))
        if count and not actor.is_admin:  # operators investigating are not the crowd the spike rule watches
            self.spike_rule.count(per_query, actor.org_id)
        results = []
        for query, matches in zip(queries, per_query):
            matches.sort(key=lambda m: (m.distance, m.id))
            results.append(LookupResult(query.input, bool(matches), tuple(matches),
                                        policy.query_flags(query, self.settings)))
        return results

    def _video_candidates(self, frames: Sequence[FrameHash], radius: int) -> dict[int, tuple[int, VideoMatch]]:
        """Stored videos passing the vPDQ rule: candidates from the frame index, then exact percentages."""
        from hashdb.hashing import video

        rule = dataclasses.replace(video.VpdqRule.from_settings(self.settings), distance=radius)
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
        stored = self.store.video_frames(sorted(nearest))
        out: dict[int, tuple[int, VideoMatch]] = {}
        for record_id, distance in nearest.items():
            stored_frames = [FrameHash(n, 0.0, HashValue("pdq", h, q)) for n, (_, h, q) in enumerate(stored[record_id])]
            match = video.compare_videos(query, stored_frames, rule)
            if rule.is_match(match):
                out[record_id] = (distance, match)
        return out


def _keep(best: dict[tuple[int, int], tuple[int, str]], key: tuple[int, int], distance: int, signal: str) -> None:
    if key not in best or distance < best[key][0]:
        best[key] = (distance, signal)
