"""A real `hashdb serve` with seeded data, and Debian's Chromium driven by Playwright, shared by
every test in a module. Screenshots go to $HASHDB_TEST_OUTPUT/ui (default test-output/ui)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from support import require_or_skip

ROOT = Path(__file__).resolve().parents[2]

CHROMIUM_NAMES = ("chromium", "chromium-browser")


def chromium_path() -> str | None:
    given = os.environ.get("HASHDB_CHROMIUM")
    if given:
        return given if Path(given).exists() else None
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="session")
def screenshots() -> Path:
    out = Path(os.environ.get("HASHDB_TEST_OUTPUT", ROOT / "test-output")) / "ui"
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    path = chromium_path()
    require_or_skip(path is not None, "Chromium (apt-get install chromium; the README's test command installs it)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require_or_skip(False, "playwright (pip install -e '.[test]')")
    with sync_playwright() as pw:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        launched = pw.chromium.launch(executable_path=path, args=["--no-sandbox", "--disable-gpu"])
        yield launched
        launched.close()
