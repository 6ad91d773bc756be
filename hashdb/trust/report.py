"""The transparency report: counts rendered as Markdown, and a bar chart drawn with Pillow.

Pure rendering from counts the store computed (store.counts() and friends); no queries here.
Contributors are named only in an admin's report: the public one gives how many there are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

CHART_SIZE = (800, 400)
MARKDOWN_NAME = "report.md"
CHART_NAME = "records-by-month.png"


@dataclass(frozen=True, slots=True)
class ReportData:
    generated_at: str
    counts: Mapping[str, Mapping[str, int]]  # store.counts(): signal, status, month, label
    integrity: Mapping[str, Mapping[str, int]]  # store.integrity_counts()
    contributors: Mapping[str, int]  # organisation -> records not retracted
    named: bool  # whether contributors may be named (admin report)


def _table(title: str, header: str, rows: Mapping[str, int], note: str = "") -> list[str]:
    out = [f"## {title}", ""]
    if note:
        out += [note, ""]
    if not rows:
        return out + ["None.", ""]
    out += [f"| {header} | count |", "|---|---:|"]
    out += [f"| {_cell(key)} | {value} |" for key, value in rows.items()]
    out += [f"| **total** | {sum(rows.values())} |", ""]
    return out


def _cell(text: str) -> str:
    # Names come from members and operators: keep them from breaking the table or the page.
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("<", "&lt;")


def markdown(data: ReportData) -> str:
    counts, integrity = data.counts, data.integrity
    lines = [
        "# hashdb transparency report",
        "",
        f"Generated {data.generated_at}. Counts are of hash records: one record is one hash one member "
        "shared (a second member sharing the same hash adds a record).",
        "",
        f"![Records by month]({CHART_NAME})",
        "",
    ]
    lines += _table("Records by signal", "signal", counts.get("signal", {}), "Every record, retracted included.")
    lines += _table("Records by status", "status", counts.get("status", {}))
    lines += _table("Records by label", "label", counts.get("label", {}),
                    "Records not retracted; a record with several labels counts once under each.")
    lines += _table("Records by month shared", "month", counts.get("month", {}), "Every record, retracted included.")
    if data.named:
        lines += _table("Contributors", "organisation", data.contributors, "Records not retracted, per member. "
                        "Admin report: do not publish this section.")
    else:
        lines += ["## Contributors", "", f"{len(data.contributors)} member organisations have records "
                  "that are not retracted.", ""]
    lines += _table("Quarantines by rule", "rule", integrity.get("quarantine_rule", {}),
                    "Records held out of lookups for review: near a safelisted benign hash, a spike of "
                    "matches across members, or by an admin's decision.")
    lines += _table("Quarantine outcomes", "outcome", integrity.get("quarantine_outcome", {}),
                    "Released back to active, confirmed (retracted), or still pending review.")
    lines += _table("Incidents", "status", integrity.get("incident", {}))
    lines += _table("Safelisted benign hashes", "signal", integrity.get("safelist", {}))
    return "\n".join(lines)


def bar_chart(title: str, values: Mapping[str, int], size: tuple[int, int] = CHART_SIZE) -> Image.Image:
    """A plain bar chart: one bar per key in order, its value above it, every n-th key below."""
    width, height = size
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=14)
    small = ImageFont.load_default(size=11)
    left, right, top, bottom = 50, 20, 40, 50
    draw.text((left, 10), title, fill="black", font=font)
    draw.line([(left, height - bottom), (width - right, height - bottom)], fill="black")
    draw.line([(left, top), (left, height - bottom)], fill="black")
    if not values:
        draw.text((left + 10, height // 2), "no records", fill="gray", font=font)
        return image
    peak = max(max(values.values()), 1)
    span = (width - left - right) / len(values)
    bar = max(span * 0.7, 1.0)
    every = max(1, int(len(values) * 60 / (width - left - right)) + 1)  # ~60 px per shown label
    for n, (key, value) in enumerate(values.items()):
        x0 = left + n * span + (span - bar) / 2
        y0 = height - bottom - (height - top - bottom - 20) * value / peak
        draw.rectangle([(x0, y0), (x0 + bar, height - bottom)], fill=(52, 101, 164))
        draw.text((x0 + bar / 2, y0 - 2), str(value), fill="black", font=small, anchor="md")
        if n % every == 0:
            draw.text((x0 + bar / 2, height - bottom + 6), key, fill="black", font=small, anchor="ma")
    return image


def write(data: ReportData, out_dir: Path) -> list[Path]:
    """Write the Markdown and its chart into `out_dir` (created if needed); returns both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    md_path, chart_path = out_dir / MARKDOWN_NAME, out_dir / CHART_NAME
    md_path.write_text(markdown(data) + "\n", encoding="utf-8")
    bar_chart("Records shared per month", data.counts.get("month", {})).save(chart_path, format="PNG")
    return [md_path, chart_path]
