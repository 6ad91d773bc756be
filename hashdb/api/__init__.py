"""The HTTP API: a Flask app factory over HashDB. Views parse the request, call one service
method and answer with hashdb.io.output's shapes, the same the CLI's --json prints; no SQL,
FAISS or PIL here. Modules here may import the service, `trust`, `io`, `hashing.registry` and the
core; never `store`, `index` or `cli`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Flask
from werkzeug.routing import IntegerConverter

from hashdb.api import background, errors, spec
from hashdb.api.auth import require_key
from hashdb.api.ratelimit import TokenBucket
from hashdb.api.runtime import ServiceRuntime, get_service, open_service
from hashdb.service.environment import server_config

if TYPE_CHECKING:
    from hashdb.api.metrics import Metrics
    from hashdb.service import HashDB

__all__ = ["create_app", "get_service"]

DEFAULTS: dict[str, Any] = {
    # The SQLite database file (env HASHDB_DB); HASHDB_DSN is the PostgreSQL seam (runtime.py).
    "DB": "hashdb.sqlite",
    "DSN": None,
    # Request bodies over this are refused with 413, chunked ones included. A 4-hour video's
    # frames at 1 fps (14,400) are about 1.3 MB; a batch of 1,000 hashes about 150 KB.
    "MAX_CONTENT_LENGTH": 4 * 1024 * 1024,
    "MAX_BATCH": 1000,
    # Requests per second per key, per worker (see hashdb/api/ratelimit.py); 0 turns it off.
    "RATE_LIMIT": 100.0,
    "RATE_BURST": 200,
    # Failed authentications per second per client address, per worker; 0 turns it off.
    "AUTH_FAILURE_RATE": 5.0,
    "AUTH_FAILURE_BURST": 50,
    # Load the index in a background thread (a server); tests may load it before answering.
    "LOAD_INDEX_IN_BACKGROUND": True,
    # Seconds between webhook delivery passes in each worker (crisis protocol); 0 turns it off.
    "WEBHOOK_INTERVAL": 2.0,
    # Seconds between refreshes of each worker's index gauges on /metrics; 0 turns it off.
    "METRICS_INTERVAL": 5.0,
    # /metrics shows record counts by status and the review queues: where the port is reachable
    # from outside, HASHDB_METRICS_TOKEN makes Prometheus send it as a bearer token.
    "METRICS_TOKEN": None,
    # The web console at /ui/ (hashdb/api/ui); HASHDB_CONSOLE=false serves the API alone.
    "CONSOLE": True,
    # Seconds a write waits for another writer's lock (an import) before answering 503.
    "WRITE_TIMEOUT": 5.0,
    # Seconds a request body (a Content-Length or chunked one) may take to arrive after its
    # head, read by each worker's loop before a thread sees the request (hashdb/api/gathering.py).
    "BODY_TIMEOUT": 30.0,
}


class AsciiIntConverter(IntegerConverter):
    """`<int:...>` with ASCII digits only: Werkzeug's `\\d+` also takes full-width and
    Arabic-Indic digits, so `/v1/hashes/４８` would address record 48."""

    regex = r"[0-9]+"


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    app = Flask(__name__, static_folder=None)
    app.url_map.converters["int"] = AsciiIntConverter
    app.config.from_mapping(DEFAULTS)
    app.config.from_prefixed_env("HASHDB")
    # The settings hashdb reads, parsed strictly (`hashdb serve` has checked them already).
    app.config.update(server_config())
    if config is not None:
        app.config.from_mapping(config)
    # The CLI re-prints what the server sends: keep the key order output.py gives.
    app.json.sort_keys = False  # type: ignore[attr-defined]

    settings = app.config
    # Imported here, not at the top: `hashdb serve` imports this package in the gunicorn master
    # and must set PROMETHEUS_MULTIPROC_DIR before prometheus_client is first imported.
    from hashdb.api.metrics import Metrics

    metrics = Metrics()
    runtime = ServiceRuntime(lambda: open_service(settings), bool(settings["LOAD_INDEX_IN_BACKGROUND"]),
                             on_start=_background_work(settings, metrics))
    app.extensions["hashdb"] = runtime
    app.extensions["hashdb_ratelimit"] = TokenBucket(float(settings["RATE_LIMIT"]), float(settings["RATE_BURST"]))
    app.extensions["hashdb_auth_failures"] = TokenBucket(float(settings["AUTH_FAILURE_RATE"]),
                                                         float(settings["AUTH_FAILURE_BURST"]))
    app.extensions["hashdb_metrics"] = metrics
    metrics.install(app)
    errors.register(app)

    from hashdb.api.views import export, hashes, health, incidents, lookup, stats

    v1 = Blueprint("v1", __name__, url_prefix="/v1")
    v1.before_request(require_key)
    for module in (lookup, hashes, export, stats, incidents):
        v1.register_blueprint(module.bp)
    app.register_blueprint(v1)
    app.register_blueprint(health.bp)
    # The lookup routes' hot path (lean.py); everything else, and their Flask views, behind it.
    from hashdb.api.lean import LeanLookup

    app.wsgi_app = LeanLookup(app, app.wsgi_app)  # type: ignore[method-assign]
    # Build the service (and start loading the index) now, in this process.
    with app.app_context():
        get_service()
        if settings["CONSOLE"]:
            from hashdb.api import ui

            ui.register(app)
    # Last, once every route (the console's too) is registered.
    metrics.name_endpoints(app, spec.document(int(settings["MAX_BATCH"]))["paths"])
    return app


def _background_work(settings: Mapping[str, Any], metrics: Metrics) -> Callable[[HashDB], Callable[[], None]]:
    """Each worker's daemon threads: webhook delivery (workers claim subscribers with a lease in
    the store, so two never send to the same one at once), its own metrics gauges, spike counting, and following the change log."""
    webhook_interval = float(settings["WEBHOOK_INTERVAL"])
    metrics_interval = float(settings["METRICS_INTERVAL"])

    def start(service: HashDB) -> Callable[[], None]:
        stops: list[Callable[[], None]] = []
        if webhook_interval > 0:
            from hashdb.trust.delivery import start_background_delivery

            stops.append(start_background_delivery(service, webhook_interval, metrics.count_deliveries).stop)
        if metrics_interval > 0:
            stops.append(metrics.start_refresher(service, metrics_interval))
        # Spike counts are written from here, never by a lookup (see hashdb/api/background.py).
        stops.append(background.start_spike_flusher(service))
        stops.append(background.start_index_follower(service))

        def stop() -> None:
            for halt in stops:
                halt()

        return stop

    return start
