"""The README's two set-up commands are what a new machine runs, and CI runs the second."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = text[text.index("```sh", text.index("## Start")):]
    block = block[:block.index("```", 5)]
    return [line for line in block.splitlines()[1:] if line.strip() and not line.startswith("#")]


def test_ci_runs_exactly_the_readmes_test_command():
    demo, tests = readme_commands()
    assert demo.endswith("hashdb demo")
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.startswith(("#", "set ", "cd "))]
    assert ci == [tests]
    assert re.search(r"pytest", tests) and "system-packages.sh" in tests
    # The browser tests need Chromium on a fresh machine: the package script installs it.
    assert "chromium" in (ROOT / "scripts" / "system-packages.sh").read_text().split("PACKAGES=", 1)[1]


def test_the_readme_lists_every_label_of_the_default_taxonomy():
    from hashdb.trust.taxonomy import Taxonomy

    readme = (ROOT / "README.md").read_text()
    assert [label for label in Taxonomy.load(None).labels if f"`{label}`" not in readme] == []
