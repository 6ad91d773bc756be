"""tmk records through the service: shared, matched by both TMK levels with a score, gone when
retracted, carried whole by the change feed into a mirror; on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tmkpy

from hashdb.hashing import tmk
from hashdb.io import output
from hashdb.partners import mirror
from hashdb.service.local import open_database
from hashdb.types import Query, Submission

from support import principal, tmk_of


def _share_and_match(service, media: Path) -> None:
    alice = principal(service, "alice", "contributor")
    [shared] = service.submit([Submission("clip", ("glorification",), media_type="video",
                                          tmk=tmk_of(media / "clip.mp4"))], alice)
    assert shared.status == "active" and not shared.duplicate
    [record_id] = shared.ids
    [again] = service.submit([Submission("clip", ("glorification",), media_type="video",
                                         tmk=tmk_of(media / "clip.mp4"))], alice)
    assert again.duplicate and again.ids == (record_id,)

    copy, unrelated = tmk_of(media / "clip_reencoded.mp4"), tmk_of(media / "other.mp4")
    found, missed = service.lookup([Query("copy", tmk=copy), Query("other", tmk=unrelated)], alice)
    [match] = found.matches
    # The score is tmkpy's level 2 for the same two videos (the independent oracle).
    expected = tmkpy.TMKFeatureVectors.computeLevel2Score(
        tmkpy.hashVideo(str(media / "clip.mp4"), "/usr/bin/ffmpeg"),
        tmkpy.hashVideo(str(media / "clip_reencoded.mp4"), "/usr/bin/ffmpeg"))
    assert (match.id, match.signal) == (record_id, "tmk")
    assert match.score == pytest.approx(expected, abs=1e-5) and match.score >= tmk.LEVEL2_THRESHOLD
    assert not missed.matched

    service.retract(record_id, alice)
    assert not service.lookup([Query("copy", tmk=copy)], alice)[0].matched


def test_a_shared_tmk_matches_a_reencoded_copy_and_stops_when_retracted(service, media):
    _share_and_match(service, media)


@pytest.mark.postgres
def test_the_same_over_postgresql(postgres_dsn, media, monkeypatch):
    monkeypatch.setenv("HASHDB_SECRET", "x" * 40)
    service = open_database(postgres_dsn)
    try:
        service.load_index()
        _share_and_match(service, media)
        # A second replica reads the stored features back byte for byte.
        other = open_database(postgres_dsn)
        try:
            [record] = [r for r in other.store.find_values("tmk", [tmk.tmk_digest(tmk_of(media / "clip.mp4"))])]
            assert other.store.tmk_features([record.id]) == {record.id: tmk_of(media / "clip.mp4")}
        finally:
            other.store.close()
    finally:
        service.store.close()


def test_the_feed_carries_the_tmk_into_a_mirror(service, media, tmp_path):
    alice = principal(service, "alice", "contributor")
    service.submit([Submission("clip", ("glorification",), media_type="video", tmk=tmk_of(media / "clip.mp4"))],
                   alice)
    entries, _ = service.export(principal(service, "ops", "admin"))
    [entry] = entries
    assert entry.signal == "tmk" and entry.tmk is not None and entry.tmk.features == tmk_of(media / "clip.mp4")

    copy = open_database(str(tmp_path / "mirror.sqlite"))
    try:
        admin = principal(copy, "ops", "admin")
        # Through the JSONL line `hashdb export` writes and `hashdb import` reads.
        line = json.loads(json.dumps(output.feed_json(entry)))
        assert tmk.parse_text(line["tmk"]).data == tmk_of(media / "clip.mp4")
        parsed = mirror.parse_entry(line, copy.taxonomy)
        mirror.apply(copy, mirror.Source.from_url("https://hashdb.example.org"), [parsed], None, admin)
        copy.load_index()
        [result] = copy.lookup([Query("copy", tmk=tmk_of(media / "clip_reencoded.mp4"))], admin)
        assert [m.signal for m in result.matches] == ["tmk"]
        assert copy.store.tmk_features([result.matches[0].id]) == {result.matches[0].id: tmk_of(media / "clip.mp4")}
    finally:
        copy.store.close()


def test_a_feed_entry_whose_hash_is_not_its_tmks_digest_is_refused(service, media):
    from hashdb.errors import HashDBError

    alice = principal(service, "alice", "contributor")
    service.submit([Submission("clip", ("glorification",), media_type="video", tmk=tmk_of(media / "clip.mp4"))],
                   alice)
    [entry] = service.export(principal(service, "ops", "admin"))[0]
    line = output.feed_json(entry)
    for tampered in ({**line, "hash": "0" * 64}, {**line, "tmk": tmk.encode_text(tmk_of(media / "other.mp4"))},
                     {**line, "tmk": "AAAA"}, {**line, "signal": "vpdq"}, {**line, "signal": "md5"}):
        with pytest.raises(HashDBError):
            mirror.parse_entry(tampered, service.taxonomy)
    assert mirror.parse_entry(line, service.taxonomy).tmk == entry.tmk
