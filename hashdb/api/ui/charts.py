"""Geometry for the dashboard's SVG charts (drawn by templates/_charts.html): numbers only,
so the templates never need to mark anything safe."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

BAR_HEIGHT = 22
LABEL_WIDTH = 170
PLOT_WIDTH = 300


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: int
    y: int
    width: float


@dataclass(frozen=True, slots=True)
class BarChart:
    title: str
    bars: tuple[Bar, ...]
    height: int
    label_width: int = LABEL_WIDTH
    plot_width: int = PLOT_WIDTH


def bars(title: str, counts: Mapping[str, int], limit: int = 24) -> BarChart:
    items = list(counts.items())[-limit:]
    top = max((v for _, v in items), default=0) or 1
    return BarChart(title, tuple(Bar(k, v, n * BAR_HEIGHT, PLOT_WIDTH * v / top) for n, (k, v) in enumerate(items)),
                    max(1, len(items)) * BAR_HEIGHT)


@dataclass(frozen=True, slots=True)
class LineChart:
    title: str
    series: tuple[tuple[str, str], ...]  # (name, SVG points "x,y x,y ...")
    width: int
    height: int
    top: float
    start: str
    end: str


def lines(title: str, times: Sequence[str], named: Mapping[str, Sequence[float]],
          width: int = 470, height: int = 140) -> LineChart:
    top = max((v for values in named.values() for v in values), default=0.0) or 1.0
    count = max(1, len(times) - 1)
    series = []
    for name, values in named.items():
        points = " ".join(f"{width * n / count:.1f},{height - height * v / top:.1f}" for n, v in enumerate(values))
        series.append((name, points))
    return LineChart(title, tuple(series), width, height, top, times[0] if times else "", times[-1] if times else "")
