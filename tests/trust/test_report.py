"""The transparency report: its numbers equal an independent count of what was shared, and its chart
is a real PNG whose bars are as tall as the numbers say."""

from __future__ import annotations

import random
import re
from collections import Counter
from datetime import datetime, timezone

import pytest
from PIL import Image

from hashdb.errors import Forbidden
from hashdb.trust import report
from hashdb.types import HashValue, Submission
from support import flip, principal, random_pdq
from trust_helpers import lines

BAR = (52, 101, 164)


def sections(markdown: str) -> dict[str, dict[str, int]]:
    """'## Title' followed by '| key | n |' rows -> {title: {key: n}} (the total row left out)."""
    out: dict[str, dict[str, int]] = {}
    title = ""
    for line in markdown.splitlines():
        if line.startswith("## "):
            title = line[3:]
            out[title] = {}
        match = re.fullmatch(r"\| (.+) \| (\d+) \|", line)
        if match and match.group(1) != "**total**":
            out[title][match.group(1)] = int(match.group(2))
    return out


@pytest.fixture
def shared(make_service):
    """A database with known contents, and what the test itself says it shared."""
    service = make_service()
    rng = random.Random(21)
    admin = principal(service, "ops", "admin")
    alpha, beta = principal(service, "alpha-platform", "contributor"), principal(service, "beta-platform", "contributor")
    made: list[tuple[str, str, tuple[str, ...]]] = []  # (org, signal, labels) of every record

    def share(actor, signal: str, value: str, labels: tuple[str, ...]) -> int:
        [result] = service.submit([Submission(value, labels, (HashValue(signal, value, 100 if signal == "pdq" else None),))], actor)
        made.append((actor.org_name, signal, labels))
        return result.ids[0]

    for _ in range(3):
        share(alpha, "pdq", random_pdq(rng), ("glorification",))
    share(alpha, "md5", "a" * 32, ("glorification", "graphic_violence"))
    for n in range(2):
        share(beta, "phash", f"{0x0f0f0f0f0f0f0f0f + n:016x}", ("recruitment_instruction",))
    gone = share(beta, "md5", "b" * 32, ("attacker_manifesto",))
    service.retract(gone, beta, "mistake")
    benign = random_pdq(rng)
    service.add_safelist([HashValue("pdq", benign)], admin)
    held = share(beta, "pdq", flip(benign, 4, rng), ("glorification",))
    service.open_incident("attack-1", admin)
    return service, made, {"retracted": {gone}, "quarantined": {held}}


def test_markdown_numbers_equal_an_independent_count(shared):
    service, made, special = shared
    month = datetime.now(timezone.utc).strftime("%Y-%m")
    text = report.markdown(service.transparency_report(principal(service, "viewer", "consumer")))
    got = sections(text)
    statuses = Counter("retracted" if i + 1 in special["retracted"] else
                       "quarantined" if i + 1 in special["quarantined"] else "active" for i in range(len(made)))
    live = [m for i, m in enumerate(made) if i + 1 not in special["retracted"]]
    assert got["Records by signal"] == dict(Counter(signal for _, signal, _ in made))
    assert got["Records by status"] == dict(statuses)
    assert got["Records by label"] == dict(Counter(label for _, _, labels in live for label in labels))
    assert got["Records by month shared"] == {month: len(made)}
    assert got["Quarantines by rule"] == {"safelist": 1}
    assert got["Quarantine outcomes"] == {"pending": 1}
    assert got["Incidents"] == {"open": 1}
    assert got["Safelisted benign hashes"] == {"pdq": 1}
    # Public report: how many contributors, never who.
    assert got["Contributors"] == {}
    assert "2 member organisations" in text
    assert "alpha-platform" not in text and "beta-platform" not in text


def test_admin_report_names_contributors(shared):
    service, made, special = shared
    admin = principal(service, "ops", "admin")
    got = sections(report.markdown(service.transparency_report(admin, named=True)))
    live = [org for i, (org, _, _) in enumerate(made) if i + 1 not in special["retracted"]]
    assert got["Contributors"] == dict(Counter(live))
    with pytest.raises(Forbidden):
        service.transparency_report(principal(service, "viewer", "consumer"), named=True)


def bar_heights(image: Image.Image) -> list[int]:
    """Height in pixels of each bar, left to right, measured on the pixels alone."""
    width, height = image.size
    pixels = image.load()
    heights, inside = [], False
    for x in range(width):
        column = sum(1 for y in range(height) if pixels[x, y] == BAR)
        if column and not inside:
            heights.append(column)
        inside = bool(column)
    return heights


def test_chart_is_a_png_of_the_set_size_with_proportional_bars(tmp_path):
    values = {"2026-01": 10, "2026-02": 40, "2026-03": 20}
    path = tmp_path / "c.png"
    report.bar_chart("t", values).save(path, format="PNG")
    with Image.open(path) as image:
        assert (image.format, image.size) == ("PNG", report.CHART_SIZE)
        heights = bar_heights(image.convert("RGB"))
    assert len(heights) == 3
    for h, v in zip(heights, values.values()):
        assert abs(h / heights[1] - v / 40) < 0.02


def test_empty_database_report_still_writes(make_service, tmp_path):
    service = make_service()
    data = service.transparency_report(principal(service, "viewer", "consumer"))
    md, png = report.write(data, tmp_path / "out")
    assert "None." in md.read_text()
    with Image.open(png) as image:
        assert image.size == report.CHART_SIZE


def test_cli_report_writes_markdown_and_chart(run, tmp_path):
    run("submit", "--pdq-quality", "100", f"pdq:{random_pdq(random.Random(3))}", "--label", "glorification", "--org", "alpha-platform")
    run("submit", "md5:" + "c" * 32, "--label", "glorification", "--org", "beta-platform")
    out = tmp_path / "published"
    result = run("report", "--json", "--out", str(out))
    assert result.exit_code == 0
    assert lines(result) == [{"files": [str(out / "report.md"), str(out / "records-by-month.png")]}]
    got = sections((out / "report.md").read_text())
    assert got["Records by signal"] == {"md5": 1, "pdq": 1}
    assert "alpha-platform" not in (out / "report.md").read_text()
    with Image.open(out / "records-by-month.png") as image:
        assert image.size == (800, 400)
        assert bar_heights(image.convert("RGB"))  # one bar for this month
    run("report", "--admin", "--out", str(out))
    assert sections((out / "report.md").read_text())["Contributors"] == {"alpha-platform": 1, "beta-platform": 1}
