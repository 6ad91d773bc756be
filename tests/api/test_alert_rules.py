"""The Prometheus alert rules in docs/ load in Prometheus' own checker, and fire (or stay quiet)
on synthetic series as each is meant to (promtool, from Debian's prometheus package)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from support import require_or_skip

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "docs" / "prometheus-alerts.yml"
UNIT_TESTS = Path(__file__).parent / "data" / "prometheus-alerts-test.yml"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    found = shutil.which(os.environ.get("HASHDB_PROMTOOL", "promtool"))
    require_or_skip(found is not None, "promtool (apt-get install prometheus; the README's test command installs it)")
    assert found is not None
    return subprocess.run([found, *args], capture_output=True, text=True, timeout=60, cwd=UNIT_TESTS.parent)


def test_alert_rules_load():
    checked = promtool("check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout


def test_alerts_fire_on_the_failures_they_name_and_not_on_a_healthy_server():
    tested = promtool("test", "rules", UNIT_TESTS.name)
    assert tested.returncode == 0, tested.stdout + tested.stderr
