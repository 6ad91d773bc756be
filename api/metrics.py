"""Prometheus metrics: requests and latency by endpoint and status, items looked up, matches.

Under `hashdb serve` every worker writes its samples to PROMETHEUS_MULTIPROC_DIR (set up by
api/server.py before any worker starts) and /metrics sums all workers, whichever answers.
Without that variable (tests, `flask run`) the metrics are this process's own."""

from __future__ import annotations

import os
import time

from flask import Flask, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import multiprocess

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


def multiprocess_mode() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


class Metrics:
    def __init__(self) -> None:
        # A registry per app, so several apps in one process (tests) never collide. In
        # multiprocess mode samples go to files and are collected from there instead.
        self.registry = CollectorRegistry()
        registry = None if multiprocess_mode() else self.registry
        self.requests = Counter("hashdb_http_requests", "HTTP requests by endpoint, method and status",
                                ["endpoint", "method", "status"], registry=registry)
        self.latency = Histogram("hashdb_http_request_duration_seconds", "HTTP request latency",
                                 ["endpoint", "method"], buckets=LATENCY_BUCKETS, registry=registry)
        self.lookups = Counter("hashdb_lookup_items", "Items looked up (hashes or videos)", registry=registry)
        self.matches = Counter("hashdb_lookup_matched_items", "Looked-up items with at least one match",
                               registry=registry)

    def render(self) -> Response:
        registry = self.registry
        if multiprocess_mode():
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST.split(";")[0],
                        headers={"Content-Type": CONTENT_TYPE_LATEST})

    def install(self, app: Flask) -> None:
        app.before_request(self._start)
        app.after_request(self._finish)

    def _start(self) -> None:
        g.metrics_start = time.perf_counter()

    def _finish(self, response: Response) -> Response:
        started = g.get("metrics_start")
        endpoint = request.url_rule.rule if request.url_rule is not None else "unmatched"
        self.requests.labels(endpoint, request.method, str(response.status_code)).inc()
        if started is not None:
            self.latency.labels(endpoint, request.method).observe(time.perf_counter() - started)
        return response
