"""Prometheus metrics an operator can alert on; the names are listed in docs/metrics.md.

Under `hashdb serve` every gunicorn worker writes its samples to PROMETHEUS_MULTIPROC_DIR (set
up by hashdb/api/server.py before any worker starts) and /metrics, whichever worker answers, sums
the counters of all workers, live and dead. Per-worker gauges (index ready, size, lag) carry
a `pid` label or are reduced across live workers (see each gauge's mode); values that belong
to the database, not a worker (records by status, queues), are read at scrape time.
Without that variable (tests, `flask run`) the metrics are this process's own.

Every label set is bounded: endpoints are the OpenAPI path templates (anything else is
`unmatched`), methods outside the standard set are `other`, signals come from the registry,
reasons and outcomes from fixed lists.
"""

from __future__ import annotations

import logging
import os
import platform
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, current_app, g, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from hashdb import __version__
from hashdb.errors import HashDBError
from hashdb.hashing.registry import TMK_SIGNAL, VIDEO_SIGNAL, signal_names
from hashdb.types import LookupResult, Query

if TYPE_CHECKING:
    from hashdb.service import HashDB
    from hashdb.trust.delivery import DeliveryPass

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER = "other"
UNMATCHED = "unmatched"
STATUSES = ("active", "disputed", "quarantined", "retracted")
DELIVERY_OUTCOMES = ("delivered", "retrying", "failed")
# Seconds between refreshes of a worker's own gauges (index ready, size, lag).
REFRESH_SECONDS = 5.0

log = logging.getLogger("hashdb.api")


def multiprocess_mode() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def refusal_reasons() -> frozenset[str]:
    """Every error code a refused submission can carry: ours, and the HTTP ones we send."""
    codes: set[str] = set()
    pending: list[type[HashDBError]] = [HashDBError]
    while pending:
        cls = pending.pop()
        codes.add(str(getattr(cls, "code", "")))
        pending.extend(cls.__subclasses__())
    return frozenset(codes | {"invalid_input", "not_found", "method_not_allowed", "too_large",
                              "unsupported_media_type", "internal_error"}) - {""}


def path_templates(rules: Iterable[str], spec_paths: Iterable[str]) -> dict[str, str]:
    """Flask rule -> the OpenAPI path it serves (`/v1/hashes/<int:record_id>` -> `/v1/hashes/{id}`),
    matched on the literal segments so the parameter names may differ."""
    def shape(path: str) -> str:
        return re.sub(r"\{[^}]*\}", "{}", path)

    by_shape = {shape(p): p for p in spec_paths}
    out: dict[str, str] = {}
    for rule in rules:
        template = re.sub(r"<(?:[^<>:]*:)?([^<>:]+)>", r"{\1}", rule)
        out[rule] = by_shape.get(shape(template), template)
    return out


