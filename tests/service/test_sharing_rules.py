"""What may be shared, and what a submission says about what it did: degenerate perceptual
hashes, PDQ quality, re-sharing a retracted hash, owners withdrawing quarantined records,
safelist holds and duplicates reported as such."""

from __future__ import annotations

import random

import pytest

from hashdb.errors import InvalidHash, LowQuality
from hashdb.types import FrameHash, HashValue, Query, Submission
from support import principal, random_pdq

LABELS = ("glorification",)


@pytest.mark.parametrize("signal, hex_value", [
    ("phash", "0000000000000000"),
    ("dhash", "ffffffffffffffff"),
    ("phash", "8000000000000000"),
    ("dhash", "fffffffffffffffe"),
    ("phash", "000000000000007f"),  # 7 bits: one under the edge
])
def test_degenerate_64_bit_hashes_are_refused_like_pdq(service, signal, hex_value):
    # Issue item 4: these were stored active, and an all-zero pHash then matched any flat image.
    alice = principal(service, "alice", "contributor")
    with pytest.raises(InvalidHash, match="degenerate"):
        service.submit([Submission("x", LABELS, (HashValue(signal, hex_value),))], alice)
    assert service.store.last_seq() == 0


def test_the_degeneracy_bounds_are_an_eighth_of_the_bits(service):
    alice = principal(service, "alice", "contributor")
    edge_low, edge_high = "00000000000000ff", "ff00ffffffffffff"  # 8 and 56 bits set: accepted
    results = service.submit([Submission("lo", LABELS, (HashValue("phash", edge_low),)),
                              Submission("hi", LABELS, (HashValue("dhash", edge_high),))], alice)
    assert [r.status for r in results] == ["active", "active"]


def test_a_pdq_without_quality_is_refused(service):
    # Issue item 4: a PDQ submitted without quality skipped the quality rule.
    alice = principal(service, "alice", "contributor")
    with pytest.raises(LowQuality, match="quality is required"):
        service.submit([Submission("x", LABELS, (HashValue("pdq", random_pdq(random.Random(1))),))], alice)
    frames = tuple(FrameHash(n, float(n), HashValue("pdq", random_pdq(random.Random(n)))) for n in range(3))
    with pytest.raises(LowQuality, match="quality"):
        service.submit([Submission("clip", LABELS, frames=frames, media_type="video")], alice)
    assert service.store.last_seq() == 0


def test_a_file_keeps_its_exact_hashes_when_a_perceptual_one_is_degenerate(service):
    alice = principal(service, "alice", "contributor")
    sub = Submission("flat.png", LABELS, (HashValue("md5", "ab" * 16), HashValue("dhash", "0" * 16)))
    [result] = service.submit([sub], alice)
    assert len(result.ids) == 1 and result.status == "active"
    assert result.skipped and "dhash hash is degenerate" in result.skipped[0]


def test_degenerate_queries_still_get_an_answer(service):
    # Lookups are not refused: a platform may hash a flat upload; it simply matches nothing here.
    alice = principal(service, "alice", "contributor")
    [result] = service.lookup([Query("q", (HashValue("phash", "0" * 16),))], alice)
    assert not result.matched
