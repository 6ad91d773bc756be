"""The mutation check's mutants still name code that exists: each edit's text occurs exactly once
in its file (scripts/mutation_check.py skips a mutant whose text has moved, which would let a
rule lose its guard without anyone noticing)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import mutation_check  # noqa: E402


def test_every_mutant_applies_to_the_code_as_it_is() -> None:
    stale = [m.name for m in mutation_check.MUTANTS if (ROOT / m.path).read_text().count(m.old) != 1]
    assert stale == []
