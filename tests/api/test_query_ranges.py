"""Query parameters say the range they take: quality 0 is accepted, so "a positive integer"
was wrong."""

from __future__ import annotations

import random

import pytest

from support import random_pdq


@pytest.mark.parametrize("given", ["abc", "101", "-1"])
def test_lookup_quality_out_of_range_says_the_range(client, keys, given):
    pdq = random_pdq(random.Random(7))
    response = client.get(f"/v1/lookup?signal=pdq&hash={pdq}&quality={given}",
                          headers={"Authorization": f"Bearer {keys['consumer']}"})
    assert response.status_code == 400
    assert response.get_json()["error"]["message"] == "quality must be an integer from 0 to 100"


def test_lookup_quality_zero_is_accepted(client, keys):
    pdq = random_pdq(random.Random(7))
    response = client.get(f"/v1/lookup?signal=pdq&hash={pdq}&quality=0",
                          headers={"Authorization": f"Bearer {keys['consumer']}"})
    assert response.status_code == 200, response.get_json()


def test_export_limit_says_its_range(client, keys):
    response = client.get("/v1/export?limit=abc", headers={"Authorization": f"Bearer {keys['partner']}"})
    assert response.status_code == 400
    assert response.get_json()["error"]["message"] == "limit must be an integer from 1 to 10000"
