"""`python -m hashdb.cli` runs the command, as the `hashdb` entry point does."""

from __future__ import annotations

import subprocess
import sys


def test_python_dash_m_runs_the_command():
    done = subprocess.run([sys.executable, "-m", "hashdb.cli", "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Usage:" in done.stdout and "lookup" in done.stdout
