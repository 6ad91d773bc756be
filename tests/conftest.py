"""Shared fixtures. External resources (../shared/vectors, PostgreSQL) skip with a reason on a
developer's fresh clone, but are required when CI=true so CI can never pass by skipping them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures" / "media"
VECTORS = ROOT.parent / "shared" / "vectors"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_or_skip(available: bool, what: str) -> None:
    if available:
        return
    if IN_CI:
        pytest.fail(f"{what} is required in CI but is not available")
    pytest.skip(f"{what} not available")


@pytest.fixture(scope="session")
def vectors() -> Path:
    require_or_skip(VECTORS.is_dir(), f"reference vectors at {VECTORS}")
    return VECTORS


@pytest.fixture(scope="session")
def media() -> Path:
    return FIXTURES