class Metrics:
    def __init__(self) -> None:
        # A registry per app, so several apps in one process (tests) never collide. In
        # multiprocess mode samples go to files and are collected from there instead.
        self.registry = CollectorRegistry()
        registry = None if multiprocess_mode() else self.registry
        self.templates: dict[str, str] = {}
        # Labelled children by (metric, label values): prometheus_client's labels() takes
        # a lock and validates every call (about a tenth of a lookup request's own CPU time).
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        self.signals = frozenset(signal_names()) | {VIDEO_SIGNAL, TMK_SIGNAL}
        self.reasons = refusal_reasons()
        self.requests = Counter("hashdb_http_requests", "HTTP requests by endpoint (OpenAPI path), method and status",
                                ["endpoint", "method", "status"], registry=registry)
        self.latency = Histogram("hashdb_http_request_duration_seconds", "HTTP request latency",
                                 ["endpoint", "method"], buckets=LATENCY_BUCKETS, registry=registry)
        self.lookups = Counter("hashdb_lookup_items", "Items looked up (hashes or videos)", registry=registry)
        self.matches = Counter("hashdb_lookup_matched_items", "Looked-up items with at least one match",
                               registry=registry)
        self.signal_lookups = Counter("hashdb_lookups_by_signal", "Looked-up items carrying a hash of this signal",
                                      ["signal"], registry=registry)
        self.signal_matches = Counter("hashdb_matches_by_signal", "Looked-up items matched through this signal",
                                      ["signal"], registry=registry)
        self.refused = Counter("hashdb_submissions_refused", "Submission requests refused, by error code",
                               ["reason"], registry=registry)
        self.deliveries = Counter("hashdb_webhook_deliveries", "Webhook delivery attempts by outcome",
                                  ["outcome"], registry=registry)
        # Per worker. ready: one series per live worker (pid label), so a stuck one shows;
        # size: the largest live worker's; lag: the furthest-behind live worker's.
        self.index_ready = Gauge("hashdb_index_ready", "1 once this worker's index is loaded",
                                 registry=registry, multiprocess_mode="liveall")
        self.index_size = Gauge("hashdb_index_entries", "Entries in the index, per signal", ["signal"],
                                registry=registry, multiprocess_mode="livemax")
        self.index_lag = Gauge("hashdb_index_lag_changes",
                               "Change-log rows committed but not yet applied to a worker's index (catch-up lag)",
                               registry=registry, multiprocess_mode="livemax")
        for signal in sorted(self.signals):
            self.signal_lookups.labels(signal)
            self.signal_matches.labels(signal)
        for outcome in DELIVERY_OUTCOMES:
            self.deliveries.labels(outcome)
        # Every refusal reason from the start, at 0: a rate() or an alert over a series that
        # appears only at the first refusal sees nothing until then (and needs `or vector(0)`).
        for reason in sorted(refusal_reasons()):
            self.refused.labels(reason)
        self.index_ready.set(0)

    # -- collection ------------------------------------------------------------------------

    def render(self, service: HashDB) -> Response:
        try:
            self.refresh(service)  # the answering worker's own gauges are always current
        except Exception:  # the scrape still answers, with this worker's last values
            log.debug("refreshing the index gauges failed", exc_info=True)
        scrape = CollectorRegistry()
        scrape.register(StoreCollector(service))
        if multiprocess_mode():
            multiprocess.MultiProcessCollector(scrape)  # type: ignore[no-untyped-call]
            body = generate_latest(scrape)
        else:
            body = generate_latest(self.registry) + generate_latest(scrape)
        return Response(body, mimetype=CONTENT_TYPE_LATEST.split(";")[0],
                        headers={"Content-Type": CONTENT_TYPE_LATEST})

    def refresh(self, service: HashDB) -> None:
        """This worker's index gauges, from its own index."""
        status = service.index_status()
        self.index_ready.set(1 if status.ready else 0)
        self.index_lag.set(status.behind)
        for signal, size in status.sizes.items():
            if signal in self.signals:
                self.index_size.labels(signal).set(size)

    def start_refresher(self, service: HashDB, interval: float = REFRESH_SECONDS) -> Callable[[], None]:
        """A daemon thread refreshing this worker's gauges; returns how to stop it."""
        stop = threading.Event()

        def run() -> None:
            while True:
                try:
                    self.refresh(service)
                except Exception:  # a locked or closing database: try again next time
                    log.debug("refreshing the index gauges failed", exc_info=True)
                if stop.wait(interval):
                    return

        thread = threading.Thread(target=run, name="hashdb-metrics", daemon=True)
        thread.start()

        def halt() -> None:
            stop.set()
            thread.join(interval + 5)

        return halt

    # -- events ----------------------------------------------------------------------------

    def count_lookups(self, queries: Iterable[Query], results: Sequence[LookupResult]) -> None:
        # Tallied here, then one inc() per signal: each inc() of a multiprocess counter takes a
        # lock and writes to its mapped file, once per item was about a tenth of a batch's CPU.
        looked: dict[str, int] = {}
        for query in queries:
            carried = ({v.signal for v in query.hashes} | ({VIDEO_SIGNAL} if query.frames else set())
                       | ({TMK_SIGNAL} if query.tmk is not None else set()))
            for signal in carried:
                looked[signal] = looked.get(signal, 0) + 1
        self._count(len(results), looked, results)

    def count_pdq_lookups(self, results: Sequence[LookupResult]) -> None:
        """count_lookups of a PdqBatch's answers: every query carried one PDQ."""
        self._count(len(results), {"pdq": len(results)}, results)

    def _count(self, items: int, looked: Mapping[str, int], results: Iterable[LookupResult]) -> None:
        matched = 0
        hit: dict[str, int] = {}
        for result in results:
            if result.matched:
                matched += 1
                for signal in {m.signal for m in result.matches}:
                    hit[signal] = hit.get(signal, 0) + 1
        for signal, count in looked.items():
            if signal in self.signals:
                self._child(self.signal_lookups, signal).inc(count)
        for signal, count in hit.items():
            if signal in self.signals:
                self._child(self.signal_matches, signal).inc(count)
        self.lookups.inc(items)
        if matched:
            self.matches.inc(matched)

    def count_deliveries(self, done: DeliveryPass) -> None:
        for outcome in DELIVERY_OUTCOMES:
            value = getattr(done, outcome)
            if value:
                self.deliveries.labels(outcome).inc(value)

    def _child(self, metric: Any, *values: str) -> Any:
        key = (id(metric), values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    # -- requests --------------------------------------------------------------------------

    def install(self, app: Flask) -> None:
        app.before_request(self._start)
        app.after_request(self._finish)

    def name_endpoints(self, app: Flask, spec_paths: Iterable[str]) -> None:
        """Once every route is registered: label each by the OpenAPI path it serves."""
        self.templates = path_templates((r.rule for r in app.url_map.iter_rules()), spec_paths)

    def _start(self) -> None:
        g.metrics_start = time.perf_counter()

    def _finish(self, response: Response) -> Response:
        started = g.get("metrics_start")
        rule = request.url_rule.rule if request.url_rule is not None else _method_refused_rule()
        endpoint = UNMATCHED
        if rule is not None:
            # A route added after name_endpoints still gets its template form, never the raw rule.
            endpoint = self.templates.get(rule) or path_templates([rule], ())[rule]
        self.count_request(endpoint, request.method, response.status_code,
                           None if started is None else time.perf_counter() - started)
        if endpoint == "/v1/hashes" and request.method == "POST" and response.status_code >= 400:
            self.refused.labels(self._reason(response)).inc()
        return response

    def count_request(self, endpoint: str, method: str, status_code: int, seconds: float | None) -> None:
        """One answered request: its count by status, and its latency when known."""
        method = method if method in METHODS else OTHER
        status = str(status_code) if 100 <= status_code <= 599 else OTHER
        self._child(self.requests, endpoint, method, status).inc()
        if seconds is not None:
            self._child(self.latency, endpoint, method).observe(seconds)

    def _reason(self, response: Response) -> str:
        doc = response.get_json(silent=True) if response.is_json else None
        code = doc.get("error", {}).get("code") if isinstance(doc, dict) else None
        return code if isinstance(code, str) and code in self.reasons else OTHER


def _method_refused_rule() -> str | None:
    """The route a 405 was for (`PUT /v1/lookup`): the path is served, by other methods, so it is
    counted there, not as `unmatched`, a path no route serves."""
    refused = request.routing_exception
    if not isinstance(refused, MethodNotAllowed) or not refused.valid_methods:
        return None
    adapter = current_app.create_url_adapter(request)
    if adapter is None:
        return None
    try:
        rule, _ = adapter.match(method=next(iter(refused.valid_methods)), return_rule=True)
    except HTTPException:
        return None
    return str(rule.rule)


class StoreCollector(Collector):
    """Values that belong to the database, read when scraped (the counts are kept by the store,
    so this costs one small read), plus the build's identity."""

    def __init__(self, service: HashDB) -> None:
        self.service = service

    def collect(self) -> Iterator[Metric]:
        build = GaugeMetricFamily("hashdb_build_info", "The running build (value is always 1)",
                                  labels=["version", "python"])
        build.add_metric([__version__, platform.python_version()], 1)
        yield build
        try:
            counts: Mapping[str, Mapping[str, int]] = self.service.record_counts()
        except Exception:  # the scrape must not fail because the database is busy
            log.warning("/metrics: reading the record counts failed", exc_info=True)
            return
        by_status = GaugeMetricFamily("hashdb_records", "Records by status", labels=["status"])
        for status in STATUSES:
            by_status.add_metric([status], counts["status"].get(status, 0))
        yield by_status
        by_signal = GaugeMetricFamily("hashdb_records_by_signal", "Records by signal, whatever their status",
                                      labels=["signal"])
        for signal, n in counts["signal"].items():
            by_signal.add_metric([signal], n)
        yield by_signal
        yield GaugeMetricFamily("hashdb_quarantine_queue", "Records held in quarantine, awaiting review",
                                value=counts["status"].get("quarantined", 0))
        yield GaugeMetricFamily("hashdb_dispute_queue", "Records disputed by members' votes, awaiting review",
                                value=counts["status"].get("disputed", 0))

