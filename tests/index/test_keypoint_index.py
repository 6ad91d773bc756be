"""The keypoint index's candidates (index/keypoints.py): each query descriptor votes for the image
of its nearest stored descriptor, checked against votes counted here by brute force in numpy,
on the flat scan and on the inverted file it grows into."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from hashdb.index import keypoints as kp


def images(count: int, points: int, seed: int = 0) -> dict[int, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {1000 + n: rng.integers(0, 256, (points, 32), dtype=np.uint8) for n in range(count)}


def noisy(descriptors: np.ndarray, flips: int, seed: int) -> np.ndarray:
    """Each descriptor with `flips` of its bits flipped."""
    rng = np.random.default_rng(seed)
    out = descriptors.copy()
    for row in out:
        for bit in rng.choice(256, flips, replace=False):
            row[bit // 8] ^= 1 << (bit % 8)
    return out


def brute_force_votes(stored: dict[int, np.ndarray], query: np.ndarray) -> Counter[int]:
    owners = np.concatenate([np.full(len(d), rid) for rid, d in stored.items()])
    bits = np.unpackbits(np.concatenate(list(stored.values())), axis=1).astype(np.int32)
    votes: Counter[int] = Counter()
    for q in np.unpackbits(query, axis=1).astype(np.int32):
        distance = np.abs(bits - q).sum(axis=1)
        order = np.argsort(distance, kind="stable")
        best = owners[order[0]]
        rival = next(distance[i] for i in order[1:] if owners[i] != best)
        if distance[order[0]] <= kp.MAX_DISTANCE and distance[order[0]] < kp.RATIO * rival:
            votes[int(best)] += 1
    return votes


@pytest.mark.parametrize("count", [8, 80])  # 1,600 descriptors: a flat scan; 16,000: an inverted file
def test_a_noisy_copy_votes_for_its_own_image(count):
    stored = images(count, 200)
    index = kp.KeypointIndex()
    ids = sorted(stored)
    for start in range(0, count, 7):  # added in blocks, as the store is read
        index.add(ids[start:start + 7], [stored[i] for i in ids[start:start + 7]])
    assert len(index) == 200 * count
    target = ids[count // 2]
    query = noisy(stored[target][:60], 20, seed=1)
    expected = brute_force_votes(stored, query)
    assert expected.most_common(1)[0][0] == target
    found = index.candidates(query)
    assert found[0] == target
    assert index.candidates(query, frozenset({target})) != [target] and target not in index.candidates(query, frozenset({target}))


def test_random_descriptors_vote_for_nothing():
    stored = images(20, 200)
    index = kp.KeypointIndex()
    index.add(sorted(stored), [stored[i] for i in sorted(stored)])
    stranger = np.random.default_rng(99).integers(0, 256, (300, 32), dtype=np.uint8)
    assert not brute_force_votes(stored, stranger)
    assert index.candidates(stranger) == []


def test_an_empty_index_has_no_candidates():
    assert kp.KeypointIndex().candidates(np.zeros((5, 32), np.uint8)) == []


@pytest.mark.parametrize("count", [8, 80])
def test_a_picture_stored_by_three_records_gets_the_votes_of_all_three(count):
    stored = images(count, 200)
    target = sorted(stored)[count // 2]
    twin = noisy(stored[target], 4, seed=5)  # a re-encoded copy's descriptors, a few bits off
    stored[1] = stored[target].copy()  # the same file shared again
    stored[2] = twin
    index = kp.KeypointIndex()
    index.add(sorted(stored), [stored[i] for i in sorted(stored)])
    query = noisy(stored[target][:60], 20, seed=1)
    assert sorted(index.candidates(query)[:3]) == sorted([1, 2, target])
    # one of them already matched: the others still voted for
    assert sorted(index.candidates(query, frozenset({target}))[:2]) == [1, 2]


def test_the_lists_are_capped(monkeypatch):
    monkeypatch.setattr(kp, "MAX_LISTS", 4)
    stored = images(80, 200)
    index = kp.KeypointIndex()
    index.add(sorted(stored), [stored[i] for i in sorted(stored)])
    assert index._index.nlist == 4  # 16,000 descriptors would make 40 lists of LIST_SIZE
    target = sorted(stored)[7]
    assert index.candidates(noisy(stored[target][:60], 20, seed=1))[0] == target


def filled_index(count: int) -> tuple[kp.KeypointIndex, dict[int, np.ndarray]]:
    stored = images(count, 200)
    index = kp.KeypointIndex()
    ids = sorted(stored)
    for start in range(0, count, 7):
        index.add(ids[start:start + 7], [stored[i] for i in ids[start:start + 7]])
    return index, stored


def queries_of(stored: dict[int, np.ndarray]) -> list[tuple[np.ndarray, frozenset[int]]]:
    ids = sorted(stored)
    found = [(noisy(stored[i][:60], 20, seed=i), frozenset()) for i in ids[::3]]
    stranger = np.random.default_rng(7).integers(0, 256, (300, 32), dtype=np.uint8)
    return [*found, (found[0][0], frozenset({ids[0]})), (stranger, frozenset())]


def list_sizes(index: kp.KeypointIndex) -> list[int]:
    inverted = index._index
    return [inverted.get_list_size(i) for i in range(inverted.nlist)]


@pytest.mark.parametrize("count", [8, 80])  # a flat scan; an inverted file
def test_a_saved_index_loads_with_the_same_candidates(tmp_path, count):
    index, stored = filled_index(count)
    index.save(tmp_path / "keypoints.faiss", covers_row=123, owner="db/123")
    loaded, manifest = kp.KeypointIndex.load(tmp_path / "keypoints.faiss")
    assert (manifest.covers_seq, manifest.owner) == (123, "db/123")
    assert len(loaded) == len(index) == 200 * count
    queries = queries_of(stored)
    assert [loaded.candidates(q, skip) for q, skip in queries] == [index.candidates(q, skip) for q, skip in queries]
    # Rows added after the load go where they would have gone: the lists as trained, not
    # trained again on the load's first add.
    more = images(3, 200, seed=5)
    for each in (index, loaded):
        each.add(sorted(more), [more[i] for i in sorted(more)])
    stored.update(more)
    queries = queries_of(stored)
    assert [loaded.candidates(q, skip) for q, skip in queries] == [index.candidates(q, skip) for q, skip in queries]
    if count > 10:
        assert list_sizes(loaded) == list_sizes(index)


def damage(path, what: str) -> None:
    import json

    from hashdb.index._files import read_manifest

    files = read_manifest(path, ("keypoints",)).files
    if what == "manifest":
        path.write_text(path.read_text()[:40])
    elif what == "kind":
        body = json.loads(path.read_text())
        path.write_text(json.dumps({**body, "kind": "faiss"}))
    elif what == "missing":
        (path.parent / files["codes"]).unlink()
    else:  # a data file cut short, as a full disk leaves it
        data = path.parent / files[what]
        data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])


@pytest.mark.parametrize("what", ["manifest", "kind", "missing", "faiss", "codes", "owners"])
def test_a_damaged_save_is_index_stale(tmp_path, what):
    from hashdb.errors import IndexStale

    index, _ = filled_index(80)
    path = tmp_path / "keypoints.faiss"
    index.save(path, covers_row=1, owner="db")
    damage(path, what)
    with pytest.raises(IndexStale):
        kp.KeypointIndex.load(path)


def test_a_hash_index_loader_refuses_a_keypoint_save(tmp_path):
    from hashdb.errors import IndexStale
    from hashdb.index.base import load_saved

    index, _ = filled_index(8)
    index.save(tmp_path / "pdq.faiss", covers_row=1, owner="db")
    with pytest.raises(IndexStale):
        load_saved(tmp_path / "pdq.faiss")
