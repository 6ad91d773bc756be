"""Fixtures for the trust-and-safety tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from trust_helpers import Run


@pytest.fixture
def run(tmp_path: Path) -> Run:
    return Run(tmp_path / "db.sqlite")
