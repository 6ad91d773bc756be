"""The cosine index returns exactly what a brute-force scan in Python returns."""

from __future__ import annotations

import math
import random

import numpy as np

from hashdb.index.cosine import CosineIndex


def test_cosine_index_equals_brute_force():
    rng = random.Random(5)
    dimension = 8
    rows = []
    for _ in range(300):
        v = [rng.gauss(0, 1) for _ in range(dimension)]
        norm = math.sqrt(sum(x * x for x in v))
        rows.append([x / norm for x in v])
    index = CosineIndex(dimension)
    ids = [rng.randrange(10**9) for _ in rows]
    index.add(ids[:100], np.array(rows[:100], dtype=np.float32))
    index.add(ids[100:], np.array(rows[100:], dtype=np.float32))  # added in blocks
    assert len(index) == 300
    for threshold in (0.9, 0.5, 0.0):
        for q in rows[:20]:
            [found] = index.search(np.array([q], dtype=np.float32), threshold)
            expected = {i for i, r in zip(ids, rows) if sum(a * b for a, b in zip(q, r)) >= threshold + 1e-5}
            near_edge = {i for i, r in zip(ids, rows) if abs(sum(a * b for a, b in zip(q, r)) - threshold) < 1e-5}
            got = {i for i, _ in found}
            assert expected <= got and got <= expected | near_edge
            assert [s for _, s in found] == sorted((s for _, s in found), reverse=True)
    assert CosineIndex(dimension).search(np.array([rows[0]], dtype=np.float32), 0.0) == [[]]
