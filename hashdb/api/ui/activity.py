"""Lookups and matches over time for the dashboard, sampled from the server's own Prometheus
counters (all workers' sums under `hashdb serve`). Samples live in this worker's memory, taken
at most once a minute when a console page is served: the chart starts when the worker did."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

from flask import Flask, current_app
from prometheus_client import CollectorRegistry

from hashdb.api.metrics import Metrics, multiprocess_mode

INTERVAL_S = 60.0
KEEP = 24 * 60  # a day of minutes


@dataclass(frozen=True, slots=True)
class Sample:
    at: float
    lookups: float
    matches: float


class Activity:
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._samples: deque[Sample] = deque(maxlen=KEEP)
        self._lock = threading.Lock()

    def totals(self) -> tuple[float, float]:
        registry = self._metrics.registry
        if multiprocess_mode():
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        lookups = registry.get_sample_value("hashdb_lookup_items_total") or 0.0
        matches = registry.get_sample_value("hashdb_lookup_matched_items_total") or 0.0
        return lookups, matches

    def samples(self) -> list[Sample]:
        """The samples so far, with a fresh one if the last is over a minute old."""
        now = time.time()
        with self._lock:
            if not self._samples or now - self._samples[-1].at >= INTERVAL_S:
                self._samples.append(Sample(now, *self.totals()))
            return list(self._samples)


def install(app: Flask) -> None:
    app.extensions["hashdb_activity"] = Activity(app.extensions["hashdb_metrics"])


def activity() -> Activity:
    found: Activity = current_app.extensions["hashdb_activity"]
    return found
